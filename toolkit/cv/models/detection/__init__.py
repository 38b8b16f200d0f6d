"""Pieces shared by the detectors: box coding, fixed-shape NMS, backbone features, the base class."""
from ._backbone import BackboneFeatures, build_backbone, classifier_stages
from ._base import (ClassLayer, Detector, detection_preprocessing, fashion_scenes_weights, labels_to_targets,
                    same_detections)
from ._boxes import NormalizedBoxCenterCoder, center_to_corner, corner_to_center, fixed_detections
from ._classes import COCO_CLASSES, VOC_CLASSES
from . import _nms_capture  # noqa: F401 - NMS keeping 0 or 1 box inside captured graphs

__all__ = [
    "BackboneFeatures", "COCO_CLASSES", "ClassLayer", "Detector", "NormalizedBoxCenterCoder", "VOC_CLASSES",
    "build_backbone", "center_to_corner", "classifier_stages", "corner_to_center", "detection_preprocessing",
    "fashion_scenes_weights", "fixed_detections", "labels_to_targets", "same_detections",
]
