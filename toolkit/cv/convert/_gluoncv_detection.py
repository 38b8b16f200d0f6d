"""GluonCV ``.params`` of SSD, YOLOv3 and (C4) Faster R-CNN -> zoo detectors.

SSD (``ssd_512_*``: a backbone cut by GluonCV's ``FeatureExpander``):

* The backbone is a ``SymbolBlock``, so its tensors are named after MXNet's layer counters
  (``features.mobilenet0_conv3_weight``, ``features.resnetv10_stage2_batchnorm4_gamma`` ...). They are
  matched layer by layer, in the file's order (the graph's), with the convolutions and norms of our
  backbone in module order; every pair must have the same kind and shapes.
* ``features.expand_trans_conv{i}`` / ``expand_trans_bn{i}`` / ``expand_conv{i}`` / ``expand_bn{i}`` ->
  ``extras.{i}.0`` / ``.1`` / ``.3`` / ``.4``. These norms are MXNet symbol BatchNorms with
  ``fix_gamma=True``: MXNet uses 1 whatever ``gamma`` holds, so ``weight`` loads as ones.
* ``class_predictors.{i}.predictor`` / ``box_predictors.{i}.predictor`` -> ``class_predictors.{i}`` /
  ``box_predictors.{i}``.
* ``anchor_generators.{i}.anchors`` (GluonCV's precomputed anchor grid) are not weights: they are
  compared with our anchors on the same grid, so a file of another ``sizes``/``ratios``/``steps``
  configuration is an error rather than a silently wrong detector.

YOLOv3: ``stages.{i}.*`` -> ``features.stages.{i}.*`` (both cut the same classifier ``features``
at strides 8, 16, 32); ``yolo_blocks`` and ``transitions`` keep their names;
``yolo_outputs.{i}.prediction`` -> ``yolo_outputs.{i}``; ``yolo_outputs.{i}.anchors`` are checked
against ours and ``yolo_outputs.{i}.offsets`` (the cell grid) dropped.

``classes`` is read from the file when it has the model's default number of classes (VOC 20,
COCO 80); otherwise the class names must be given (a ``.params`` file has no names).

Faster R-CNN (GluonCV's C4 ``faster_rcnn_resnet50_v1b_*``): ``features.0/1`` -> our stem
``backbone.stages.0.0.0/1``, ``features.4-6`` (layer1-3) -> ``backbone.stages.0.1-3``,
``top_features.0`` (layer4) -> ``roi_heads.box_head.0``, ``rpn.conv1.0`` / ``rpn.score`` / ``rpn.loc``
-> torchvision's ``rpn.head.conv.0.0`` / ``cls_logits`` / ``bbox_pred``, ``class_predictor`` ->
``roi_heads.box_predictor.cls_score``, and ``box_predictor`` (``C * 4`` rows: GluonCV predicts no
background box) -> ``bbox_pred`` with four zero background rows first. The model is built with
``postprocess="gluoncv"`` (unless ``postprocess=`` is passed): GluonCV's RPN anchors, proposal
filtering and final per-class NMS (see :mod:`toolkit.cv.models.rcnn`), so that the converted model
gives GluonCV's detections; ``rpn.anchor_generator.anchors`` (GluonCV's precomputed anchor grid) is
compared with the model's anchors, as SSD's are. GluonCV's output is class-major and also holds
detections of its ``-1`` padding proposals (boxes ``-1, -1, -1, -1``); ours are the contract's:
the ``post_nms`` best real detections, best first.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ...zoo import WeightsError, get_entry, get_model
from ._common import assign_state, mxnet_norm_name, rename_by_rules, to_tensor

__all__ = ["from_gluoncv_detection", "gluoncv_detection_state"]

_SYMBOL_PARAM = re.compile(r"^features\.(.+)_(weight|bias|gamma|beta|running_mean|running_var|moving_mean|moving_var)$")
_EXPAND = re.compile(
    r"^features\.expand_(trans_conv|trans_bn|conv|bn)(\d+)_(weight|bias|gamma|beta|moving_mean|moving_var)$")
_EXPAND_SLOT = {"trans_conv": 0, "trans_bn": 1, "conv": 3, "bn": 4}
_KIND = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_var": "running_var",
         "weight": "weight", "bias": "bias", "running_mean": "running_mean", "running_var": "running_var"}


def _tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor) and value.device.type == "meta":
        return value.float()  # names and shapes only (the tests' full-size manifests)
    return to_tensor(value).float()


def _family(name: str) -> str:
    family = str(get_entry(name).metadata.get("family", ""))
    if family == "faster_rcnn" and name.startswith("faster_rcnn_"):
        return "faster_rcnn_fpn" if "_fpn_" in name else family
    if family not in ("ssd", "yolo3"):
        raise ValueError(f"from_gluoncv reads GluonCV's SSD (ssd_512_*), YOLOv3 (yolo3_*) and Faster R-CNN "
                         f"(faster_rcnn_resnet50_v1b_*, faster_rcnn_fpn_resnet50_v1b_*) detectors, not {name!r}")
    return family


def _backbone_layers(features: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in features.named_modules()
            if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear))]


def _ssd_backbone(model: nn.Module, theirs: list[tuple[str, torch.Tensor]], source: str,
                  root: str = "features") -> dict[str, torch.Tensor]:
    """Match the ``SymbolBlock`` backbone layer by layer (file order) with ours (``model.<root>``, module order)."""
    layers: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in theirs:
        m = _SYMBOL_PARAM.match(key)
        if m is None:
            raise WeightsError(f"{source}: unexpected backbone tensor {key!r}")
        layers.setdefault(m.group(1), {})[_KIND[m.group(2)]] = value
    ours = _backbone_layers(getattr(model, root))
    if len(layers) != len(ours):
        raise WeightsError(f"{source} has {len(layers)} backbone layers up to the detector's features, the model's "
                           f"backbone {len(ours)}: another backbone (pass backbone=...)")
    state: dict[str, torch.Tensor] = {}
    for (layer, tensors), (path, module) in zip(layers.items(), ours):
        own = {k: v for k, v in module.state_dict().items() if k != "num_batches_tracked"}
        if set(tensors) != set(own) or any(tuple(tensors[k].shape) != tuple(own[k].shape) for k in own):
            got = {k: tuple(v.shape) for k, v in tensors.items()}
            want = {k: tuple(v.shape) for k, v in own.items()}
            raise WeightsError(f"{source}: backbone layer {layer} {got} does not fit {root}.{path} "
                               f"({type(module).__name__} {want}): another backbone (pass backbone=...)")
        for k, v in tensors.items():
            state[f"{root}.{path}.{k}"] = v
    return state


def _ssd_state(model: nn.Module, arrays: Mapping[str, Any], source: str) -> tuple[dict[str, torch.Tensor], dict]:
    state: dict[str, torch.Tensor] = {}
    backbone: list[tuple[str, torch.Tensor]] = []
    anchors: dict[int, torch.Tensor] = {}
    for key, value in arrays.items():
        t = _tensor(value)
        m = _EXPAND.match(key)
        if m is not None:
            layer, index, kind = m.groups()
            kind = _KIND[kind]
            if layer.endswith("bn") and kind == "weight":
                t = torch.ones_like(t)  # fix_gamma=True: MXNet ignores the stored gamma
            state[f"extras.{index}.{_EXPAND_SLOT[layer]}.{kind}"] = t
            continue
        m = re.match(r"^(class|box)_predictors\.(\d+)\.predictor\.(weight|bias)$", key)
        if m is not None:
            state[f"{m.group(1)}_predictors.{m.group(2)}.{m.group(3)}"] = t
            continue
        m = re.match(r"^anchor_generators\.(\d+)\.anchors$", key)
        if m is not None:
            anchors[int(m.group(1))] = t
            continue
        if key.startswith("features."):
            backbone.append((key, t))
        else:
            state[key] = t  # assign_state reports it as not in the model
    state.update(_ssd_backbone(model, backbone, source))
    return state, anchors


def _check_ssd_anchors(model: nn.Module, anchors: dict[int, torch.Tensor], source: str) -> None:
    from ..models.ssd import ssd_anchors

    for i, grid in sorted(anchors.items()):
        if grid.device.type == "meta" or i >= len(model.steps):
            continue
        h, w = int(grid.shape[2]), int(grid.shape[3])
        ours = ssd_anchors([(h, w)], model.sizes[i:i + 2], [model.ratios[i]], [model.steps[i]])
        theirs = grid.reshape(-1, 4)
        if theirs.shape != ours.shape or not torch.allclose(theirs, ours, rtol=1e-4, atol=1e-3):
            raise WeightsError(
                f"{source}: the anchors of feature map {i} differ from the model's (sizes {model.sizes[i:i + 2]}, "
                f"ratios {model.ratios[i]}, step {model.steps[i]}): the file is of another SSD configuration")


def _yolo_state(arrays: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict]:
    state: dict[str, torch.Tensor] = {}
    anchors: dict[int, torch.Tensor] = {}
    for key, value in arrays.items():
        t = _tensor(value)
        new = mxnet_norm_name(key)
        m = re.match(r"^yolo_outputs\.(\d+)\.(anchors|offsets)$", key)
        if m is not None:
            if m.group(2) == "anchors":
                anchors[int(m.group(1))] = t
            continue  # offsets: the cell grid, computed by the model
        new = re.sub(r"^stages\.", "features.stages.", new)
        new = re.sub(r"^yolo_outputs\.(\d+)\.prediction\.", r"yolo_outputs.\1.", new)
        state[new] = t
    return state, anchors


def _check_yolo_anchors(model: nn.Module, anchors: dict[int, torch.Tensor], source: str) -> None:
    for i, theirs in sorted(anchors.items()):
        if theirs.device.type == "meta" or i >= len(model.anchor_sizes):
            continue
        ours = torch.tensor(model.anchor_sizes[i], dtype=torch.float32)
        if theirs.numel() != ours.numel() or not torch.allclose(theirs.reshape(-1), ours):
            raise WeightsError(f"{source}: the anchors of output {i} {theirs.reshape(-1).tolist()} differ from the "
                               f"model's {ours.tolist()}")


# GluonCV's C4 Faster R-CNN -> ours: ``features`` (conv1, bn1, relu, maxpool, layer1..3) is our first
# backbone segment (stem Sequential, layer1..3), ``top_features.0`` (layer4) our box head
_RCNN_RULES = [
    (r"^features\.([01])\.", lambda m: f"backbone.stages.0.0.{m.group(1)}."),
    (r"^features\.([4-6])\.", lambda m: f"backbone.stages.0.{int(m.group(1)) - 3}."),
    (r"^top_features\.0\.", lambda m: "roi_heads.box_head.0."),
    (r"^rpn\.conv1\.0\.", lambda m: "rpn.head.conv.0.0."),
    (r"^rpn\.score\.", lambda m: "rpn.head.cls_logits."),
    (r"^rpn\.loc\.", lambda m: "rpn.head.bbox_pred."),
    (r"^class_predictor\.", lambda m: "roi_heads.box_predictor.cls_score."),
    (r"^box_predictor\.", lambda m: "roi_heads.box_predictor.bbox_pred."),
]


def _with_background_box(name: str, t: torch.Tensor) -> torch.Tensor:
    """GluonCV predicts no background box: torchvision's first 4 box-regression rows are zero."""
    if name.startswith("roi_heads.box_predictor.bbox_pred."):
        return torch.cat([torch.zeros((4,) + tuple(t.shape[1:]), device=t.device), t], 0)
    return t


