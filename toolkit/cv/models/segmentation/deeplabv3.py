"""DeepLabV3 (Chen et al. 2017) on a dilated ResNet (GluonCV's ``DeepLabV3``) or MobileNetV3 (torchvision's).

ASPP (GluonCV's ``_ASPP``, torchvision's ``ASPP``): a 1x1 branch, three 3x3
branches with atrous rates 12, 24, 36, and image pooling (global average, 1x1
conv, resized back), each to 256 channels + norm + ReLU; concatenated and
projected by a 1x1 conv to 256 + norm + ReLU + dropout 0.5. Then the head's 3x3
conv + norm + ReLU (+ dropout 0.1 in GluonCV; a no-op in eval mode) + 1x1 conv.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._base import FCNHead, ResNetSegModel, SegBaseModel, classifier_block
from ._mobilenet import dilated_mobilenetv3_large
from ....zoo import register_model
from ._registry import META, register_segmentation, resolve_nclass

__all__ = ["ASPP", "DeepLabHead", "DeepLabV3", "DeepLabV3MobileNet"]


def _cbr(cin: int, cout: int, kernel: int, dilation: int, norm_layer: Any) -> list[nn.Module]:
    pad = dilation * (kernel // 2)
    return [nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation, bias=False), norm_layer(cout),
            nn.ReLU(inplace=True)]


class _ImagePooling(nn.Sequential):
    def __init__(self, cin: int, cout: int, norm_layer: Any) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), *_cbr(cin, cout, 1, 1, norm_layer))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # From 1x1 every resize (corners aligned or not) is a broadcast: expand instead.
        return super().forward(x).expand(-1, -1, x.shape[-2], x.shape[-1])


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling to ``out_channels`` (256)."""

    def __init__(self, in_channels: int, rates: Sequence[int] = (12, 24, 36), out_channels: int = 256,
                 norm_layer: Any = nn.BatchNorm2d) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            [nn.Sequential(*_cbr(in_channels, out_channels, 1, 1, norm_layer))]
            + [nn.Sequential(*_cbr(in_channels, out_channels, 3, r, norm_layer)) for r in rates]
            + [_ImagePooling(in_channels, out_channels, norm_layer)]
        )
        n = len(self.convs)
        self.project = nn.Sequential(*_cbr(n * out_channels, out_channels, 1, 1, norm_layer), nn.Dropout(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([c(x) for c in self.convs], dim=1))


class DeepLabHead(nn.Sequential):
    """ASPP, 3x3 conv 256 + norm + ReLU + dropout 0.1, 1x1 conv to the classes."""

    def __init__(self, in_channels: int, nclass: int, norm_layer: Any = nn.BatchNorm2d,
                 rates: Sequence[int] = (12, 24, 36)) -> None:
        super().__init__(ASPP(in_channels, rates, 256, norm_layer), *classifier_block(256, 256, nclass, norm_layer))


class DeepLabV3(ResNetSegModel):
    """DeepLabV3 on a dilated ResNet; parameters as :class:`~.fcn.FCN`."""

    def __init__(self, nclass: int, backbone: str = "resnet50_v1s", aux: bool = True,
                 norm_layer: Any = None, pretrained_base: bool | str = False, **kwargs: Any) -> None:
        super().__init__(nclass, backbone, aux, norm_layer, {"pretrained": pretrained_base}, **kwargs)
        norm = norm_layer or nn.BatchNorm2d
        self.set_heads(DeepLabHead(self.c4_channels, self.nclass, norm), norm)


class DeepLabV3MobileNet(SegBaseModel):
    """torchvision's DeepLabV3 MobileNetV3-Large: ASPP on the dilated 960-channel features (stride 16).

    The auxiliary FCN head reads the 40-channel stride-8 features.

    Parameters
    ----------
    nclass : int
        Number of classes.
    aux : bool
        Auxiliary head (torchvision's ``aux_loss``).
    norm_layer : callable, optional
        Normalisation factory (default BatchNorm with torchvision's eps 0.001).
    pretrained_base : bool or str
        Weights of the zoo's ``mobilenetv3_large``.
    norm_momentum : float, optional
        BatchNorm momentum of the backbone (default torchvision's 0.01).
    **kwargs
        :class:`~._base.SegBaseModel` arguments (``align_corners`` defaults to False, torchvision's).
    """

    def __init__(self, nclass: int, aux: bool = False, norm_layer: Any = None, pretrained_base: bool | str = False,
                 norm_momentum: float | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("align_corners", False)
        super().__init__(nclass, aux, **kwargs)
        self.backbone, low, high = dilated_mobilenetv3_large(norm_layer, pretrained_base, norm_momentum)
        norm = norm_layer or nn.BatchNorm2d  # torchvision's heads keep PyTorch's default eps
        self.head = DeepLabHead(high, self.nclass, norm)
        self.auxlayer = FCNHead(low, self.nclass, norm) if self.aux else None
        self.metadata["backbone"] = "mobilenetv3_large"

    def forward(self, data: torch.Tensor):
        self._check(data)
        low, high = self.backbone(data)
        aux = self.auxlayer(low) if self.auxlayer is not None and self.training else None
        return self._outputs(self.head(high), aux, data.shape[-2:])


register_segmentation("deeplab", DeepLabV3, [
    ("resnet50", "voc"), ("resnet101", "voc"), ("resnet152", "voc"), ("resnet50", "coco"), ("resnet101", "coco"),
    ("resnet152", "coco"), ("resnet50", "ade"), ("resnet101", "ade"), ("resnet50", "citys"), ("resnet101", "citys"),
])


@register_model(task="segmentation", metadata=META)
def deeplabv3_mobilenet_v3_large(**kwargs: Any) -> DeepLabV3MobileNet:
    """DeepLabV3 MobileNetV3-Large (torchvision's name; 21 classes by default, VOC's)."""
    return DeepLabV3MobileNet(resolve_nclass(kwargs, 21), **kwargs)
