"""Deploying vision models beyond classification: segmentation (and, as they export, detection).

Importing this package registers the ``segmentation`` predictor with
:func:`toolkit.deploy.predict.register_predictor`; ``toolkit.deploy`` imports it
lazily (``LAZY_PREDICTORS``) so that ``toolkit-core`` works without ``toolkit-cv``.
"""
from .segmentation import (
    evaluate_segmentation,
    export_segmentation,
    prepare_segmentation_export,
    segment,
    segmentation_palette,
)

__all__ = ["evaluate_segmentation", "export_segmentation", "prepare_segmentation_export", "segment",
           "segmentation_palette", "prepare_export"]

#: task -> function(block) that adds what the export of that task needs (palette ...)
_PREPARERS = {"segmentation": prepare_segmentation_export}


def prepare_export(block):
    """Add the task-specific metadata (e.g. a segmentation palette) to ``block`` before export; returns it."""
    task = (getattr(block, "metadata", None) or {}).get("task")
    fn = _PREPARERS.get(task)
    return fn(block) if fn is not None else block
