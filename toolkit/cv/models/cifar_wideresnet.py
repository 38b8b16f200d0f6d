"""Wide ResNets for CIFAR (Zagoruyko & Komodakis 2016) as GluonCV defined them.

Depth ``6n + 4``, width factor ``k``: an input ``BatchNorm(scale=False,
center=False)``, a 3x3 stem with 16 channels followed by a norm (no ReLU),
three stages of ``n`` pre-activation blocks with ``16k, 32k, 64k`` channels,
then norm + ReLU, pooling and a classifier. Inside a block, dropout sits
between the two convolutions, and (unlike GluonCV's CIFAR ResNet v2) the
shortcut projects the normalised-and-activated input.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ...zoo import ModelFamily
from .._blocks import (
    CIFAR10_CLASSES,
    ImageClassifier,
    NormLayer,
    cifar_preprocessing,
    init_weights,
    plain_norm,
)

__all__ = ["CIFARWideResNet", "WideBasicBlock"]


class WideBasicBlock(nn.Module):
    """Pre-activation block with dropout between its 3x3 convolutions."""

    def __init__(
        self, in_channels: int, channels: int, stride: int, downsample: bool, dropout: float, norm_layer: NormLayer
    ) -> None:
        super().__init__()
        self.bn1 = norm_layer(in_channels)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn2 = norm_layer(channels)
        self.drop = nn.Dropout(dropout) if dropout > 0 else None
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.downsample = nn.Conv2d(in_channels, channels, 1, stride, bias=False) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x  # identity shortcut: the raw input; a projection takes the activated one
        x = torch.relu(self.bn1(x))
        if self.downsample is not None:
            residual = self.downsample(x)
        out = torch.relu(self.bn2(self.conv1(x)))
        if self.drop is not None:
            out = self.drop(out)
        return self.conv2(out) + residual


class CIFARWideResNet(ImageClassifier):
    """Wide ResNet for 32x32 images.

    Parameters
    ----------
    layers : sequence of int
        Blocks per stage.
    channels : sequence of int
        Stem channels, then each stage's channels.
    dropout : float
        Dropout rate inside each block (GluonCV's ``drop_rate``).
    classes : int
        Number of classes (default 10).
    in_channels : int
        Input channels.
    norm_layer : callable
        Normalisation factory taking the number of channels.
    """

    def __init__(
        self,
        layers: Sequence[int],
        channels: Sequence[int],
        dropout: float = 0.0,
        classes: int = 10,
        in_channels: int = 3,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        names = CIFAR10_CLASSES if (classes == 10 and in_channels == 3) else None
        super().__init__(classes, in_channels, cifar_preprocessing(in_channels), [in_channels, 32, 32], names)
        stages = []
        for i, n in enumerate(layers):
            cin, cout, stride = channels[i], channels[i + 1], 1 if i == 0 else 2
            blocks = [WideBasicBlock(cin, cout, stride, cin != cout, dropout, norm_layer)]
            blocks += [WideBasicBlock(cout, cout, 1, False, dropout, norm_layer) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
        self.features = nn.Sequential(
            plain_norm(norm_layer, in_channels),
            nn.Conv2d(in_channels, channels[0], 3, 1, 1, bias=False),
            norm_layer(channels[0]),
            *stages,
            norm_layer(channels[-1]),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.output = nn.Linear(channels[-1], classes)
        init_weights(self)

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        self._check(data)
        return self.output(self.features(data))


def _wide_resnet(depth: int, width: int, **kwargs: Any) -> CIFARWideResNet:
    if (depth - 4) % 6:
        raise ValueError(f"Wide ResNet depth must be 6n+4, got {depth}")
    n = (depth - 4) // 6
    return CIFARWideResNet([n] * 3, [16, 16 * width, 32 * width, 64 * width], **kwargs)


_META = ModelFamily(task="classification", metadata={"family": "cifar_wideresnet", "paper": "https://arxiv.org/abs/1605.07146"})


@_META.register
def cifar_wideresnet16_10(**kwargs: Any) -> CIFARWideResNet:
    """WRN-16-10 for CIFAR. Keyword arguments go to :class:`CIFARWideResNet` (``dropout`` ...)."""
    return _wide_resnet(16, 10, **kwargs)


@_META.register
def cifar_wideresnet28_10(**kwargs: Any) -> CIFARWideResNet:
    """WRN-28-10 for CIFAR."""
    return _wide_resnet(28, 10, **kwargs)


@_META.register
def cifar_wideresnet40_8(**kwargs: Any) -> CIFARWideResNet:
    """WRN-40-8 for CIFAR."""
    return _wide_resnet(40, 8, **kwargs)
