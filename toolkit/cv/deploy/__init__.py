"""Deploying vision models beyond classification: segmentation and detection.

Importing this package registers the ``segmentation`` and ``detection`` predictors with
:func:`toolkit.deploy.predict.register_predictor`; ``toolkit.deploy`` imports it
lazily (``LAZY_PREDICTORS``) so that ``toolkit-core`` works without ``toolkit-cv``.
"""
from .detection import (
    check_nms_in_graph,
    detect,
    detection_batches,
    detection_input,
    evaluate_detection,
    float_into_postprocessing,
    postprocessing_nodes,
    prepare_detection_export,
)
from .segmentation import (
    evaluate_segmentation,
    export_segmentation,
    prepare_segmentation_export,
    segment,
    segmentation_palette,
)

__all__ = ["check_nms_in_graph", "detect", "detection_batches", "detection_input", "evaluate_detection", "float_into_postprocessing", "postprocessing_nodes", "prepare_detection_export", "evaluate_segmentation", "export_segmentation", "prepare_segmentation_export", "segment",
           "segmentation_palette", "prepare_export"]

#: task -> function(block) that adds what the export of that task needs (palette ...)
_PREPARERS = {"segmentation": prepare_segmentation_export, "detection": prepare_detection_export}


def prepare_export(block):
    """Add the task-specific metadata (e.g. a segmentation palette) to ``block`` before export; returns it."""
    task = (getattr(block, "metadata", None) or {}).get("task")
    fn = _PREPARERS.get(task)
    return fn(block) if fn is not None else block
