"""MobileNet v1 (Howard et al. 2017) and v2 (Sandler et al. 2018) as GluonCV defined them.

Facts kept from GluonCV so its weights load unchanged:

* Widths are ``int(c * multiplier)`` (truncated, not rounded to multiples of
  8); at multiplier 1.0 this equals torchvision's MobileNetV2.
* v1: stem conv3x3/2 + norm + ReLU, then 13 depthwise-separable pairs
  (depthwise 3x3 + norm + ReLU, pointwise 1x1 + norm + ReLU), global pooling
  and a fully connected classifier.
* v2: ReLU6; inverted residual blocks with expansion 6 (1 for the first,
  which then has no expansion convolution), identity shortcut when stride is
  1 and channels are kept; last 1x1 convolution to 1280 channels
  (``int(1280 * multiplier)`` above 1.0); GluonCV's classifier is a
  bias-free 1x1 convolution, torchvision's a dropout + ``Linear`` with bias:
  ours is dropout (default 0, GluonCV's recipe) + ``Linear`` with bias
  (zero when GluonCV weights are loaded).

Module names mirror GluonCV's (``features.N``, ``features.N.out.M``).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...zoo import ModelFamily
from .._blocks import (
    ImageClassifier,
    NormLayer,
    conv_bn_act,
    imagenet_preprocessing,
    init_weights,
)

__all__ = ["LinearBottleneck", "MobileNet", "MobileNetV2"]


class MobileNet(ImageClassifier):
    """MobileNet v1.

    Parameters
    ----------
    multiplier : float
        Width multiplier.
    classes : int
        Number of classes.
    in_channels : int
        Input channels.
    dropout : float
        Dropout before the classifier (0 in GluonCV).
    norm_layer : callable
        Normalisation factory taking the number of channels.
    """

    def __init__(
        self,
        multiplier: float = 1.0,
        classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.0,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__(classes, in_channels, imagenet_preprocessing(in_channels), [in_channels, 224, 224])
        dw_channels = [int(c * multiplier) for c in [32, 64] + [128] * 2 + [256] * 2 + [512] * 6 + [1024]]
        channels = [int(c * multiplier) for c in [64] + [128] * 2 + [256] * 2 + [512] * 6 + [1024] * 2]
        strides = [1, 2] * 3 + [1] * 5 + [2, 1]
        layers = conv_bn_act(in_channels, int(32 * multiplier), 3, 2, norm_layer=norm_layer)
        for dwc, c, s in zip(dw_channels, channels, strides):
            layers += conv_bn_act(dwc, dwc, 3, s, groups=dwc, norm_layer=norm_layer)
            layers += conv_bn_act(dwc, c, 1, norm_layer=norm_layer)
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.drop = nn.Dropout(dropout) if dropout > 0 else None
        self.output = nn.Linear(channels[-1], classes)
        init_weights(self)

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        self._check(data)
        x = self.features(data)
        if self.drop is not None:
            x = self.drop(x)
        return self.output(x)


class LinearBottleneck(nn.Module):
    """MobileNetV2 inverted residual: [1x1 expand] - depthwise 3x3 - linear 1x1 (+ identity)."""

    def __init__(self, in_channels: int, channels: int, t: int, stride: int, norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        self.use_shortcut = stride == 1 and in_channels == channels
        mid = in_channels * t
        layers: list[nn.Module] = []
        if t != 1:
            layers += conv_bn_act(in_channels, mid, 1, norm_layer=norm_layer, act=nn.ReLU6)
        layers += conv_bn_act(mid, mid, 3, stride, groups=mid, norm_layer=norm_layer, act=nn.ReLU6)
        layers += conv_bn_act(mid, channels, 1, norm_layer=norm_layer, act=None)
        self.out = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.out(x)
        return out + x if self.use_shortcut else out


class MobileNetV2(ImageClassifier):
    """MobileNet v2. Parameters as :class:`MobileNet`."""

    def __init__(
        self,
        multiplier: float = 1.0,
        classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.0,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__(classes, in_channels, imagenet_preprocessing(in_channels), [in_channels, 224, 224])
        in_group = [int(c * multiplier) for c in [32] + [16] + [24] * 2 + [32] * 3 + [64] * 4 + [96] * 3 + [160] * 3]
        out_group = [int(c * multiplier) for c in [16] + [24] * 2 + [32] * 3 + [64] * 4 + [96] * 3 + [160] * 3 + [320]]
        ts = [1] + [6] * 16
        strides = [1, 2] * 2 + [1, 1, 2] + [1] * 6 + [2] + [1] * 3
        layers = conv_bn_act(in_channels, int(32 * multiplier), 3, 2, norm_layer=norm_layer, act=nn.ReLU6)
        for cin, c, t, s in zip(in_group, out_group, ts, strides):
            layers.append(LinearBottleneck(cin, c, t, s, norm_layer))
        last = int(1280 * multiplier) if multiplier > 1.0 else 1280
        layers += conv_bn_act(out_group[-1], last, 1, norm_layer=norm_layer, act=nn.ReLU6)
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.drop = nn.Dropout(dropout) if dropout > 0 else None
        self.output = nn.Linear(last, classes)
        init_weights(self)

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        self._check(data)
        x = self.features(data)
        if self.drop is not None:
            x = self.drop(x)
        return self.output(x)


_V1 = ModelFamily(task="classification", metadata={"family": "mobilenet", "paper": "https://arxiv.org/abs/1704.04861"})
_V2 = ModelFamily(task="classification", metadata={"family": "mobilenetv2", "paper": "https://arxiv.org/abs/1801.04381"})


@_V1.register(name="mobilenet1.0")
def mobilenet1_0(**kwargs: Any) -> MobileNet:
    """MobileNet v1, width 1.0. Keyword arguments go to :class:`MobileNet`."""
    return MobileNet(1.0, **kwargs)


@_V1.register(name="mobilenet0.75")
def mobilenet0_75(**kwargs: Any) -> MobileNet:
    """MobileNet v1, width 0.75."""
    return MobileNet(0.75, **kwargs)


@_V1.register(name="mobilenet0.5")
def mobilenet0_5(**kwargs: Any) -> MobileNet:
    """MobileNet v1, width 0.5."""
    return MobileNet(0.5, **kwargs)


@_V1.register(name="mobilenet0.25")
def mobilenet0_25(**kwargs: Any) -> MobileNet:
    """MobileNet v1, width 0.25."""
    return MobileNet(0.25, **kwargs)


@_V2.register(name="mobilenetv2_1.0")
def mobilenet_v2_1_0(**kwargs: Any) -> MobileNetV2:
    """MobileNet v2, width 1.0 (torchvision's ``mobilenet_v2``). Keyword arguments go to :class:`MobileNetV2`."""
    return MobileNetV2(1.0, **kwargs)


@_V2.register(name="mobilenetv2_0.75")
def mobilenet_v2_0_75(**kwargs: Any) -> MobileNetV2:
    """MobileNet v2, width 0.75."""
    return MobileNetV2(0.75, **kwargs)


@_V2.register(name="mobilenetv2_0.5")
def mobilenet_v2_0_5(**kwargs: Any) -> MobileNetV2:
    """MobileNet v2, width 0.5."""
    return MobileNetV2(0.5, **kwargs)


@_V2.register(name="mobilenetv2_0.25")
def mobilenet_v2_0_25(**kwargs: Any) -> MobileNetV2:
    """MobileNet v2, width 0.25."""
    return MobileNetV2(0.25, **kwargs)
