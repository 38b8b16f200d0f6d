"""ResNet v1 and v2 (and their squeeze-and-excitation versions) as GluonCV defined them.

Architectural facts kept from GluonCV so its weights load unchanged:

* v1 (He et al. 2015): post-activation blocks. The bottleneck puts the stride
  on its *first* 1x1 convolution, and both of its 1x1 convolutions have a
  bias (GluonCV's ``Conv2D`` default); the 3x3 convolutions have none. The
  shortcut projection is conv1x1 + norm.
* v2 (He et al. 2016, pre-activation): a ``BatchNorm(scale=False,
  center=False)`` normalises the input, blocks are norm-ReLU-conv, the
  bottleneck puts the stride on its 3x3 convolution, the shortcut projection
  is a bare conv1x1 applied to the normalised-and-activated input, and a
  final norm + ReLU comes before pooling.
* SE versions gate each block's residual branch (after its last norm for v1,
  after its last conv for v2) with two bias-free fully connected layers
  (``channels // 16`` bottleneck) on the globally pooled branch.
* ``thumbnail=True`` replaces the 7x7/2 stem and max-pool by one 3x3/1
  convolution (for 32x32 inputs).

Module names mirror GluonCV's parameter names (``features.N``, ``body.N``,
``se.N``, ``downsample.N``, ``output``) for :mod:`toolkit.cv.convert`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ...zoo import ModelFamily
from .._blocks import (
    ImageClassifier,
    NormLayer,
    imagenet_preprocessing,
    init_weights,
    plain_norm,
    zero_init_last_norm,
)

__all__ = [
    "RESNET_SPECS",
    "BasicBlockV1",
    "BasicBlockV2",
    "BottleneckV1",
    "BottleneckV2",
    "ResNetV1",
    "ResNetV2",
]

#: depth -> (block kind, blocks per stage, channels [stem, stage1..4])
RESNET_SPECS: dict[int, tuple[str, list[int], list[int]]] = {
    18: ("basic", [2, 2, 2, 2], [64, 64, 128, 256, 512]),
    34: ("basic", [3, 4, 6, 3], [64, 64, 128, 256, 512]),
    50: ("bottleneck", [3, 4, 6, 3], [64, 256, 512, 1024, 2048]),
    101: ("bottleneck", [3, 4, 23, 3], [64, 256, 512, 1024, 2048]),
    152: ("bottleneck", [3, 8, 36, 3], [64, 256, 512, 1024, 2048]),
}


def _conv3x3(in_channels: int, channels: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)


def _se_gate(channels: int) -> nn.Sequential:
    """GluonCV's SE: Dense(c/16, no bias) - ReLU - Dense(c, no bias) - sigmoid on pooled features."""
    return nn.Sequential(
        nn.Linear(channels, channels // 16, bias=False),
        nn.ReLU(inplace=True),
        nn.Linear(channels // 16, channels, bias=False),
        nn.Sigmoid(),
    )


def _apply_se(se: nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    if se is None:
        return x
    w = se(x.mean(dim=(2, 3)))
    return x * w[:, :, None, None]


class BasicBlockV1(nn.Module):
    """Two 3x3 convolutions, post-activation; stride on the first."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int,
        downsample: bool,
        norm_layer: NormLayer = nn.BatchNorm2d,
        last_gamma: bool = False,
        use_se: bool = False,
    ) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv3x3(in_channels, channels, stride),
            norm_layer(channels),
            nn.ReLU(inplace=True),
            _conv3x3(channels, channels, 1),
            norm_layer(channels),
        )
        self.se = _se_gate(channels) if use_se else None
        self.downsample = (
            nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride, bias=False), norm_layer(channels))
            if downsample
            else None
        )
        self.last_gamma = last_gamma

    def last_norm(self) -> nn.Module:
        return self.body[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = _apply_se(self.se, self.body(x))
        out += residual
        return torch.relu_(out)


class BottleneckV1(BasicBlockV1):
    """1x1 (stride, bias) - 3x3 - 1x1 (bias) bottleneck, post-activation, width ``channels // 4``."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int,
        downsample: bool,
        norm_layer: NormLayer = nn.BatchNorm2d,
        last_gamma: bool = False,
        use_se: bool = False,
    ) -> None:
        nn.Module.__init__(self)
        mid = channels // 4
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, mid, 1, stride, bias=True),
            norm_layer(mid),
            nn.ReLU(inplace=True),
            _conv3x3(mid, mid, 1),
            norm_layer(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, channels, 1, 1, bias=True),
            norm_layer(channels),
        )
        self.se = _se_gate(channels) if use_se else None
        self.downsample = (
            nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride, bias=False), norm_layer(channels))
            if downsample
            else None
        )
        self.last_gamma = last_gamma


