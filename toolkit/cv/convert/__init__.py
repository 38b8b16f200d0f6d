"""Weights from elsewhere into zoo models, checked output for output against the originals.

* :func:`from_torchvision` - torchvision classifier checkpoints (ResNet,
  ResNeXt, MobileNetV2, MobileNetV3).
* :func:`from_gluoncv` - GluonCV/MXNet ``.params`` files, parsed with numpy
  (:func:`read_params`), no MXNet needed.
"""
from ._gluoncv import from_gluoncv, gluoncv_state
from ._torchvision import TORCHVISION_NAMES, from_torchvision
from ...zoo.mxnet_params import ParamsFormatError, read_params

__all__ = ["TORCHVISION_NAMES", "ParamsFormatError", "from_gluoncv", "from_torchvision", "gluoncv_state", "read_params"]
