"""The zoo's MobileNetV3-Large as a dilated segmentation backbone (torchvision's recipe).

torchvision builds it with ``dilated=True``: the last three blocks (from the
fifth stride-2 stage on) use dilation 2 and the strided one stride 1, so the
960-channel features are at stride 16; the 40-channel output of the block
ending stride 8 feeds LR-ASPP's low branch and DeepLabV3's auxiliary head. The
zoo's :class:`~toolkit.cv.models.MobileNetV3` has no dilation argument, so its
depthwise convolutions are re-parameterised in place (stride, dilation,
padding; the weights are unchanged).
"""
from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import nn

__all__ = ["MobileNetV3Features", "dilated_mobilenetv3_large"]

# Positions in the zoo's ``features``: 3 stem modules, then 15 blocks, then conv-norm-act and pooling.
_STEM = 3
_LOW_BLOCK = 3  # the fourth block (40 channels, stride 8)
_DILATED_FROM = 12  # the last three blocks


class MobileNetV3Features(nn.Module):
    """``x -> (low, high)``: stride-8 40-channel and stride-16 960-channel features."""

    def __init__(self, low: nn.Sequential, high: nn.Sequential) -> None:
        super().__init__()
        self.low = low
        self.high = high

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = self.low(x)
        return low, self.high(low)


#: torchvision's BatchNorm momentum for MobileNetV3 (PyTorch's default is 0.1).
TORCHVISION_MOMENTUM = 0.01


def torchvision_mobilenet_norm(channels: int, momentum: float = TORCHVISION_MOMENTUM) -> nn.Module:
    """BatchNorm as torchvision's MobileNetV3 has it (eps 0.001, momentum 0.01)."""
    return nn.BatchNorm2d(channels, eps=0.001, momentum=momentum)


def dilated_mobilenetv3_large(norm_layer: Any = None, pretrained: bool | str = False,
                              norm_momentum: float | None = None) -> tuple[MobileNetV3Features, int, int]:
    """The zoo's ``mobilenetv3_large`` without its classifier, dilated; returns ``(features, 40, 960)``.

    ``norm_momentum`` replaces torchvision's BatchNorm momentum 0.01 of the default norm layer
    (not of a given ``norm_layer``). Training from scratch wants PyTorch's 0.1: with 0.01 the
    running statistics trail the fast-moving weights by about 100 steps, and a short schedule
    evaluates with statistics that no longer fit (a model that segments in training mode then
    predicts background only in eval mode).
    """
    from ....zoo import get_model
    from ..mobilenetv3 import MobileNetV3Unit

    if norm_momentum is not None and not 0.0 < float(norm_momentum) <= 1.0:
        raise ValueError(f"norm_momentum must be in (0, 1], got {norm_momentum}")
    if norm_layer is None:
        momentum = TORCHVISION_MOMENTUM if norm_momentum is None else float(norm_momentum)
        norm_layer = partial(torchvision_mobilenet_norm, momentum=momentum)
    net = get_model("mobilenetv3_large", pretrained=pretrained, norm_layer=norm_layer)
    layers = list(net.features.children())[:-1]  # drop the global pooling
    blocks = layers[_STEM:_STEM + 15]
    for unit in blocks[_DILATED_FROM:]:
        assert isinstance(unit, MobileNetV3Unit)
        conv = unit.conv1.conv
        k = conv.kernel_size[0]
        conv.stride, conv.dilation, conv.padding = (1, 1), (2, 2), (k - 1, k - 1)
    split = _STEM + _LOW_BLOCK + 1
    low, high = nn.Sequential(*layers[:split]), nn.Sequential(*layers[split:])
    low_channels = blocks[_LOW_BLOCK].conv2.conv.out_channels
    high_channels = layers[-3].out_channels
    return MobileNetV3Features(low, high), int(low_channels), int(high_channels)
