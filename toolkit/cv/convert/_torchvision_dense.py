"""``pretrained="torchvision"`` for the detectors and segmentation models torchvision publishes.

The checkpoints come through torchvision's own weights API and cache
(``$TORCH_HOME/hub/checkpoints``), as the classifiers' do
(:func:`toolkit.cv.convert.load_torchvision_weights`), and are converted by the
detection and segmentation converters. Segmentation models are checked on load
against torchvision's model (eval logits on one image); detectors are not,
because torchvision's detectors resize and post-process inside the model, so a
like-for-like run costs a second full detector: their converter is checked
output for output (raw head outputs, anchors, detections) by the tests instead.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...zoo import WeightsError, register_source
from ._torchvision import _torchvision_weights, catalog_rows, from_torchvision, torchvision_state_dict

__all__ = ["TORCHVISION_DENSE", "load_torchvision_dense", "torchvision_dense_catalog"]

#: zoo name -> (torchvision builder, task). Segmentation: torchvision's models were trained on
#: COCO with VOC's 21 classes, which are GluonCV's ``*_coco`` segmentation models.
TORCHVISION_DENSE: dict[str, tuple[str, str]] = {
    "ssdlite320_mobilenet_v3_large": ("ssdlite320_mobilenet_v3_large", "detection"),
    "fasterrcnn_mobilenet_v3_large_fpn": ("fasterrcnn_mobilenet_v3_large_fpn", "detection"),
    "fasterrcnn_mobilenet_v3_large_320_fpn": ("fasterrcnn_mobilenet_v3_large_320_fpn", "detection"),
    "fcn_resnet50_coco": ("fcn_resnet50", "segmentation"),
    "fcn_resnet101_coco": ("fcn_resnet101", "segmentation"),
    "deeplab_resnet50_coco": ("deeplabv3_resnet50", "segmentation"),
    "deeplab_resnet101_coco": ("deeplabv3_resnet101", "segmentation"),
    "deeplabv3_mobilenet_v3_large": ("deeplabv3_mobilenet_v3_large", "segmentation"),
    "lraspp_mobilenet_v3_large": ("lraspp_mobilenet_v3_large", "segmentation"),
}

# The converters take torchvision's names for the segmentation checkpoints of GluonCV's *_coco models.
_CONVERTER_NAME = {"fcn_resnet50_coco": "fcn_resnet50", "fcn_resnet101_coco": "fcn_resnet101",
                   "deeplab_resnet50_coco": "deeplabv3_resnet50", "deeplab_resnet101_coco": "deeplabv3_resnet101"}


def _check_segmentation(model: nn.Module, state: dict[str, torch.Tensor], arch: str) -> None:
    """The converted model's eval logits equal torchvision's model holding the same state dict."""
    import torchvision.models.segmentation as tvseg

    classes = int(model.metadata.get("num_classes") or getattr(model, "nclass", 0) or 0) or None
    kwargs: dict[str, Any] = {"weights": None, "weights_backbone": None}
    if classes:
        kwargs["num_classes"] = classes
    if not arch.startswith("lraspp"):
        kwargs["aux_loss"] = any(k.startswith("aux_classifier.") for k in state)
    reference = getattr(tvseg, arch)(**kwargs)
    reference.load_state_dict(state)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    was_training = model.training
    with torch.no_grad():
        got = model.eval()(x)
        want = reference.eval()(x)["out"]
    model.train(was_training)
    got = got[0] if isinstance(got, (tuple, list)) else got
    err = (got - want).abs().max().item()
    if err > 1e-3 * max(1.0, want.abs().max().item()):
        raise WeightsError(f"converted torchvision {arch} weights disagree with torchvision by {err:.3g}")


def load_torchvision_dense(name: str, spec: str = "", **kwargs: Any) -> tuple[nn.Module, dict[str, Any]]:
    """Zoo detector or segmentation model ``name`` with torchvision's published weights ``spec``.

    Parameters
    ----------
    name : str
        A key of :data:`TORCHVISION_DENSE`.
    spec : str
        torchvision's weights name (``"COCO_V1"``, ``"COCO_WITH_VOC_LABELS_V1"``); ``""`` or
        ``"DEFAULT"`` for torchvision's default.
    **kwargs
        Builder arguments passed to the converter.

    Returns
    -------
    (torch.nn.Module, dict)
        The model in training mode, and what the zoo records as ``metadata["weights"]``:
        torchvision's weights name, URL and published metrics (torchvision's numbers, not
        measured here).
    """
    key = name.lower()
    if key not in TORCHVISION_DENSE:
        raise WeightsError(f"torchvision publishes no weights for {name!r}")
    arch, task = TORCHVISION_DENSE[key]
    weights = _torchvision_weights(arch, spec)
    state = torchvision_state_dict(weights)
    model = from_torchvision(state, _CONVERTER_NAME.get(key, key), **kwargs)
    if task == "segmentation":
        _check_segmentation(model, dict(state), arch)
    model.train()
    categories = [c for c in weights.meta.get("categories") or []]
    metadata: dict[str, Any] = {"torchvision_categories": categories}
    if task == "segmentation":
        metadata.update(classes=categories, num_classes=len(categories))
    info = {"name": str(weights), "url": weights.url, "metrics": weights.meta.get("_metrics", {}),
            "metadata": metadata, "kwargs": {}}
    return model, info


def torchvision_dense_catalog(name: str) -> list[dict[str, Any]]:
    """torchvision's published weights for ``name`` with its numbers as published (box mAP, mIoU ...)."""
    return catalog_rows(TORCHVISION_DENSE[name.lower()][0])


for _name in TORCHVISION_DENSE:
    register_source("torchvision", _name, load_torchvision_dense, catalog=torchvision_dense_catalog)