class BasicBlockV2(nn.Module):
    """Pre-activation basic block: norm-ReLU-conv3x3 (stride) - norm-ReLU-conv3x3."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int,
        downsample: bool,
        norm_layer: NormLayer = nn.BatchNorm2d,
        last_gamma: bool = False,
        use_se: bool = False,
    ) -> None:
        super().__init__()
        self.bn1 = norm_layer(in_channels)
        self.conv1 = _conv3x3(in_channels, channels, stride)
        self.bn2 = norm_layer(channels)
        self.conv2 = _conv3x3(channels, channels, 1)
        self.se = _se_gate(channels) if use_se else None
        self.downsample = nn.Conv2d(in_channels, channels, 1, stride, bias=False) if downsample else None
        self.last_gamma = last_gamma

    def last_norm(self) -> nn.Module:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        x = torch.relu(self.bn1(x))
        if self.downsample is not None:
            residual = self.downsample(x)
        x = self.conv1(x)
        x = self.conv2(torch.relu(self.bn2(x)))
        return _apply_se(self.se, x) + residual


class BottleneckV2(nn.Module):
    """Pre-activation bottleneck: 1x1 - 3x3 (stride) - 1x1, all without bias."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int,
        downsample: bool,
        norm_layer: NormLayer = nn.BatchNorm2d,
        last_gamma: bool = False,
        use_se: bool = False,
    ) -> None:
        super().__init__()
        mid = channels // 4
        self.bn1 = norm_layer(in_channels)
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn2 = norm_layer(mid)
        self.conv2 = _conv3x3(mid, mid, stride)
        self.bn3 = norm_layer(mid)
        self.conv3 = nn.Conv2d(mid, channels, 1, bias=False)
        self.se = _se_gate(channels) if use_se else None
        self.downsample = nn.Conv2d(in_channels, channels, 1, stride, bias=False) if downsample else None
        self.last_gamma = last_gamma

    def last_norm(self) -> nn.Module:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        x = torch.relu(self.bn1(x))
        if self.downsample is not None:
            residual = self.downsample(x)
        x = self.conv1(x)
        x = self.conv2(torch.relu(self.bn2(x)))
        x = self.conv3(torch.relu(self.bn3(x)))
        return _apply_se(self.se, x) + residual


def _stage(block: type, num_blocks: int, in_channels: int, channels: int, stride: int, **kwargs: Any) -> nn.Sequential:
    layers = [block(in_channels, channels, stride, channels != in_channels, **kwargs)]
    layers += [block(channels, channels, 1, False, **kwargs) for _ in range(num_blocks - 1)]
    return nn.Sequential(*layers)


def _finish_init(model: nn.Module, last_gamma: bool) -> None:
    init_weights(model)
    if last_gamma:
        for m in model.modules():
            if hasattr(m, "last_norm") and getattr(m, "last_gamma", False):
                zero_init_last_norm(m.last_norm())


