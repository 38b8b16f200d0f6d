"""Weights from elsewhere into zoo models, checked output for output against the originals.

* :func:`from_torchvision` - torchvision classifier checkpoints (ResNet,
  ResNeXt, MobileNetV2, MobileNetV3).
* :func:`from_gluoncv` - GluonCV/MXNet ``.params`` files, parsed with numpy
  (:func:`read_params`), no MXNet needed: classifiers, FCN/PSPNet/DeepLabV3,
  SSD and YOLOv3.

Importing this package also registers ``get_model(name, pretrained="torchvision")``
for every name of :data:`TORCHVISION_NAMES` and of :data:`TORCHVISION_DENSE`
(torchvision's detectors and segmentation models) with
:func:`toolkit.zoo.register_source`, each with a loader and a catalog of
torchvision's published numbers.
"""
from ._gluoncv import from_gluoncv, gluoncv_state
from ._torchvision import TORCHVISION_NAMES, from_torchvision
from ._torchvision_dense import TORCHVISION_DENSE
from ...zoo.mxnet_params import ParamsFormatError, read_params

__all__ = ["TORCHVISION_DENSE", "TORCHVISION_NAMES", "ParamsFormatError", "from_gluoncv", "from_torchvision", "gluoncv_state", "read_params"]
