"""ResNeXt (Xie et al. 2017) and SE-ResNeXt as GluonCV defined them.

A ResNet v1 whose bottleneck 3x3 convolution is grouped (``cardinality``
groups of width ``D = floor(channels * bottleneck_width / 64)``, stride on
the 3x3), without biases. The SE version gates the branch with two 1x1
convolutions *with* bias (``channels // 4`` bottleneck, i.e. ratio 16 of the
block output). ``deep_stem`` and ``avg_down`` (stages 2-4 only) give the
"e" variants. GluonCV's ``last_gamma`` was inverted (it zero-initialised
the last norm when ``last_gamma=False``); here ``last_gamma=True`` zeroes it.
Module names mirror GluonCV's (``features.N``, ``body.N``, ``se.N``,
``downsample.N``, ``output``).
"""
from __future__ import annotations

import math
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
    zero_init_last_norm,
)

__all__ = ["ResNeXt", "ResNeXtBlock"]


class ResNeXtBlock(nn.Module):
    """Grouped bottleneck with ``4 * channels`` outputs."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        cardinality: int,
        bottleneck_width: int,
        stride: int,
        downsample: bool,
        use_se: bool = False,
        avg_down: bool = False,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        group_width = cardinality * math.floor(channels * (bottleneck_width / 64))
        out = channels * 4
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, group_width, 1, bias=False),
            norm_layer(group_width),
            nn.ReLU(),
            nn.Conv2d(group_width, group_width, 3, stride, 1, groups=cardinality, bias=False),
            norm_layer(group_width),
            nn.ReLU(),
            nn.Conv2d(group_width, out, 1, bias=False),
            norm_layer(out),
        )
        self.se = (
            nn.Sequential(nn.Conv2d(out, channels // 4, 1), nn.ReLU(), nn.Conv2d(channels // 4, out, 1), nn.Sigmoid())
            if use_se
            else None
        )
        if not downsample:
            self.downsample = None
        elif avg_down:
            self.downsample = nn.Sequential(
                nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False),
                nn.Conv2d(in_channels, out, 1, bias=False),
                norm_layer(out),
            )
        else:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out, 1, stride, bias=False), norm_layer(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.body(x)
        if self.se is not None:
            out = out * self.se(out.mean(dim=(2, 3), keepdim=True))
        return torch.relu(out + residual)


class ResNeXt(ImageClassifier):
    """ResNeXt.

    Parameters
    ----------
    layers : sequence of int
        Blocks per stage.
    cardinality : int
        Number of groups of the 3x3 convolutions.
    bottleneck_width : int
        Width of each group in the first stage.
    classes, in_channels : int
        Number of classes and input channels.
    last_gamma : bool
        Zero-initialise the last norm of each residual branch.
    use_se : bool
        Squeeze-and-excitation gates.
    deep_stem : bool
        Three 3x3 convolutions instead of the 7x7 stem.
    avg_down : bool
        Average-pool downsampling in the shortcut of stages 2-4.
    stem_width : int
        Width of the deep stem.
    norm_layer : callable
        Normalisation factory taking the number of channels.
    """

    def __init__(
        self,
        layers: Sequence[int],
        cardinality: int,
        bottleneck_width: int,
        classes: int = 1000,
        in_channels: int = 3,
        last_gamma: bool = False,
        use_se: bool = False,
        deep_stem: bool = False,
        avg_down: bool = False,
        stem_width: int = 64,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__(classes, in_channels, imagenet_preprocessing(in_channels), [in_channels, 224, 224])
        if deep_stem:
            stem: list[nn.Module] = [
                nn.Conv2d(in_channels, stem_width, 3, 2, 1, bias=False),
                norm_layer(stem_width),
                nn.ReLU(),
                nn.Conv2d(stem_width, stem_width, 3, 1, 1, bias=False),
                norm_layer(stem_width),
                nn.ReLU(),
                nn.Conv2d(stem_width, stem_width * 2, 3, 1, 1, bias=False),
            ]
            width = stem_width * 2
        else:
            stem = [nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)]
            width = 64
        stem += [norm_layer(width), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
        stages = []
        channels = 64
        for i, n in enumerate(layers):
            stride = 1 if i == 0 else 2
            blocks = [ResNeXtBlock(width, channels, cardinality, bottleneck_width, stride, True, use_se,
                                   avg_down and i > 0, norm_layer)]
            width = channels * 4
            blocks += [ResNeXtBlock(width, channels, cardinality, bottleneck_width, 1, False, use_se, False, norm_layer)
                       for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            channels *= 2
        self.features = nn.Sequential(*stem, *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.output = nn.Linear(width, classes)
        init_weights(self)
        if last_gamma:
            for m in self.modules():
                if isinstance(m, ResNeXtBlock):
                    zero_init_last_norm(m.body[-1])

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        self._check(data)
        return self.output(self.features(data))


_LAYERS = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}
_META = ModelFamily(task="classification", metadata={"family": "resnext", "paper": "https://arxiv.org/abs/1611.05431"})
_SE = ModelFamily(task="classification", metadata={"family": "se_resnext", "paper": "https://arxiv.org/abs/1709.01507"})


@_META.register
def resnext50_32x4d(**kwargs: Any) -> ResNeXt:
    """ResNeXt-50 32x4d. Keyword arguments go to :class:`ResNeXt`."""
    return ResNeXt(_LAYERS[50], 32, 4, **kwargs)


@_META.register
def resnext101_32x4d(**kwargs: Any) -> ResNeXt:
    """ResNeXt-101 32x4d."""
    return ResNeXt(_LAYERS[101], 32, 4, **kwargs)


@_META.register
def resnext101_64x4d(**kwargs: Any) -> ResNeXt:
    """ResNeXt-101 64x4d."""
    return ResNeXt(_LAYERS[101], 64, 4, **kwargs)


@_SE.register
def se_resnext50_32x4d(**kwargs: Any) -> ResNeXt:
    """SE-ResNeXt-50 32x4d."""
    return ResNeXt(_LAYERS[50], 32, 4, use_se=True, **kwargs)


@_SE.register
def se_resnext101_32x4d(**kwargs: Any) -> ResNeXt:
    """SE-ResNeXt-101 32x4d."""
    return ResNeXt(_LAYERS[101], 32, 4, use_se=True, **kwargs)


@_SE.register
def se_resnext101_64x4d(**kwargs: Any) -> ResNeXt:
    """SE-ResNeXt-101 64x4d."""
    return ResNeXt(_LAYERS[101], 64, 4, use_se=True, **kwargs)
