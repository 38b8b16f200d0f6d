"""ResNets for 32x32 images (CIFAR), v1 and v2, as GluonCV defined them.

Depth ``6n + 2``: a 3x3 stem with 16 channels, three stages of ``n`` basic
blocks with 16, 32 and 64 channels (strides 1, 2, 2), global average pooling
and a fully connected classifier. GluonCV facts kept so its weights load:

* v1: the stem is conv + norm *without* a ReLU; blocks are post-activation
  with a conv1x1 + norm shortcut projection.
* v2: a ``BatchNorm(scale=False, center=False)`` normalises the input; blocks
  are pre-activation and (unlike ImageNet ResNet v2) project the *raw* block
  input in the shortcut; a final norm + ReLU precedes pooling.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ...zoo import ModelFamily, Weights
from .._blocks import (
    CIFAR10_CLASSES,
    ImageClassifier,
    NormLayer,
    cifar_preprocessing,
    init_weights,
    plain_norm,
)

__all__ = ["CIFARBasicBlockV1", "CIFARBasicBlockV2", "CIFARResNetV1", "CIFARResNetV2"]


def _conv3x3(in_channels: int, channels: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)


class CIFARBasicBlockV1(nn.Module):
    """Post-activation basic block."""

    def __init__(self, in_channels: int, channels: int, stride: int, downsample: bool, norm_layer: NormLayer) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv3x3(in_channels, channels, stride),
            norm_layer(channels),
            nn.ReLU(),
            _conv3x3(channels, channels, 1),
            norm_layer(channels),
        )
        self.downsample = (
            nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride, bias=False), norm_layer(channels))
            if downsample
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return torch.relu(self.body(x) + residual)


class CIFARBasicBlockV2(nn.Module):
    """Pre-activation basic block; the shortcut projects the raw input."""

    def __init__(self, in_channels: int, channels: int, stride: int, downsample: bool, norm_layer: NormLayer) -> None:
        super().__init__()
        self.bn1 = norm_layer(in_channels)
        self.conv1 = _conv3x3(in_channels, channels, stride)
        self.bn2 = norm_layer(channels)
        self.conv2 = _conv3x3(channels, channels, 1)
        self.downsample = nn.Conv2d(in_channels, channels, 1, stride, bias=False) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.conv1(torch.relu(self.bn1(x)))
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + residual


def _stages(block: type, layers: Sequence[int], channels: Sequence[int], norm_layer: NormLayer) -> list[nn.Module]:
    stages = []
    for i, n in enumerate(layers):
        cin, cout, stride = channels[i], channels[i + 1], 1 if i == 0 else 2
        blocks = [block(cin, cout, stride, cin != cout, norm_layer)]
        blocks += [block(cout, cout, 1, False, norm_layer) for _ in range(n - 1)]
        stages.append(nn.Sequential(*blocks))
    return stages


class _CIFARNet(ImageClassifier):
    def __init__(self, classes: int, in_channels: int) -> None:
        names = CIFAR10_CLASSES if (classes == 10 and in_channels == 3) else None
        super().__init__(classes, in_channels, cifar_preprocessing(in_channels), [in_channels, 32, 32], names)

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        self._check(data)
        return self.output(self.features(data))


class CIFARResNetV1(_CIFARNet):
    """CIFAR ResNet v1.

    Parameters
    ----------
    layers : sequence of int
        Blocks per stage.
    channels : sequence of int
        Stem channels, then each stage's channels.
    classes : int
        Number of classes (default 10).
    in_channels : int
        Input channels (1 for grayscale).
    norm_layer : callable
        Normalisation factory taking the number of channels.
    """

    def __init__(
        self,
        layers: Sequence[int],
        channels: Sequence[int],
        classes: int = 10,
        in_channels: int = 3,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__(classes, in_channels)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, channels[0], 3, 1, 1, bias=False),
            norm_layer(channels[0]),
            *_stages(CIFARBasicBlockV1, layers, channels, norm_layer),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.output = nn.Linear(channels[-1], classes)
        init_weights(self)


class CIFARResNetV2(_CIFARNet):
    """CIFAR ResNet v2 (pre-activation). Parameters as :class:`CIFARResNetV1`."""

    def __init__(
        self,
        layers: Sequence[int],
        channels: Sequence[int],
        classes: int = 10,
        in_channels: int = 3,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__(classes, in_channels)
        self.features = nn.Sequential(
            plain_norm(norm_layer, in_channels),
            nn.Conv2d(in_channels, channels[0], 3, 1, 1, bias=False),
            *_stages(CIFARBasicBlockV2, layers, channels, norm_layer),
            norm_layer(channels[-1]),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.output = nn.Linear(channels[-1], classes)
        init_weights(self)


def _cifar_resnet(version: int, depth: int, **kwargs: Any) -> _CIFARNet:
    if (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
    n = (depth - 2) // 6
    cls = CIFARResNetV1 if version == 1 else CIFARResNetV2
    return cls([n] * 3, [16, 16, 32, 64], **kwargs)


_FASHION_MNIST = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
_V1 = ModelFamily(
    task="classification",
    metadata={"family": "cifar_resnet_v1", "paper": "https://arxiv.org/abs/1512.03385"},
    # Numbers and metadata as written by the run in model_zoo_logs/<log>/ (tests compare them).
    weights={"cifar_resnet20_v1": [Weights(
        sha256="14b14c4191a4b838a47fa67b9f54a8ec6dbd4b50ab5f52d64045cef960188519",
        metrics={"top1": 94.58, "top5": 99.98},
        log="classification/cifar_resnet20_v1-fashion-mnist",
        kwargs={"classes": 10, "in_channels": 1},
        metadata={"dataset": "fashion-mnist", "input_shape": [1, 28, 28], "classes": _FASHION_MNIST,
                  "preprocessing": {"type": "image", "layout": "NCHW", "color": "L", "resize": 0, "crop": [28, 28],
                                    "interpolation": "bilinear", "scale": 255.0, "mean": [0.286], "std": [0.353]}},
    )]},
)
_V2 = ModelFamily(task="classification", metadata={"family": "cifar_resnet_v2", "paper": "https://arxiv.org/abs/1603.05027"})


@_V1.register
def cifar_resnet20_v1(**kwargs: Any) -> CIFARResNetV1:
    """CIFAR ResNet-20 v1. Keyword arguments go to :class:`CIFARResNetV1`."""
    return _cifar_resnet(1, 20, **kwargs)


@_V1.register
def cifar_resnet56_v1(**kwargs: Any) -> CIFARResNetV1:
    """CIFAR ResNet-56 v1."""
    return _cifar_resnet(1, 56, **kwargs)


@_V1.register
def cifar_resnet110_v1(**kwargs: Any) -> CIFARResNetV1:
    """CIFAR ResNet-110 v1."""
    return _cifar_resnet(1, 110, **kwargs)


@_V2.register
def cifar_resnet20_v2(**kwargs: Any) -> CIFARResNetV2:
    """CIFAR ResNet-20 v2. Keyword arguments go to :class:`CIFARResNetV2`."""
    return _cifar_resnet(2, 20, **kwargs)


@_V2.register
def cifar_resnet56_v2(**kwargs: Any) -> CIFARResNetV2:
    """CIFAR ResNet-56 v2."""
    return _cifar_resnet(2, 56, **kwargs)


@_V2.register
def cifar_resnet110_v2(**kwargs: Any) -> CIFARResNetV2:
    """CIFAR ResNet-110 v2."""
    return _cifar_resnet(2, 110, **kwargs)
