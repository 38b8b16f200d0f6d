"""FCN (Long et al. 2015) on a dilated ResNet, as GluonCV's ``FCN``.

Head: :class:`~._base.FCNHead` on stage 4 (2048 -> 512 -> classes for ResNet-50);
auxiliary FCN head on stage 3 when ``aux=True``.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from ._base import FCNHead, ResNetSegModel
from ._registry import DATASET_CLASSES, register_fashion_scenes, register_segmentation, resolve_nclass

__all__ = ["FCN"]


class FCN(ResNetSegModel):
    """Fully convolutional network.

    Parameters
    ----------
    nclass : int
        Number of classes.
    backbone : str
        Zoo name of a ResNet v1b-family classifier, built dilated (default ``resnet50_v1s``, GluonCV's).
    aux : bool
        Auxiliary FCN head on stage 3 (training output ``(logits, aux_logits)``).
    norm_layer : callable, optional
        Normalisation factory for backbone and heads (``nn.SyncBatchNorm`` for ``--syncbn``).
    pretrained_base : bool or str
        Weights of the backbone (``get_model``'s ``pretrained``).
    **kwargs
        ``base_size``, ``crop_size``, ``align_corners``, ``class_names`` (:class:`~._base.SegBaseModel`).
    """

    def __init__(self, nclass: int, backbone: str = "resnet50_v1s", aux: bool = True,
                 norm_layer: Any = None, pretrained_base: bool | str = False, **kwargs: Any) -> None:
        super().__init__(nclass, backbone, aux, norm_layer, {"pretrained": pretrained_base}, **kwargs)
        norm = norm_layer or nn.BatchNorm2d
        self.set_heads(FCNHead(self.c4_channels, self.nclass, norm), norm)


register_segmentation("fcn", FCN, [
    ("resnet50", "voc"), ("resnet101", "voc"), ("resnet50", "coco"), ("resnet101", "coco"),
    ("resnet50", "ade"), ("resnet101", "ade"),
])


def fcn_resnet18_v1s_fashion_scenes(**kwargs: Any) -> FCN:
    """FCN on a dilated ResNet-18 v1s, with the auxiliary head, for ``fashion-scenes`` (11 classes).

    The name is the one ``scripts/segmentation/train.py --model fcn --backbone resnet18_v1s --aux
    --dataset fashion-scenes`` gives its weights; ``pretrained=True`` loads the zoo row's
    (``model_zoo_logs/segmentation/fcn_resnet18_v1s-fashion-scenes``).
    """
    kwargs.setdefault("backbone", "resnet18_v1s")
    kwargs.setdefault("aux", True)
    return FCN(resolve_nclass(kwargs, DATASET_CLASSES["fashion-scenes"]), **kwargs)


register_fashion_scenes(
    fcn_resnet18_v1s_fashion_scenes, "fcn_resnet18_v1s_fashion-scenes", "fcn",
    "segmentation/fcn_resnet18_v1s-fashion-scenes", sha256="df30e9336e49f5b4ec5a30659193bfa6e66763704321c79ebd3f2f8032787cc2",
    metrics={'pixAcc': 86.17, 'mIoU': 34.41, 'ss_pixAcc': 90.26, 'ss_mIoU': 49.65, 'ms_pixAcc': 91.7, 'ms_mIoU': 53.98},
    crop_size=64, base_size=128)
