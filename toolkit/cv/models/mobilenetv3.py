"""MobileNetV3 Large and Small (Howard et al. 2019).

Blocks: optional 1x1 expansion, depthwise kxk (stride), optional
squeeze-and-excitation on the depthwise output (1x1 convolutions with bias,
ReLU inside, hard-sigmoid gate, bottleneck ``make_divisible(expanded // 4)``),
linear 1x1 projection, identity shortcut when stride is 1 and the channel
count is kept. Activations are ReLU or hard-swish per block. After the last
1x1 convolution (576 / 960 channels) + norm + hard-swish and global pooling,
the head is fully connected (``last_channels``) + hard-swish + dropout + classifier.

Facts about the two reference implementations this one loads weights from
(:mod:`toolkit.cv.convert`):

* torchvision: the head's first layer is a ``Linear`` with bias,
  ``last_channels`` is 1280 (Large) / 1024 (Small, as in the paper), and its
  norms use ``eps=0.001``.
* GluonCV: the head's first layer is a bias-free 1x1 convolution,
  ``last_channels`` is 1280 for both, norms use ``eps=1e-5``; widths are
  rounded up to multiples of 8 (``ceil``). At multiplier 1.0 all widths of
  both implementations agree.

Our defaults: torchvision's ``last_channels`` (paper), a bias in the head
(zero when GluonCV weights are loaded), PyTorch's default norm ``eps``.
"""
from __future__ import annotations

import math
from functools import partial
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ...zoo import ModelFamily
from .._blocks import (
    ImageClassifier,
    NormLayer,
    SqueezeExcite,
    imagenet_preprocessing,
    init_weights,
)

__all__ = ["LARGE_CONFIG", "SMALL_CONFIG", "MobileNetV3", "MobileNetV3Unit", "make_divisible"]