def _rcnn_state(arrays: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[int, torch.Tensor]]:
    state: dict[str, torch.Tensor] = {}
    anchors: dict[int, torch.Tensor] = {}
    for key, value in arrays.items():
        t = _tensor(value)
        if key == "rpn.anchor_generator.anchors":
            anchors[0] = t  # (1, 1, H, W, A * 4): GluonCV's anchor grid, checked, not loaded
            continue
        new = mxnet_norm_name(key)
        new = rename_by_rules(new, _RCNN_RULES) or new
        state[new] = _with_background_box(new, t)
    return state, anchors


def _check_rcnn_anchors(model: nn.Module, anchors: dict[int, torch.Tensor], source: str) -> None:
    """GluonCV's anchor grids (one per level) against the model's on a corner of each
    (``postprocess="gluoncv"`` only)."""
    if getattr(model, "postprocess", "") != "gluoncv":
        return
    generator = model.rpn.anchor_generator
    count = generator.num_anchors_per_location()[0]
    for level, grid in sorted(anchors.items()):
        if grid.device.type == "meta":
            continue
        if level >= len(generator.strides) or grid.dim() != 5 or grid.shape[-1] != count * 4:
            raise WeightsError(f"{source}: RPN anchor grid {level} {tuple(grid.shape)} does not fit the model's "
                               f"{len(generator.strides)} levels of {count} anchors per position")
        h, w = min(4, int(grid.shape[2])), min(5, int(grid.shape[3]))
        theirs = grid[0, 0, :h, :w].reshape(-1, 4)
        stride = generator.strides[level]
        ys, xs = torch.meshgrid(torch.arange(h) * stride, torch.arange(w) * stride, indexing="ij")
        shifts = torch.stack([xs, ys, xs, ys], -1).reshape(-1, 1, 4).float()
        ours = (shifts + generator.cell_anchors[level].float().view(1, -1, 4)).reshape(-1, 4)
        if theirs.shape != ours.shape or not torch.allclose(theirs, ours, atol=1e-3):
            raise WeightsError(f"{source}: the RPN anchors of level {level} differ from the model's (sizes "
                               f"{generator.sizes[level]}, ratios {generator.aspect_ratios[level]}, stride "
                               f"{generator.strides[level]}): the file is of another Faster R-CNN configuration")


