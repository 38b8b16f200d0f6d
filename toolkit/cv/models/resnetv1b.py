"""ResNet v1b and its "bag of tricks" variants v1c, v1d, v1e, v1s (GluonCV's ``ResNetV1b``).

How they differ from :mod:`toolkit.cv.models.resnet` v1 and from each other:

* v1b: the bottleneck puts the stride on its 3x3 convolution (not the first
  1x1) and no convolution has a bias; otherwise ResNet v1. This is
  torchvision's ResNet, layer for layer and name for name.
* v1c: "deep stem": the 7x7/2 convolution becomes three 3x3 convolutions
  (``stem_width``/2, ``stem_width``, ``2*stem_width`` channels, ``stem_width=32``).
* v1d: deep stem + "average-pool downsampling": the shortcut projection is
  AvgPool(stride, ceil_mode, count_include_pad=False) then a stride-1 1x1
  convolution, instead of a strided 1x1 that drops 3/4 of the positions.
* v1e: v1d with ``stem_width=64``.
* v1s: deep stem with ``stem_width=64``, no average-pool downsampling.

``last_gamma=True`` zero-initialises the last norm of each residual branch.
Module names mirror GluonCV's (``conv1``, ``bn1``, ``layerN.M.convK``,
``downsample.N``, ``fc``), which are also torchvision's.
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
    zero_init_last_norm,
)

__all__ = ["BasicBlockV1b", "BottleneckV1b", "ResNetV1b"]


class BasicBlockV1b(nn.Module):
    """Two 3x3 convolutions (stride on the first), post-activation."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
        previous_dilation: int = 1,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, dilation, dilation=dilation, bias=False)
        self.bn1 = norm_layer(planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, previous_dilation, dilation=previous_dilation, bias=False)
        self.bn2 = norm_layer(planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.downsample = downsample

    def last_norm(self) -> nn.Module:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += residual
        return self.relu2(out)


class BottleneckV1b(nn.Module):
    """1x1 - 3x3 (stride) - 1x1 bottleneck without biases, output ``4 * planes`` channels."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
        previous_dilation: int = 1,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = norm_layer(planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, dilation, dilation=dilation, bias=False)
        self.bn2 = norm_layer(planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = norm_layer(planes * 4)
        self.relu3 = nn.ReLU(inplace=True)
        self.downsample = downsample

    def last_norm(self) -> nn.Module:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += residual
        return self.relu3(out)


class ResNetV1b(ImageClassifier):
    """ResNet v1b/c/d/e/s.

    Parameters
    ----------
    block : type
        :class:`BasicBlockV1b` or :class:`BottleneckV1b`.
    layers : sequence of int
        Blocks in each of the four stages.
    classes : int
        Number of classes.
    in_channels : int
        Input channels.
    dilated : bool
        Keep stages 3 and 4 at stride 8 with dilation 2 and 4 (for dense prediction).
    norm_layer : callable
        Normalisation factory taking the number of channels.
    last_gamma : bool
        Zero-initialise the last norm of each residual branch.
    deep_stem : bool
        Three 3x3 convolutions instead of the 7x7 stem.
    stem_width : int
        Width of the deep stem (its output has ``2 * stem_width`` channels).
    avg_down : bool
        Average-pool then stride-1 1x1 convolution in shortcut projections.
    final_drop : float
        Dropout before the classifier.
    """

    def __init__(
        self,
        block: type,
        layers: Sequence[int],
        classes: int = 1000,
        in_channels: int = 3,
        dilated: bool = False,
        norm_layer: NormLayer = nn.BatchNorm2d,
        last_gamma: bool = False,
        deep_stem: bool = False,
        stem_width: int = 32,
        avg_down: bool = False,
        final_drop: float = 0.0,
    ) -> None:
        if len(layers) != 4:
            raise ValueError(f"ResNetV1b has 4 stages, got layers={list(layers)}")
        super().__init__(classes, in_channels, imagenet_preprocessing(in_channels), [in_channels, 224, 224])
        self.inplanes = stem_width * 2 if deep_stem else 64
        if deep_stem:
            self.conv1: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, stem_width, 3, 2, 1, bias=False),
                norm_layer(stem_width),
                nn.ReLU(inplace=True),
                nn.Conv2d(stem_width, stem_width, 3, 1, 1, bias=False),
                norm_layer(stem_width),
                nn.ReLU(inplace=True),
                nn.Conv2d(stem_width, stem_width * 2, 3, 1, 1, bias=False),
            )
        else:
            self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        make = {"block": block, "avg_down": avg_down, "norm_layer": norm_layer}
        self.layer1 = self._make_layer(planes=64, blocks=layers[0], **make)
        self.layer2 = self._make_layer(planes=128, blocks=layers[1], stride=2, **make)
        if dilated:
            self.layer3 = self._make_layer(planes=256, blocks=layers[2], dilation=2, **make)
            self.layer4 = self._make_layer(planes=512, blocks=layers[3], dilation=4, **make)
        else:
            self.layer3 = self._make_layer(planes=256, blocks=layers[2], stride=2, **make)
            self.layer4 = self._make_layer(planes=512, blocks=layers[3], stride=2, **make)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.drop = nn.Dropout(final_drop) if final_drop > 0 else None
        self.fc = nn.Linear(512 * block.expansion, classes)
        init_weights(self)
        if last_gamma:
            for m in self.modules():
                if isinstance(m, (BasicBlockV1b, BottleneckV1b)):
                    zero_init_last_norm(m.last_norm())

    def _make_layer(
        self, block: type, planes: int, blocks: int, stride: int = 1, dilation: int = 1,
        avg_down: bool = False, norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> nn.Sequential:
        out = planes * block.expansion
        downsample = None
        if stride != 1 or self.inplanes != out:
            if avg_down:
                # GluonCV keeps a (no-op) 1x1 pool for stride 1: an Identity keeps its numbering.
                pool: nn.Module = (
                    nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)
                    if stride != 1 else nn.Identity()
                )
                downsample = nn.Sequential(pool, nn.Conv2d(self.inplanes, out, 1, 1, bias=False), norm_layer(out))
            else:
                downsample = nn.Sequential(nn.Conv2d(self.inplanes, out, 1, stride, bias=False), norm_layer(out))
        if dilation not in (1, 2, 4):
            raise ValueError(f"unsupported dilation {dilation}")
        first_dilation = 2 if dilation == 4 else 1
        layers = [block(self.inplanes, planes, stride, first_dilation, downsample, dilation, norm_layer)]
        self.inplanes = out
        layers += [block(out, planes, 1, dilation, None, dilation, norm_layer) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        self._check(data)
        x = self.maxpool(self.relu(self.bn1(self.conv1(data))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.flat(self.avgpool(x))
        if self.drop is not None:
            x = self.drop(x)
        return self.fc(x)


_LAYERS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}
_VARIANTS: dict[str, dict[str, Any]] = {
    "b": {},
    "c": {"deep_stem": True, "stem_width": 32},
    "d": {"deep_stem": True, "stem_width": 32, "avg_down": True},
    "e": {"deep_stem": True, "stem_width": 64, "avg_down": True},
    "s": {"deep_stem": True, "stem_width": 64},
}


def _resnet_v1x(depth: int, variant: str, **kwargs: Any) -> ResNetV1b:
    block = BasicBlockV1b if depth < 50 else BottleneckV1b
    return ResNetV1b(block, _LAYERS[depth], **{**_VARIANTS[variant], **kwargs})


_V1X = {v: ModelFamily(task="classification", metadata={"family": f"resnet_v1{v}", "paper": "https://arxiv.org/abs/1812.01187"})
        for v in "bcdes"}


@_V1X["b"].register
def resnet18_v1b(**kwargs: Any) -> ResNetV1b:
    """ResNet-18 v1b (torchvision's ResNet-18). Keyword arguments go to :class:`ResNetV1b`."""
    return _resnet_v1x(18, "b", **kwargs)


@_V1X["b"].register
def resnet34_v1b(**kwargs: Any) -> ResNetV1b:
    """ResNet-34 v1b."""
    return _resnet_v1x(34, "b", **kwargs)


@_V1X["b"].register
def resnet50_v1b(**kwargs: Any) -> ResNetV1b:
    """ResNet-50 v1b (stride on the 3x3 convolution)."""
    return _resnet_v1x(50, "b", **kwargs)


@_V1X["b"].register
def resnet101_v1b(**kwargs: Any) -> ResNetV1b:
    """ResNet-101 v1b."""
    return _resnet_v1x(101, "b", **kwargs)


@_V1X["b"].register
def resnet152_v1b(**kwargs: Any) -> ResNetV1b:
    """ResNet-152 v1b."""
    return _resnet_v1x(152, "b", **kwargs)


@_V1X["c"].register
def resnet50_v1c(**kwargs: Any) -> ResNetV1b:
    """ResNet-50 v1c: deep stem (width 32)."""
    return _resnet_v1x(50, "c", **kwargs)


@_V1X["c"].register
def resnet101_v1c(**kwargs: Any) -> ResNetV1b:
    """ResNet-101 v1c."""
    return _resnet_v1x(101, "c", **kwargs)


@_V1X["c"].register
def resnet152_v1c(**kwargs: Any) -> ResNetV1b:
    """ResNet-152 v1c."""
    return _resnet_v1x(152, "c", **kwargs)


@_V1X["d"].register
def resnet50_v1d(**kwargs: Any) -> ResNetV1b:
    """ResNet-50 v1d: deep stem (width 32) and average-pool downsampling."""
    return _resnet_v1x(50, "d", **kwargs)


@_V1X["d"].register
def resnet101_v1d(**kwargs: Any) -> ResNetV1b:
    """ResNet-101 v1d."""
    return _resnet_v1x(101, "d", **kwargs)


@_V1X["d"].register
def resnet152_v1d(**kwargs: Any) -> ResNetV1b:
    """ResNet-152 v1d."""
    return _resnet_v1x(152, "d", **kwargs)


@_V1X["e"].register
def resnet50_v1e(**kwargs: Any) -> ResNetV1b:
    """ResNet-50 v1e: deep stem (width 64) and average-pool downsampling."""
    return _resnet_v1x(50, "e", **kwargs)


@_V1X["e"].register
def resnet101_v1e(**kwargs: Any) -> ResNetV1b:
    """ResNet-101 v1e."""
    return _resnet_v1x(101, "e", **kwargs)


@_V1X["e"].register
def resnet152_v1e(**kwargs: Any) -> ResNetV1b:
    """ResNet-152 v1e."""
    return _resnet_v1x(152, "e", **kwargs)


@_V1X["s"].register
def resnet50_v1s(**kwargs: Any) -> ResNetV1b:
    """ResNet-50 v1s: deep stem (width 64)."""
    return _resnet_v1x(50, "s", **kwargs)


@_V1X["s"].register
def resnet101_v1s(**kwargs: Any) -> ResNetV1b:
    """ResNet-101 v1s."""
    return _resnet_v1x(101, "s", **kwargs)


@_V1X["s"].register
def resnet152_v1s(**kwargs: Any) -> ResNetV1b:
    """ResNet-152 v1s."""
    return _resnet_v1x(152, "s", **kwargs)


def group_norm32(channels: int) -> nn.GroupNorm:
    """GroupNorm with 32 groups (GluonCV's ``GroupNorm`` default), a picklable ``norm_layer``."""
    return nn.GroupNorm(32, channels)


@_V1X["b"].register
def resnet50_v1b_gn(**kwargs: Any) -> ResNetV1b:
    """ResNet-50 v1b with GroupNorm (32 groups) in place of BatchNorm."""
    kwargs.setdefault("norm_layer", group_norm32)
    return _resnet_v1x(50, "b", **kwargs)


@_V1X["b"].register
def resnet101_v1b_gn(**kwargs: Any) -> ResNetV1b:
    """ResNet-101 v1b with GroupNorm (32 groups)."""
    kwargs.setdefault("norm_layer", group_norm32)
    return _resnet_v1x(101, "b", **kwargs)
