"""Evaluation metrics of the vision half, one module per task.

``toolkit.cv.metrics`` re-exports every public metric, so user code imports
them from here (as GluonCV users import ``gluoncv.utils.metrics``).
"""
from .classification import TopKAccuracy, topk_accuracy, topk_correct
from .detection import COCODetectionMetric, VOC07MApMetric, VOCMApMetric
from .segmentation import SegmentationMetric

__all__ = ["TopKAccuracy", "topk_accuracy", "topk_correct", "VOCMApMetric", "VOC07MApMetric", "COCODetectionMetric",
           "SegmentationMetric"]
