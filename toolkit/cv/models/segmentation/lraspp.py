"""LR-ASPP MobileNetV3-Large (Howard et al. 2019), as torchvision's ``lraspp_mobilenet_v3_large``.

Head: the 960-channel stride-16 features go through a 1x1 conv to 128 + norm +
ReLU, gated by a global-pooling branch (1x1 conv to 128, sigmoid), resized to
the stride-8 features, classified by a 1x1 conv and added to a 1x1-conv
classification of the 40-channel stride-8 features.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ....zoo import register_model
from ._base import SegBaseModel
from ._mobilenet import dilated_mobilenetv3_large
from ._registry import DATASET_CLASSES, META, register_fashion_scenes, resolve_nclass

__all__ = ["LRASPP", "LRASPPHead"]


class LRASPPHead(nn.Module):
    """The lite R-ASPP head (names and tensor order of torchvision's ``LRASPPHead``)."""

    def __init__(self, low_channels: int, high_channels: int, nclass: int, inter_channels: int = 128,
                 norm_layer: Any = nn.BatchNorm2d, align_corners: bool = False) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.cbr = nn.Sequential(nn.Conv2d(high_channels, inter_channels, 1, bias=False), norm_layer(inter_channels),
                                 nn.ReLU(inplace=True))
        self.scale = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(high_channels, inter_channels, 1, bias=False),
                                   nn.Sigmoid())
        self.low_classifier = nn.Conv2d(low_channels, nclass, 1)
        self.high_classifier = nn.Conv2d(inter_channels, nclass, 1)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        x = self.cbr(high) * self.scale(high)
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=self.align_corners)
        return self.low_classifier(low) + self.high_classifier(x)


class LRASPP(SegBaseModel):
    """LR-ASPP on the dilated zoo ``mobilenetv3_large``; no auxiliary head.

    Parameters
    ----------
    nclass : int
        Number of classes.
    inter_channels : int
        Width of the head (128).
    norm_layer : callable, optional
        Normalisation factory (default: backbone BatchNorm with torchvision's eps 0.001, head PyTorch's default).
    pretrained_base : bool or str
        Weights of the zoo's ``mobilenetv3_large``.
    norm_momentum : float, optional
        BatchNorm momentum of the backbone (default torchvision's 0.01; 0.1 for short
        from-scratch schedules, see :func:`~._mobilenet.dilated_mobilenetv3_large`).
    **kwargs
        :class:`~._base.SegBaseModel` arguments (``align_corners`` defaults to False, torchvision's).
    """

    def __init__(self, nclass: int, inter_channels: int = 128, norm_layer: Any = None,
                 pretrained_base: bool | str = False, aux: bool = False, norm_momentum: float | None = None,
                 **kwargs: Any) -> None:
        if aux:
            raise ValueError("LR-ASPP has no auxiliary head (aux=True is for FCN, PSPNet and DeepLabV3)")
        kwargs.setdefault("align_corners", False)
        super().__init__(nclass, False, **kwargs)
        self.backbone, low, high = dilated_mobilenetv3_large(norm_layer, pretrained_base, norm_momentum)
        self.head = LRASPPHead(low, high, self.nclass, inter_channels, norm_layer or nn.BatchNorm2d,
                               self.align_corners)
        self.metadata["backbone"] = "mobilenetv3_large"

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        self._check(data)
        low, high = self.backbone(data)
        return self._outputs(self.head(low, high), None, data.shape[-2:])


@register_model(task="segmentation", metadata=META)
def lraspp_mobilenet_v3_large(**kwargs: Any) -> LRASPP:
    """LR-ASPP MobileNetV3-Large (torchvision's name; 21 classes by default, VOC's)."""
    return LRASPP(resolve_nclass(kwargs, 21), **kwargs)


def lraspp_mobilenetv3_large_fashion_scenes(**kwargs: Any) -> LRASPP:
    """LR-ASPP MobileNetV3-Large for ``fashion-scenes`` (11 classes).

    The name is the one ``scripts/segmentation/train.py --model lraspp --backbone mobilenetv3_large
    --dataset fashion-scenes`` gives its weights; ``pretrained=True`` loads the zoo row's
    (``model_zoo_logs/segmentation/lraspp_mobilenetv3_large-fashion-scenes``).
    """
    return LRASPP(resolve_nclass(kwargs, DATASET_CLASSES["fashion-scenes"]), **kwargs)


register_fashion_scenes(
    lraspp_mobilenetv3_large_fashion_scenes, "lraspp_mobilenetv3_large_fashion-scenes", "lraspp",
    "segmentation/lraspp_mobilenetv3_large-fashion-scenes", sha256="db21a8a8c39b008893d5f7b0116135fceff782f43be08e0e2cf14b9e8dfd6dfb",
    metrics={'pixAcc': 89.7, 'mIoU': 46.6, 'ss_pixAcc': 91.35, 'ss_mIoU': 53.0, 'ms_pixAcc': 92.65, 'ms_mIoU': 59.07},
    crop_size=96, base_size=128)