# GluonCV's FPN Faster R-CNN -> ours (``features.*`` other than P*: the SymbolBlock backbone)
_FPN_RULES = [
    (r"^features\.P([2-5])_conv_lat_", lambda m: f"fpn.inner_blocks.{int(m.group(1)) - 2}.0."),
    (r"^features\.P([2-5])_conv1_", lambda m: f"fpn.layer_blocks.{int(m.group(1)) - 2}.0."),
    (r"^features\.P6_conv1_", lambda m: "fpn.p6."),
    (r"^rpn\.rpn_head\.conv1\.0\.", lambda m: "rpn.head.conv.0.0."),
    (r"^rpn\.rpn_head\.score\.", lambda m: "rpn.head.cls_logits."),
    (r"^rpn\.rpn_head\.loc\.", lambda m: "rpn.head.bbox_pred."),
    (r"^box_features\.0\.", lambda m: "roi_heads.box_head.fc6."),
    (r"^box_features\.2\.", lambda m: "roi_heads.box_head.fc7."),
    (r"^class_predictor\.", lambda m: "roi_heads.box_predictor.cls_score."),
    (r"^box_predictor\.", lambda m: "roi_heads.box_predictor.bbox_pred."),
]


def _fpn_state(model: nn.Module, arrays: Mapping[str, Any], source: str
               ) -> tuple[dict[str, torch.Tensor], dict[int, torch.Tensor]]:
    state: dict[str, torch.Tensor] = {}
    backbone: list[tuple[str, torch.Tensor]] = []
    anchors: dict[int, torch.Tensor] = {}
    for key, value in arrays.items():
        t = _tensor(value)
        m = re.match(r"^rpn\.anchor_generator\.(\d+)\.anchors$", key)
        if m is not None:
            anchors[int(m.group(1))] = t
            continue
        new = rename_by_rules(key, _FPN_RULES)
        if new is None and key.startswith("features."):
            backbone.append((key, t))
            continue
        new = new or key  # unmatched: assign_state reports it as not in the model
        state[new] = _with_background_box(new, t)
    state.update(_ssd_backbone(model, backbone, source, root="backbone"))
    return state, anchors


