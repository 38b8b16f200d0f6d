"""VGG 11/13/16/19 (Simonyan & Zisserman 2014), with and without batch norm, as GluonCV names them.

``features`` holds the 3x3 convolutions (+ norm) + ReLU and the 2x2 max pools,
``head`` the two 4096-wide fully connected layers with dropout, ``output`` the
classifier. :class:`VGGAtrous` turns a VGG-16's convolutions into the SSD-300
backbone (GluonCV's ``vgg16_atrous``): conv4_3 L2-normalised (learned scale,
initially 20), pool5 3x3/1, fc6 as a 3x3 convolution of dilation 6, fc7 as 1x1.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ...zoo import register_model
from .._blocks import ImageClassifier, imagenet_preprocessing, init_weights

__all__ = ["L2Normalization", "VGG", "VGGAtrous"]

_SPEC = {11: [1, 1, 2, 2, 2], 13: [2, 2, 2, 2, 2], 16: [2, 2, 3, 3, 3], 19: [2, 2, 4, 4, 4]}
_FILTERS = [64, 128, 256, 512, 512]


class VGG(ImageClassifier):
    """VGG.

    Parameters
    ----------
    layers : sequence of int
        Convolutions in each of the five stages.
    filters : sequence of int
        Channels of each stage.
    classes, in_channels : int
        Number of classes and of input channels.
    batch_norm : bool
        Batch norm after every convolution.
    dropout : float
        Dropout after each fully connected layer of the head.
    """

    def __init__(self, layers: Sequence[int], filters: Sequence[int] = _FILTERS, classes: int = 1000,
                 in_channels: int = 3, batch_norm: bool = False, dropout: float = 0.5) -> None:
        if len(layers) != len(filters):
            raise ValueError(f"layers {list(layers)} and filters {list(filters)} differ in length")
        super().__init__(classes, in_channels, imagenet_preprocessing(in_channels), [in_channels, 224, 224])
        mods: list[nn.Module] = []
        cin = in_channels
        for n, f in zip(layers, filters):
            for _ in range(n):
                mods.append(nn.Conv2d(cin, f, 3, 1, 1))
                if batch_norm:
                    mods.append(nn.BatchNorm2d(f))
                mods.append(nn.ReLU(inplace=True))
                cin = f
            mods.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        self.features = nn.Sequential(*mods)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(7), nn.Flatten(), nn.Linear(cin * 49, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
        )
        self.output = nn.Linear(4096, classes)
        self.layers, self.batch_norm = list(layers), batch_norm
        init_weights(self)

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        self._check(data)
        return self.output(self.head(self.features(data)))


class L2Normalization(nn.Module):
    """``x / ||x||_2`` over channels times a learned per-channel scale (SSD's conv4_3 norm)."""

    def __init__(self, channels: int, scale: float = 20.0, eps: float = 1e-10) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(scale)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.sqrt((x * x).sum(dim=1, keepdim=True) + self.eps)
        return x / norm * self.weight.view(1, -1, 1, 1)


class VGGAtrous(nn.Module):
    """SSD-300's VGG-16 backbone: returns (L2-normalised conv4_3, fc7), strides 8 and 16 (at 300: 38, 19).

    Parameters
    ----------
    vgg : VGG
        A VGG-16 (without batch norm in GluonCV); its convolutions are reused, not copied.
    """

    def __init__(self, vgg: VGG) -> None:
        super().__init__()
        if not isinstance(vgg, VGG):
            raise TypeError(f"VGGAtrous takes a VGG classifier, not {type(vgg).__name__}")
        mods = list(vgg.features)
        pools = [i for i, m in enumerate(mods) if isinstance(m, nn.MaxPool2d)]
        # up to conv4_3 + ReLU (before the 4th pool), then stage 5 (without its pool)
        self.stage4 = nn.Sequential(*mods[:pools[3]])
        self.norm4 = L2Normalization(_FILTERS[3])
        self.stage5 = nn.Sequential(*mods[pools[3]:pools[4]])
        self.pool5 = nn.MaxPool2d(3, 1, 1)
        self.fc6 = nn.Conv2d(_FILTERS[4], 1024, 3, 1, padding=6, dilation=6)
        self.fc7 = nn.Conv2d(1024, 1024, 1)
        self.relu = nn.ReLU(inplace=True)
        for m in (self.fc6, self.fc7):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
        self.channels = [_FILTERS[3], 1024]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c4 = self.stage4(x)
        x = self.pool5(self.stage5(c4))
        x = self.relu(self.fc7(self.relu(self.fc6(x))))
        return [self.norm4(c4), x]


_META = {"family": "vgg", "paper": "https://arxiv.org/abs/1409.1556"}


def _vgg(depth: int, batch_norm: bool, **kwargs: Any) -> VGG:
    return VGG(_SPEC[depth], batch_norm=batch_norm, **kwargs)


@register_model(task="classification", metadata=_META)
def vgg11(**kwargs: Any) -> VGG:
    """VGG-11. Keyword arguments go to :class:`VGG`."""
    return _vgg(11, False, **kwargs)


@register_model(task="classification", metadata=_META)
def vgg13(**kwargs: Any) -> VGG:
    """VGG-13."""
    return _vgg(13, False, **kwargs)


@register_model(task="classification", metadata=_META)
def vgg16(**kwargs: Any) -> VGG:
    """VGG-16 (the SSD-300 backbone)."""
    return _vgg(16, False, **kwargs)


@register_model(task="classification", metadata=_META)
def vgg19(**kwargs: Any) -> VGG:
    """VGG-19."""
    return _vgg(19, False, **kwargs)


@register_model(task="classification", metadata=_META)
def vgg16_bn(**kwargs: Any) -> VGG:
    """VGG-16 with batch norm."""
    return _vgg(16, True, **kwargs)
