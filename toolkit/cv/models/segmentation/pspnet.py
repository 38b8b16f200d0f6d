"""PSPNet (Zhao et al. 2017) on a dilated ResNet, as GluonCV's ``PSPNet``.

Head (GluonCV's ``_PSPHead``): pyramid pooling of stage 4 to 1x1, 2x2, 3x3 and
6x6 (adaptive average pooling, each a 1x1 conv to in/4 + norm + ReLU, resized
back bilinearly), concatenated with the input (2x channels), then 3x3 conv to
512 + norm + ReLU + dropout 0.1 + 1x1 conv to the classes.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._base import ResNetSegModel, classifier_block
from ._registry import register_segmentation

__all__ = ["PSPNet", "PyramidPooling"]


class PyramidPooling(nn.Module):
    """GluonCV's ``_PyramidPooling``: output has ``2 * in_channels`` channels."""

    bins = (1, 2, 3, 6)

    def __init__(self, in_channels: int, norm_layer: Any = nn.BatchNorm2d, align_corners: bool = True) -> None:
        super().__init__()
        out = in_channels // 4
        self.align_corners = align_corners
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), nn.Conv2d(in_channels, out, 1, bias=False), norm_layer(out),
                          nn.ReLU(inplace=True))
            for b in self.bins
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        feats = [x] + [F.interpolate(s(x), size=size, mode="bilinear", align_corners=self.align_corners)
                       for s in self.stages]
        return torch.cat(feats, dim=1)


class PSPNet(ResNetSegModel):
    """Pyramid scene parsing network; parameters as :class:`~.fcn.FCN`."""

    def __init__(self, nclass: int, backbone: str = "resnet50_v1s", aux: bool = True,
                 norm_layer: Any = None, pretrained_base: bool | str = False, **kwargs: Any) -> None:
        super().__init__(nclass, backbone, aux, norm_layer, {"pretrained": pretrained_base}, **kwargs)
        norm = norm_layer or nn.BatchNorm2d
        c4 = self.c4_channels
        head = nn.Sequential(PyramidPooling(c4, norm, self.align_corners),
                             *classifier_block(2 * c4, 512, self.nclass, norm))
        self.set_heads(head, norm)


register_segmentation("psp", PSPNet, [
    ("resnet50", "voc"), ("resnet101", "voc"), ("resnet101", "coco"), ("resnet50", "ade"), ("resnet101", "ade"),
    ("resnet101", "citys"),
])
