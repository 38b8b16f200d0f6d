"""torchvision detection checkpoints -> zoo detectors (SSDlite320-MobileNetV3, Faster R-CNN MobileNetV3-FPN).

The zoo detectors are built from the same torchvision parts (heads, RPN, RoI heads, FPN), so those
tensors keep their names (``backbone.extra`` -> ``extras``, ``backbone.fpn`` -> ``fpn``, the rest as
is). The backbone is the zoo's MobileNetV3, which holds torchvision's tensors in torchvision's order
under other module names: it is matched position by position with a strict check of each pair (same
kind of tensor, same shape), as the classifier converter does. The number of classes is read from
the checkpoint (torchvision's label ``k`` = our id ``k - 1``; 91 slots -> torchvision's COCO names).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...zoo import WeightsError, get_model
from ._common import assign_state

__all__ = ["TORCHVISION_DETECTION_NAMES", "from_torchvision_detection"]

#: zoo name -> (torchvision builder, torchvision backbone prefix, our backbone prefix, {their prefix: ours},
#: key of the classifier weight giving the number of classes (background included))
TORCHVISION_DETECTION_NAMES: dict[str, tuple[str, str, str, dict[str, str], str]] = {
    "ssdlite320_mobilenet_v3_large": (
        "ssdlite320_mobilenet_v3_large", "backbone.features.", "features.",
        {"backbone.extra.": "extras.", "head.": "head."},
        "head.classification_head.module_list.0.1.weight"),
    "fasterrcnn_mobilenet_v3_large_fpn": (
        "fasterrcnn_mobilenet_v3_large_fpn", "backbone.body.", "backbone.",
        {"backbone.fpn.": "fpn.", "rpn.": "rpn.", "roi_heads.": "roi_heads."},
        "roi_heads.box_predictor.cls_score.weight"),
    "fasterrcnn_mobilenet_v3_large_320_fpn": (
        "fasterrcnn_mobilenet_v3_large_320_fpn", "backbone.body.", "backbone.",
        {"backbone.fpn.": "fpn.", "rpn.": "rpn.", "roi_heads.": "roi_heads."},
        "roi_heads.box_predictor.cls_score.weight"),
}


def _kind(key: str) -> str:
    return key.rpartition(".")[2]


def _in_torchvision_order(state: dict[str, torch.Tensor], arch: str) -> dict[str, torch.Tensor]:
    """``state`` in torchvision's own order (files such as safetensors sort their keys; the backbone is
    matched by position). The reference is torchvision's model built on the meta device (no memory)."""
    import torchvision

    with torch.device("meta"):
        reference = getattr(torchvision.models.detection, arch)(weights=None, weights_backbone=None)
    order = [k for k in reference.state_dict() if not k.endswith("num_batches_tracked")]
    given = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    missing = [k for k in order if k not in given]
    unexpected = [k for k in given if k not in set(order)]
    if missing or unexpected:
        raise WeightsError(
            f"not a torchvision {arch} checkpoint: missing {missing[:5]}{' ...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
    return {k: given[k] for k in order}


def _num_classes(theirs: dict[str, torch.Tensor], key: str, name: str) -> int:
    if key not in theirs:
        raise WeightsError(f"not a torchvision {name} checkpoint: no {key}")
    w = theirs[key]
    if name.startswith("ssdlite"):
        # depthwise-separable head: the 1x1 convolution's rows are anchors x classes (6 anchors on the first map)
        return int(w.shape[0]) // 6
    return int(w.shape[0])


def from_torchvision_detection(theirs: dict[str, torch.Tensor], name: str, **kwargs: Any) -> nn.Module:
    """Build zoo detector ``name`` with the weights of torchvision's model of the same name.

    Parameters
    ----------
    theirs : dict
        The torchvision detector's ``state_dict()`` (its own key order, as ``state_dict()`` gives it).
    name : str
        ``ssdlite320_mobilenet_v3_large``, ``fasterrcnn_mobilenet_v3_large_fpn`` or
        ``fasterrcnn_mobilenet_v3_large_320_fpn``.
    **kwargs
        Builder arguments (``classes`` defaults to torchvision's COCO names when it has 91 slots).

    Returns
    -------
    Detector
        Fed the images torchvision's transform would produce (normalised, already at the model's size),
        its raw outputs and detections equal torchvision's.
    """
    from ..models.rcnn import torchvision_coco_names

    key = name.lower()
    arch, their_body, our_body, prefixes, cls_key = TORCHVISION_DETECTION_NAMES[key]
    theirs = _in_torchvision_order(theirs, arch)
    num = _num_classes(theirs, cls_key, key)
    if "classes" not in kwargs:
        kwargs["classes"] = torchvision_coco_names() if num == 91 else tuple(f"class{i}" for i in range(num - 1))
    model = get_model(key, **kwargs)
    if len(model.classes) + 1 != num:
        raise WeightsError(f"torchvision {arch} checkpoint has {num - 1} classes (+ background), "
                           f"classes= gives {len(model.classes)}")
    body = [(k, v) for k, v in theirs.items() if k.startswith(their_body)]
    own = [(k, v) for k, v in model.state_dict().items()
           if k.startswith(our_body) and not k.endswith("num_batches_tracked")]
    source = f"torchvision {arch} checkpoint"
    if len(own) != len(body):
        raise WeightsError(f"{source} has {len(body)} backbone tensors, {key} has {len(own)}: not the same architecture")
    state: dict[str, torch.Tensor] = {}
    for (ok, ov), (tk, tv) in zip(own, body):
        if _kind(ok) != _kind(tk) or tuple(ov.shape) != tuple(tv.shape):
            raise WeightsError(f"{source} does not fit {key}: {tk} {tuple(tv.shape)} falls on {ok} {tuple(ov.shape)}")
        state[ok] = tv
    for tk, tv in theirs.items():
        if tk.startswith(their_body):
            continue
        prefix = next((p for p in prefixes if tk.startswith(p)), None)
        if prefix is None:
            raise WeightsError(f"{source}: unexpected tensor {tk}")
        state[prefixes[prefix] + tk[len(prefix):]] = tv
    return assign_state(model, state, source)
