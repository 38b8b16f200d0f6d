"""Shared pieces of the segmentation models: dilated backbones, the FCN head, the base class.

GluonCV's ``SegBaseModel`` facts kept here:

* the backbone is a classification-zoo ResNet built with ``dilated=True``
  (stages 3 and 4 at stride 8, dilation 2 and 4); its stem and four stages become
  attributes of the model (``conv1``, ``bn1``, ``layer1`` ... ``layer4``) and its
  classifier is dropped;
* the main head reads stage 4 (``c4``), the auxiliary FCN head stage 3 (``c3``);
* logits are resized bilinearly to the input's size; GluonCV's MXNet
  ``BilinearResize2D`` aligns corners (``align_corners=True``), torchvision's
  models do not (``align_corners=False``): a constructor argument picks one;
* ``base_size`` (520) and ``crop_size`` (480) are kept on the model for
  :class:`~toolkit.cv.models.segmentation.MultiEvalModel`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ....nn import HybridBlock
from ..._blocks import IMAGENET_MEAN, IMAGENET_STD, NormLayer, check_input

__all__ = ["FCNHead", "ResNetSegModel", "SegBaseModel", "classifier_block", "dilated_resnet",
           "segmentation_preprocessing"]


def segmentation_preprocessing(crop_size: int) -> dict[str, Any]:
    """What a segmentation model expects of an image (the deployment metadata contract)."""
    return {
        "type": "image",
        "layout": "NCHW",
        "color": "RGB",
        "resize": 0,
        "crop": [int(crop_size), int(crop_size)],
        "interpolation": "bilinear",
        "scale": 255.0,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
    }


def dilated_resnet(backbone: str, norm_layer: NormLayer | None = None, **kwargs: Any) -> nn.Module:
    """A classification-zoo ResNet v1b-family network with dilated stages 3 and 4.

    Parameters
    ----------
    backbone : str
        Zoo name of a :class:`~toolkit.cv.models.ResNetV1b` (``resnet50_v1s``,
        ``resnet18_v1s``, ``resnet50_v1b`` ...).
    norm_layer : callable, optional
        Normalisation factory (``nn.SyncBatchNorm`` for ``--syncbn``).
    """
    import re

    from ....zoo import get_model, list_models
    from ..resnetv1b import ResNetV1b, _resnet_v1x

    extra = dict(kwargs)
    if norm_layer is not None:
        extra["norm_layer"] = norm_layer
    small = re.fullmatch(r"resnet(18|34|50|101|152)_v1([bcdes])", str(backbone).lower())
    if small and str(backbone).lower() not in list_models() and not extra.get("pretrained"):
        # The classification zoo registers v1s only for depths 50-152 (GluonCV's); the small
        # depths the zoo rows train here (resnet18_v1s) are built from the same family code.
        extra.pop("pretrained", None)
        net = _resnet_v1x(int(small.group(1)), small.group(2), dilated=True, **extra)
    else:
        from ....zoo import get_entry

        family = str(get_entry(backbone).metadata.get("family", ""))
        if not family.startswith("resnet_v1") or family == "resnet_v1":
            raise ValueError(
                f"backbone {backbone!r} ({family or 'unknown family'}) cannot be dilated; FCN/PSPNet/DeepLabV3 take "
                "a ResNet v1b-family backbone (resnet18_v1s, resnet50_v1s, resnet101_v1b ...)"
            )
        net = get_model(backbone, dilated=True, **extra)
    if not isinstance(net, ResNetV1b):
        raise ValueError(
            f"backbone {backbone!r} is a {type(net).__name__}; FCN/PSPNet/DeepLabV3 take a ResNet v1b-family "
            "backbone (resnet18_v1s, resnet50_v1s, resnet101_v1b ...)"
        )
    return net


def classifier_block(in_channels: int, inter_channels: int, nclass: int,
                     norm_layer: NormLayer = nn.BatchNorm2d) -> list[nn.Module]:
    """The tail every GluonCV head ends with: 3x3 conv (no bias), norm, ReLU, dropout 0.1, 1x1 conv to the classes.

    A list of five modules, spliced into each head's ``nn.Sequential`` so that the
    state-dict keys stay GluonCV's/torchvision's (``head.0`` ... ``head.4`` for
    FCN, ``head.1`` ... ``head.5`` after DeepLabV3's ASPP or PSPNet's pooling).
    """
    return [
        nn.Conv2d(in_channels, inter_channels, 3, padding=1, bias=False),
        norm_layer(inter_channels),
        nn.ReLU(inplace=True),
        nn.Dropout(0.1),
        nn.Conv2d(inter_channels, nclass, 1),
    ]


class FCNHead(nn.Sequential):
    """GluonCV's ``_FCNHead`` (also torchvision's ``FCNHead``): 3x3 conv to in/4, norm, ReLU, dropout 0.1, 1x1 conv."""

    def __init__(self, in_channels: int, channels: int, norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__(*classifier_block(in_channels, in_channels // 4, channels, norm_layer))


class SegBaseModel(HybridBlock):
    """Base of every zoo segmentation model: ``data`` (N, 3, H, W) in, ``logits`` (N, classes, H, W) out.

    In training mode a model built with ``aux=True`` returns ``(logits, aux_logits)``,
    both at the input's size (GluonCV's layout); in eval mode only ``logits``.

    Parameters
    ----------
    nclass : int
        Number of classes (background included).
    aux : bool
        Whether the model has an auxiliary head.
    base_size, crop_size : int
        GluonCV's sizes, used by multi-scale evaluation and the export metadata.
    align_corners : bool
        Corner alignment of the bilinear resizes (True: GluonCV, False: torchvision).
    class_names : sequence of str, optional
        Names of the classes, kept in the metadata.
    """

    input_names = ("data",)
    output_names = ("logits",)

    def __init__(self, nclass: int, aux: bool, base_size: int = 520, crop_size: int = 480,
                 align_corners: bool = True, class_names: Sequence[str] | None = None) -> None:
        super().__init__()
        if int(nclass) < 1:
            raise ValueError(f"nclass must be a positive number of classes, got {nclass}")
        self.nclass = int(nclass)
        self.aux = bool(aux)
        self.base_size = int(base_size)
        self.crop_size = int(crop_size)
        self.align_corners = bool(align_corners)
        names = list(class_names) if class_names is not None and len(class_names) == self.nclass else None
        self.metadata.update({
            "task": "segmentation",
            "input_shape": [3, self.crop_size, self.crop_size],
            "classes": names,
            "num_classes": self.nclass,
            "preprocessing": segmentation_preprocessing(self.crop_size),
        })

    def _resize(self, x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=self.align_corners)

    def _check(self, x: torch.Tensor) -> None:
        check_input(x, 3, type(self).__name__)

    def _outputs(self, main: torch.Tensor, aux: torch.Tensor | None, size: Sequence[int]):
        main = self._resize(main, size)
        if aux is not None and self.training:
            return main, self._resize(aux, size)
        return main


class ResNetSegModel(SegBaseModel):
    """A :class:`SegBaseModel` on a dilated ResNet: holds ``conv1`` ... ``layer4``, ``head`` and ``auxlayer``.

    Subclasses build their main head and pass it to :meth:`set_heads`; the forward
    pass (main head on stage 4, auxiliary FCN head on stage 3 in training) is shared.
    """

    def __init__(self, nclass: int, backbone: str, aux: bool, norm_layer: NormLayer | None, backbone_kwargs: dict,
                 **kwargs: Any) -> None:
        super().__init__(nclass, aux, **kwargs)
        net = dilated_resnet(backbone, norm_layer, **backbone_kwargs)
        # GluonCV copies the backbone's layers onto the model (its parameter names start with them).
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.backbone_name = backbone
        self.c3_channels = _out_channels(self.layer3)
        self.c4_channels = _out_channels(self.layer4)
        self.metadata["backbone"] = backbone

    def set_heads(self, head: nn.Module, norm_layer: NormLayer) -> None:
        """Attach the main ``head`` (on stage 4) and, with ``aux``, the auxiliary FCN head on stage 3."""
        self.head = head
        self.auxlayer = FCNHead(self.c3_channels, self.nclass, norm_layer) if self.aux else None

    def base_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(c3, c4)``: the outputs of stages 3 and 4 (GluonCV's ``base_forward``)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c3 = self.layer3(self.layer2(self.layer1(x)))
        return c3, self.layer4(c3)

    def forward(self, data: torch.Tensor):
        self._check(data)
        c3, c4 = self.base_forward(data)
        aux = self.auxlayer(c3) if self.auxlayer is not None and self.training else None
        return self._outputs(self.head(c4), aux, data.shape[-2:])


def _out_channels(stage: nn.Sequential) -> int:
    last = stage[-1]
    norm = last.bn3 if hasattr(last, "bn3") else last.bn2  # bottleneck or basic block
    return int(norm.num_features if hasattr(norm, "num_features") else norm.num_channels)
