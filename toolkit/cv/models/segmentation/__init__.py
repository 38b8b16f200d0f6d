"""Semantic segmentation: FCN, PSPNet, DeepLabV3 (dilated ResNets), LR-ASPP and DeepLabV3 (MobileNetV3).

Registered under GluonCV's and torchvision's names (``toolkit.zoo.list_models(task="segmentation")``):
``fcn_resnet50_voc``, ``psp_resnet50_ade``, ``deeplab_resnet101_coco`` ...,
``lraspp_mobilenet_v3_large``, ``deeplabv3_mobilenet_v3_large``. Any ResNet
v1b-family classifier of the zoo serves as backbone through ``backbone=``
(``get_model("fcn_resnet50_voc", backbone="resnet18_v1s", classes=11)``).

Eval mode returns logits (N, classes, H, W) at the input's size; training mode
with ``aux=True`` returns ``(logits, aux_logits)``, to be scored by
:class:`MixSoftmaxCrossEntropyLoss`.
"""
from ._base import FCNHead, SegBaseModel
from ._registry import DATASET_CLASSES
from .deeplabv3 import ASPP, DeepLabV3, DeepLabV3MobileNet
from .fcn import FCN
from .loss import MixSoftmaxCrossEntropyLoss
from .lraspp import LRASPP
from .multieval import MultiEvalModel
from .pspnet import PSPNet
from .factory import get_segmentation_model

__all__ = [
    "ASPP", "DATASET_CLASSES", "DeepLabV3", "DeepLabV3MobileNet", "FCN", "FCNHead", "LRASPP",
    "MixSoftmaxCrossEntropyLoss", "MultiEvalModel", "PSPNet", "SegBaseModel", "get_segmentation_model",
]