class ResNetV1(ImageClassifier):
    """ResNet v1 (post-activation), optionally with SE blocks.

    Parameters
    ----------
    block : type
        :class:`BasicBlockV1` or :class:`BottleneckV1`.
    layers : sequence of int
        Blocks per stage.
    channels : sequence of int
        Stem channels then the output channels of each stage.
    classes : int
        Number of classes.
    in_channels : int
        Input channels.
    thumbnail : bool
        One 3x3/1 stem convolution and no max-pool, for small images.
    last_gamma : bool
        Zero-initialise the last norm of each residual branch.
    use_se : bool
        Squeeze-and-excitation blocks.
    norm_layer : callable
        Normalisation factory taking the number of channels.
    """

    def __init__(
        self,
        block: type,
        layers: Sequence[int],
        channels: Sequence[int],
        classes: int = 1000,
        in_channels: int = 3,
        thumbnail: bool = False,
        last_gamma: bool = False,
        use_se: bool = False,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        if len(layers) != len(channels) - 1:
            raise ValueError(f"{len(layers)} stages need {len(layers) + 1} channel numbers, got {list(channels)}")
        size = 32 if thumbnail else 224
        super().__init__(classes, in_channels, imagenet_preprocessing(in_channels), [in_channels, size, size])
        if thumbnail:
            stem: list[nn.Module] = [_conv3x3(in_channels, channels[0], 1)]
        else:
            stem = [
                nn.Conv2d(in_channels, channels[0], 7, 2, 3, bias=False),
                norm_layer(channels[0]),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            ]
        stages = [
            _stage(block, n, channels[i], channels[i + 1], 1 if i == 0 else 2,
                   norm_layer=norm_layer, last_gamma=last_gamma, use_se=use_se)
            for i, n in enumerate(layers)
        ]
        self.features = nn.Sequential(*stem, *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.output = nn.Linear(channels[-1], classes)
        _finish_init(self, last_gamma)

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        self._check(data)
        return self.output(self.features(data))


class ResNetV2(ImageClassifier):
    """ResNet v2 (pre-activation), optionally with SE blocks. Parameters as :class:`ResNetV1`."""

    def __init__(
        self,
        block: type,
        layers: Sequence[int],
        channels: Sequence[int],
        classes: int = 1000,
        in_channels: int = 3,
        thumbnail: bool = False,
        last_gamma: bool = False,
        use_se: bool = False,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        if len(layers) != len(channels) - 1:
            raise ValueError(f"{len(layers)} stages need {len(layers) + 1} channel numbers, got {list(channels)}")
        size = 32 if thumbnail else 224
        super().__init__(classes, in_channels, imagenet_preprocessing(in_channels), [in_channels, size, size])
        stem: list[nn.Module] = [plain_norm(norm_layer, in_channels)]
        if thumbnail:
            stem.append(_conv3x3(in_channels, channels[0], 1))
        else:
            stem += [
                nn.Conv2d(in_channels, channels[0], 7, 2, 3, bias=False),
                norm_layer(channels[0]),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            ]
        stages = [
            _stage(block, n, channels[i], channels[i + 1], 1 if i == 0 else 2,
                   norm_layer=norm_layer, last_gamma=last_gamma, use_se=use_se)
            for i, n in enumerate(layers)
        ]
        self.features = nn.Sequential(
            *stem, *stages, norm_layer(channels[-1]), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.output = nn.Linear(channels[-1], classes)
        _finish_init(self, last_gamma)

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        self._check(data)
        return self.output(self.features(data))


_BLOCKS = {1: {"basic": BasicBlockV1, "bottleneck": BottleneckV1}, 2: {"basic": BasicBlockV2, "bottleneck": BottleneckV2}}


def _resnet(version: int, depth: int, use_se: bool = False, **kwargs: Any) -> ImageClassifier:
    kind, layers, channels = RESNET_SPECS[depth]
    cls = ResNetV1 if version == 1 else ResNetV2
    return cls(_BLOCKS[version][kind], layers, channels, use_se=use_se, **kwargs)


_V1 = ModelFamily(task="classification", metadata={"family": "resnet_v1", "paper": "https://arxiv.org/abs/1512.03385"})
_V2 = ModelFamily(task="classification", metadata={"family": "resnet_v2", "paper": "https://arxiv.org/abs/1603.05027"})
_SE1 = ModelFamily(task="classification", metadata={"family": "se_resnet_v1", "paper": "https://arxiv.org/abs/1709.01507"})
_SE2 = ModelFamily(task="classification", metadata={"family": "se_resnet_v2", "paper": "https://arxiv.org/abs/1709.01507"})


@_V1.register
def resnet18_v1(**kwargs: Any) -> ResNetV1:
    """ResNet-18 v1. Keyword arguments go to :class:`ResNetV1` (``classes``, ``in_channels``, ``norm_layer`` ...)."""
    return _resnet(1, 18, **kwargs)


@_V1.register
def resnet34_v1(**kwargs: Any) -> ResNetV1:
    """ResNet-34 v1."""
    return _resnet(1, 34, **kwargs)


@_V1.register
def resnet50_v1(**kwargs: Any) -> ResNetV1:
    """ResNet-50 v1 (stride on the bottleneck's first 1x1 convolution)."""
    return _resnet(1, 50, **kwargs)


@_V1.register
def resnet101_v1(**kwargs: Any) -> ResNetV1:
    """ResNet-101 v1."""
    return _resnet(1, 101, **kwargs)


@_V1.register
def resnet152_v1(**kwargs: Any) -> ResNetV1:
    """ResNet-152 v1."""
    return _resnet(1, 152, **kwargs)


@_V2.register
def resnet18_v2(**kwargs: Any) -> ResNetV2:
    """ResNet-18 v2 (pre-activation). Keyword arguments go to :class:`ResNetV2`."""
    return _resnet(2, 18, **kwargs)


@_V2.register
def resnet34_v2(**kwargs: Any) -> ResNetV2:
    """ResNet-34 v2."""
    return _resnet(2, 34, **kwargs)


@_V2.register
def resnet50_v2(**kwargs: Any) -> ResNetV2:
    """ResNet-50 v2."""
    return _resnet(2, 50, **kwargs)


@_V2.register
def resnet101_v2(**kwargs: Any) -> ResNetV2:
    """ResNet-101 v2."""
    return _resnet(2, 101, **kwargs)


@_V2.register
def resnet152_v2(**kwargs: Any) -> ResNetV2:
    """ResNet-152 v2."""
    return _resnet(2, 152, **kwargs)


@_SE1.register
def se_resnet18_v1(**kwargs: Any) -> ResNetV1:
    """SE-ResNet-18 v1."""
    return _resnet(1, 18, use_se=True, **kwargs)


@_SE1.register
def se_resnet34_v1(**kwargs: Any) -> ResNetV1:
    """SE-ResNet-34 v1."""
    return _resnet(1, 34, use_se=True, **kwargs)


@_SE1.register
def se_resnet50_v1(**kwargs: Any) -> ResNetV1:
    """SE-ResNet-50 v1."""
    return _resnet(1, 50, use_se=True, **kwargs)


@_SE1.register
def se_resnet101_v1(**kwargs: Any) -> ResNetV1:
    """SE-ResNet-101 v1."""
    return _resnet(1, 101, use_se=True, **kwargs)


@_SE1.register
def se_resnet152_v1(**kwargs: Any) -> ResNetV1:
    """SE-ResNet-152 v1."""
    return _resnet(1, 152, use_se=True, **kwargs)


@_SE2.register
def se_resnet18_v2(**kwargs: Any) -> ResNetV2:
    """SE-ResNet-18 v2."""
    return _resnet(2, 18, use_se=True, **kwargs)


@_SE2.register
def se_resnet34_v2(**kwargs: Any) -> ResNetV2:
    """SE-ResNet-34 v2."""
    return _resnet(2, 34, use_se=True, **kwargs)


@_SE2.register
def se_resnet50_v2(**kwargs: Any) -> ResNetV2:
    """SE-ResNet-50 v2."""
    return _resnet(2, 50, use_se=True, **kwargs)


@_SE2.register
def se_resnet101_v2(**kwargs: Any) -> ResNetV2:
    """SE-ResNet-101 v2."""
    return _resnet(2, 101, use_se=True, **kwargs)


@_SE2.register
def se_resnet152_v2(**kwargs: Any) -> ResNetV2:
    """SE-ResNet-152 v2."""
    return _resnet(2, 152, use_se=True, **kwargs)
