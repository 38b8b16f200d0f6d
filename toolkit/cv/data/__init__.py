"""Vision datasets: MNIST, Fashion-MNIST, CIFAR-10/100, ImageNet and image folders.

All read standard on-disk formats from ``toolkit.data.data_root()`` (``$TOOLKIT_DATA``)
and raise :class:`toolkit.data.MissingDatasetError` (saying which files go where)
when missing, :class:`DatasetFormatError` when malformed.
"""
from ._base import DatasetFormatError, MissingDatasetError
from .cifar import CIFAR10, CIFAR100
from .folder import ImageDecodeError, ImageFolderDataset, ImageNet, read_image
from .mnist import MNIST, FashionMNIST, read_idx
from .detection import VOC_CLASSES, COCODetection, MixupDetection, VOCDetection, detection_batchify, to_gluoncv_label  # noqa: E402,E501
from .scenes import FashionScenes, build_fashion_scenes  # noqa: E402
from .segmentation import (ADE20KSegmentation, CitySegmentation, COCOSegmentation, FashionScenesSegmentation,  # noqa: E501
                           VOCAugSegmentation, VOCSegmentation)

__all__ = [
    "MNIST", "FashionMNIST", "CIFAR10", "CIFAR100", "ImageNet", "ImageFolderDataset",
    "DatasetFormatError", "ImageDecodeError", "MissingDatasetError", "read_idx", "read_image",
    "COCODetection", "VOCDetection", "VOC_CLASSES", "FashionScenes", "build_fashion_scenes",
    "detection_batchify", "to_gluoncv_label", "MixupDetection",
    "VOCSegmentation", "VOCAugSegmentation", "ADE20KSegmentation", "CitySegmentation", "COCOSegmentation",
    "FashionScenesSegmentation",
]