def gluoncv_detection_state(model: nn.Module, name: str, arrays: Mapping[str, Any], source: str = "GluonCV file"
                            ) -> dict[str, torch.Tensor]:
    """GluonCV detector tensors renamed to ``model``'s names (see the module docstring).

    ``arrays`` may hold ``meta`` tensors (names and shapes only): the anchor checks are then skipped.
    """
    family = _family(name)
    if family.startswith("faster_rcnn"):
        if (getattr(model, "fpn", None) is not None) != (family == "faster_rcnn_fpn"):
            raise ValueError(f"{name} and the model disagree on FPN")
        state, anchors = _fpn_state(model, arrays, source) if family == "faster_rcnn_fpn" else _rcnn_state(arrays)
        _check_rcnn_anchors(model, anchors, source)
        return state
    if family == "ssd":
        state, anchors = _ssd_state(model, arrays, source)
        _check_ssd_anchors(model, anchors, source)
    else:
        state, anchors = _yolo_state(arrays)
        _check_yolo_anchors(model, anchors, source)
    return state


def _num_classes(family: str, arrays: Mapping[str, Any], source: str) -> int:
    if family == "ssd":
        cls, box = arrays.get("class_predictors.0.predictor.weight"), arrays.get("box_predictors.0.predictor.weight")
        if cls is None or box is None:
            raise WeightsError(f"{source} has no SSD predictors (class_predictors.0.predictor.weight): "
                               "not a GluonCV SSD")
        anchors = int(box.shape[0]) // 4
        return int(cls.shape[0]) // anchors - 1
    if family.startswith("faster_rcnn"):
        cls = arrays.get("class_predictor.weight")
        rpn = "rpn.rpn_head.score.weight" if family == "faster_rcnn_fpn" else "rpn.score.weight"
        if cls is None or rpn not in arrays:
            raise WeightsError(f"{source} has no R-CNN predictors (class_predictor.weight): not a GluonCV Faster R-CNN")
        return int(cls.shape[0]) - 1
    pred, anc = arrays.get("yolo_outputs.0.prediction.weight"), arrays.get("yolo_outputs.0.anchors")
    if pred is None or anc is None:
        raise WeightsError(f"{source} has no YOLOv3 outputs (yolo_outputs.0.prediction.weight): not a GluonCV YOLOv3")
    return int(pred.shape[0]) // (int(np.prod(anc.shape)) // 2) - 5


