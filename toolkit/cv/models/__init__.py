"""Vision model zoo: importing this package registers every family with :mod:`toolkit.zoo`.

Build models with ``toolkit.zoo.get_model("resnet50_v1d", classes=10)``;
``toolkit.zoo.list_models(task="classification")`` lists them.
"""
# Imported for their side effect: each family module registers its builders.
from . import (  # noqa: F401
    cifar_resnet,
    cifar_wideresnet,
    mobilenet,
    mobilenetv3,
    resnet,
    resnetv1b,
    resnext,
    segmentation,
)
from . import vgg, darknet, ssd, yolo, rcnn  # noqa: F401,E401  detection families (+ their backbones)
from .cifar_resnet import CIFARResNetV1, CIFARResNetV2
from .cifar_wideresnet import CIFARWideResNet
from .mobilenet import MobileNet, MobileNetV2
from .mobilenetv3 import MobileNetV3
from .resnet import ResNetV1, ResNetV2
from .resnetv1b import ResNetV1b
from .resnext import ResNeXt

__all__ = [
    "CIFARResNetV1",
    "CIFARResNetV2",
    "CIFARWideResNet",
    "MobileNet",
    "MobileNetV2",
    "MobileNetV3",
    "ResNeXt",
    "ResNetV1",
    "ResNetV1b",
    "ResNetV2",
]