# kernel, expanded channels, output channels, squeeze-excite, activation, stride
LARGE_CONFIG: list[tuple[int, int, int, bool, str, int]] = [
    (3, 16, 16, False, "relu", 1),
    (3, 64, 24, False, "relu", 2),
    (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2),
    (5, 120, 40, True, "relu", 1),
    (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hswish", 2),
    (3, 200, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1),
    (3, 480, 112, True, "hswish", 1),
    (3, 672, 112, True, "hswish", 1),
    (5, 672, 160, True, "hswish", 2),
    (5, 960, 160, True, "hswish", 1),
    (5, 960, 160, True, "hswish", 1),
]
SMALL_CONFIG: list[tuple[int, int, int, bool, str, int]] = [
    (3, 16, 16, True, "relu", 2),
    (3, 72, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hswish", 2),
    (5, 240, 40, True, "hswish", 1),
    (5, 240, 40, True, "hswish", 1),
    (5, 120, 48, True, "hswish", 1),
    (5, 144, 48, True, "hswish", 1),
    (5, 288, 96, True, "hswish", 2),
    (5, 576, 96, True, "hswish", 1),
    (5, 576, 96, True, "hswish", 1),
]

# In-place activations, as torchvision's: each one follows a norm (or a conv in the SE
# block) whose output nothing else reads, and skipping the copy is measurably faster on CPU.
_ACTS: dict[str, Callable[[], nn.Module]] = {
    "relu": partial(nn.ReLU, inplace=True),
    "hswish": partial(nn.Hardswish, inplace=True),
}


def make_divisible(x: float, divisor: int = 8) -> int:
    """Round a width up to a multiple of ``divisor`` (GluonCV's rule; torchvision's agrees at multiplier 1.0)."""
    return int(math.ceil(x / divisor) * divisor)


class _ConvNormAct(nn.Module):
    """conv (no bias) - norm - optional activation, named as GluonCV's ``_Unit``."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
        act: str | None = "relu", norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False)
        self.bn = norm_layer(cout)
        self.act = _ACTS[act]() if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.act is None else self.act(x)


class MobileNetV3Unit(nn.Module):
    """Inverted residual block: [expand 1x1] - depthwise - [SE] - project 1x1 (+ identity)."""

    def __init__(
        self, cin: int, mid: int, cout: int, kernel: int, act: str, use_se: bool, stride: int,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        if mid != cin:  # torchvision's condition; GluonCV's (mid != cout) agrees on both configs
            self.expand: nn.Module | None = _ConvNormAct(cin, mid, 1, act=act, norm_layer=norm_layer)
        else:
            self.expand = None
        self.conv1 = _ConvNormAct(mid, mid, kernel, stride, groups=mid, act=act, norm_layer=norm_layer)
        self.se = SqueezeExcite(
            mid, make_divisible(mid // 4), bias=True, act=_ACTS["relu"], gate=partial(nn.Hardsigmoid, inplace=True)
        ) if use_se else None
        self.conv2 = _ConvNormAct(mid, cout, 1, act=None, norm_layer=norm_layer)
        self.use_shortcut = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x if self.expand is None else self.expand(x)
        out = self.conv1(out)
        if self.se is not None:
            out = self.se(out)
        out = self.conv2(out)
        return x + out if self.use_shortcut else out


class MobileNetV3(ImageClassifier):
    """MobileNetV3.

    Parameters
    ----------
    config : sequence of tuples
        ``(kernel, expanded, out, se, activation, stride)`` per block
        (:data:`LARGE_CONFIG`, :data:`SMALL_CONFIG`).
    last_conv : int
        Channels of the last 1x1 convolution before pooling (960 / 576).
    last_channels : int
        Width of the fully connected head layer.
    multiplier : float
        Width multiplier (widths rounded up to multiples of 8).
    classes : int
        Number of classes.
    in_channels : int
        Input channels.
    dropout : float
        Dropout before the classifier.
    norm_layer : callable
        Normalisation factory taking the number of channels.
    """

    def __init__(
        self,
        config: Sequence[tuple[int, int, int, bool, str, int]],
        last_conv: int,
        last_channels: int,
        multiplier: float = 1.0,
        classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.2,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__(classes, in_channels, imagenet_preprocessing(in_channels), [in_channels, 224, 224])
        width = make_divisible(16 * multiplier)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 3, 2, 1, bias=False),
            norm_layer(width),
            _ACTS["hswish"](),
        ]
        for kernel, exp, out, use_se, act, stride in config:
            mid, out = make_divisible(exp * multiplier), make_divisible(out * multiplier)
            layers.append(MobileNetV3Unit(width, mid, out, kernel, act, use_se, stride, norm_layer))
            width = out
        last = make_divisible(last_conv * multiplier)
        layers += [nn.Conv2d(width, last, 1, bias=False), norm_layer(last), _ACTS["hswish"](), nn.AdaptiveAvgPool2d(1)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(last, last_channels), _ACTS["hswish"](), nn.Dropout(dropout))
        self.output = nn.Linear(last_channels, classes)
        init_weights(self)

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        self._check(data)
        return self.output(self.head(self.features(data)))


_META = ModelFamily(task="classification", metadata={"family": "mobilenetv3", "paper": "https://arxiv.org/abs/1905.02244"})


@_META.register
def mobilenetv3_large(**kwargs: Any) -> MobileNetV3:
    """MobileNetV3-Large. Keyword arguments go to :class:`MobileNetV3` (``multiplier``, ``dropout`` ...)."""
    kwargs.setdefault("last_channels", 1280)
    return MobileNetV3(LARGE_CONFIG, 960, **kwargs)


@_META.register
def mobilenetv3_small(**kwargs: Any) -> MobileNetV3:
    """MobileNetV3-Small (head width 1024 as in the paper; GluonCV used 1280)."""
    kwargs.setdefault("last_channels", 1024)
    return MobileNetV3(SMALL_CONFIG, 576, **kwargs)
