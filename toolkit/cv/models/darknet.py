"""Darknet-53 (Redmon & Farhadi 2018), YOLOv3's backbone, as GluonCV's ``darknet53``.

Every convolution is conv (no bias) + batch norm + LeakyReLU(0.1). ``features``:
a 3x3 stem (32), then per stage a 3x3/2 down-sampling convolution and residual
blocks (1x1 to ``c/2``, 3x3 back to ``c``), blocks (1, 2, 8, 8, 4) at widths
(64, 128, 256, 512, 1024); global pooling and a fully connected classifier.
The stride-8/16/32 outputs YOLOv3 takes end at ``features[14]``, ``[23]``, ``[28]``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ...zoo import register_model
from .._blocks import ImageClassifier, NormLayer, imagenet_preprocessing, init_weights

__all__ = ["DarknetBasicBlockV3", "DarknetV3", "darknet_conv"]


def darknet_conv(cin: int, cout: int, kernel: int, stride: int = 1, norm_layer: NormLayer = nn.BatchNorm2d
                 ) -> nn.Sequential:
    """Conv (no bias) + norm + LeakyReLU(0.1)."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), norm_layer(cout),
                         nn.LeakyReLU(0.1, inplace=True))


class DarknetBasicBlockV3(nn.Module):
    """``x + conv3x3(conv1x1(x))`` with the 1x1 halving the channels."""

    def __init__(self, channels: int, norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        self.body = nn.Sequential(darknet_conv(channels, channels // 2, 1, norm_layer=norm_layer),
                                  darknet_conv(channels // 2, channels, 3, norm_layer=norm_layer))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DarknetV3(ImageClassifier):
    """Darknet v3.

    Parameters
    ----------
    layers : sequence of int
        Residual blocks per stage.
    channels : sequence of int
        Width of each stage.
    classes, in_channels : int
        Number of classes and of image channels.
    norm_layer : callable
        Normalisation factory.
    """

    def __init__(self, layers: Sequence[int] = (1, 2, 8, 8, 4), channels: Sequence[int] = (64, 128, 256, 512, 1024),
                 classes: int = 1000, in_channels: int = 3, norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        if len(layers) != len(channels):
            raise ValueError(f"layers {list(layers)} and channels {list(channels)} differ in length")
        super().__init__(classes, in_channels, imagenet_preprocessing(in_channels), [in_channels, 224, 224])
        mods: list[nn.Module] = [darknet_conv(in_channels, 32, 3, norm_layer=norm_layer)]
        cin = 32
        for n, c in zip(layers, channels):
            mods.append(darknet_conv(cin, c, 3, 2, norm_layer=norm_layer))
            mods += [DarknetBasicBlockV3(c, norm_layer) for _ in range(n)]
            cin = c
        self.features = nn.Sequential(*mods, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.output = nn.Linear(cin, classes)
        init_weights(self)

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        self._check(data)
        return self.output(self.features(data))


@register_model(task="classification", metadata={"family": "darknet", "paper": "https://arxiv.org/abs/1804.02767"})
def darknet53(**kwargs: Any) -> DarknetV3:
    """Darknet-53. Keyword arguments go to :class:`DarknetV3`."""
    return DarknetV3(**kwargs)