def from_gluoncv_detection(arrays: Mapping[str, Any], name: str, source: str, **kwargs: Any) -> nn.Module:
    """Build zoo detector ``name`` (GluonCV's name) with GluonCV's parameters ``arrays``.

    ``classes`` defaults to the name's classes when the file has as many; other builder arguments
    (``backbone=`` for another base network than the name's) go to the builder.
    """
    family = _family(name)
    count = _num_classes(family, arrays, source)
    if "classes" not in kwargs:
        from ..models.detection._classes import COCO_CLASSES, VOC_CLASSES

        default = COCO_CLASSES if name.endswith("_coco") else VOC_CLASSES
        if len(default) != count:
            raise WeightsError(f"{source} has {count} classes, {name} {len(default)}: pass classes=[...] "
                               f"({count} names; a .params file does not store them)")
    if family.startswith("faster_rcnn"):
        kwargs.setdefault("postprocess", "gluoncv")
    if family == "faster_rcnn_fpn" and kwargs["postprocess"] == "gluoncv":
        # the widths a .params file of GluonCV's FPN R-CNN shows (GluonCV's: 256, 1024, 1024)
        for arg, key in (("fpn_channels", "features.P2_conv1_weight"), ("box_channels", "box_features.0.weight"),
                         ("rpn_channels", "rpn.rpn_head.conv1.0.weight")):
            if key not in arrays:
                raise WeightsError(f"{source} has no {key}: not a GluonCV FPN Faster R-CNN")
            kwargs.setdefault(arg, int(arrays[key].shape[0]))
    model = get_model(name, **kwargs)
    state = gluoncv_detection_state(model, name, arrays, source)
    return assign_state(model, state, source)
