"""Detection exports: NMS inside the graph, ``toolkit predict`` detections in the image's own pixels.

The detectors' eval-mode forward already ends in :func:`~toolkit.cv.models.detection._boxes.fixed_detections`
(box decoding, per-(image, class) NMS, GluonCV's fixed-shape ``(ids, scores, bboxes)`` padded with -1).
Its NMS is one call of the custom op ``toolkit::grouped_nms``, which
:func:`toolkit.deploy.export.export_block` translates (onnxscript, ``custom_translation_table``) to one
ONNX ``NonMaxSuppression`` with the groups on its batch and class axes; onnxruntime and OpenVINO both
run it, so no hand-written NMS is needed: the export only records what a runner must know and checks
that the graph holds the NMS node. (Faster R-CNN's proposal NMS is still ``torchvision.ops.nms``
over shifted boxes: a second ``NonMaxSuppression``.)

Metadata added to ``PREFIX.json``:

* ``detection``: ``{"nms": "NonMaxSuppression", "nms_thresh", "score_thresh", "post_nms",
  "box_format": "xyxy", "coordinates": "input pixels", "padding": -1}``;
* ``preprocessing`` (the detector's): ``resize: [h, w]`` (both sides resized, aspect not kept),
  ``crop: null``, then scale/mean/std as for classification.

The predictor resizes with the same bilinear arithmetic as :mod:`toolkit.deploy.preprocess`
(half-pixel centres, float64, rounded half up), runs the graph and maps each box back by
``x * W / w``, ``y * H / h`` (not clipped), keeping detections scoring at least ``threshold``.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...deploy.fileformat import write_bytes_atomic
from ...deploy.predict import register_predictor
from ...deploy.preprocess import normalize, read_image, resize_to, to_color
from ...deploy.runtime import ExportError
from .segmentation import output_folder

__all__ = ["prepare_detection_export", "check_nms_in_graph", "detection_input", "detect", "detection_batches",
           "evaluate_detection", "postprocessing_nodes", "float_into_postprocessing"]


def prepare_detection_export(block: Any) -> Any:
    """Record the in-graph NMS and its parameters in a detector's metadata; returns the block."""
    meta = block.metadata
    meta.pop("outputs", None)  # the family's prose description; export writes the real output specs
    meta["detection"] = {
        "nms": "NonMaxSuppression",
        "nms_thresh": float(getattr(block, "nms_thresh", 0.45)),
        "score_thresh": float(getattr(block, "score_thresh", 0.01)),
        "post_nms": int(getattr(block, "post_nms", 100)),
        "box_format": "xyxy",
        "coordinates": "input pixels",
        "padding": -1,
    }
    return block


def check_nms_in_graph(onnx_file: str | os.PathLike) -> None:
    """Raise :class:`ExportError` when the exported graph holds no ``NonMaxSuppression`` node."""
    import onnx

    graph = onnx.load(os.fspath(onnx_file), load_external_data=False).graph
    ops = {n.op_type for n in graph.node}
    for f in onnx.load(os.fspath(onnx_file), load_external_data=False).functions:
        ops |= {n.op_type for n in f.node}
    if "NonMaxSuppression" not in ops:
        raise ExportError(f"{onnx_file} holds no NonMaxSuppression node: the detector's NMS was not exported")


#: ops whose outputs are features (what int8 is for)
_COMPUTE_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
#: the inputs that carry features into ops whose other inputs are indices, boxes, sizes or shapes
_FEATURE_INPUTS = {**{op: (0,) for op in ("RoiAlign", "MaxRoiPool", "Gather", "GatherElements", "GatherND", "TopK",
                                          "Reshape", "Expand", "Tile", "Slice", "Pad", "Resize")},
                   "ScatterElements": (0, 2), "ScatterND": (0, 2), "Shape": (), "Size": (), "ConstantOfShape": ()}


def postprocessing_nodes(onnx_file: str | os.PathLike) -> list[str]:
    """Names of a detector graph's nodes that are not part of its feature network, for int8 to leave in float.

    The feature network is every Conv/ConvTranspose/Gemm/MatMul and every node feeding one through a
    feature input (input 0 of RoIAlign, Gather*, TopK, Reshape, ..., inputs 0 and 2 of Scatter*; never
    through boxes, indices or shapes). The rest is post-processing: flattening the head outputs, softmax, anchor/proposal box
    decoding, top-k, NMS and the gathers of the padded output. Quantizing it gains no speed, costs box
    precision (8 bits over the image width) and breaks OpenVINO's CPU plugin: it folds the
    FakeQuantize of the decoded boxes into a fused subgraph around the Expand/Reshape before
    ``GatherElements`` and gets the batch axis wrong (``Shapes {108,1080,4} and {1,400,4} are not
    consistent``; with snippets disabled it refuses a per-axis FakeQuantize instead).
    """
    import onnx

    graph = onnx.load(os.fspath(onnx_file), load_external_data=False).graph
    producer = {out: node for node in graph.node for out in node.output if out}
    feature: set[int] = set()
    stack = [n for n in graph.node if n.op_type in _COMPUTE_OPS]
    while stack:
        node = stack.pop()
        if id(node) in feature:
            continue
        feature.add(id(node))
        positions = _FEATURE_INPUTS.get(node.op_type)
        inputs = node.input if positions is None else [node.input[i] for i in positions if i < len(node.input)]
        stack.extend(producer[i] for i in inputs if i in producer)
    return [n.name for n in graph.node if id(n) not in feature]


def float_into_postprocessing(onnx_file: str | os.PathLike, post: Sequence[str]) -> int:
    """Feed the post-processing nodes float tensors instead of dequantized ones, in place.

    Each post-processing input read from a QuantizeLinear -> DequantizeLinear pair reads the pair's
    float input instead; pairs left without consumers are dropped.

    onnxruntime's QDQ quantizer still quantizes a head's output when every consumer is excluded;
    OpenVINO's low-precision transformations then push that dequantization (one scale per head,
    concatenated along the anchors) down through Transpose/Reshape/Concat into the box decoding and
    mis-shape it (a scalar-index ``Gather`` on the last axis broadcasts the ``(1, N, 1)`` scale to
    ``(1, N, N)``, reported later by ``GatherElements``). With the heads' outputs in float, the
    decoding sees plain tensors, and box offsets and scores keep their float precision.
    Returns the number of DequantizeLinear nodes dropped.
    """
    import onnx

    model = onnx.load(os.fspath(onnx_file))
    graph = model.graph
    post = set(post)
    producer = {out: node for node in graph.node for out in node.output if out}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    outputs = {o.name for o in graph.output}
    drop, removed = set(), 0
    for dq in graph.node:
        if dq.op_type != "DequantizeLinear" or dq.output[0] in outputs:
            continue
        q = producer.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            continue
        users = consumers.get(dq.output[0], [])
        for u in users:
            if u.name in post:
                u.input[:] = [q.input[0] if i == dq.output[0] else i for i in u.input]
        if users and all(u.name in post for u in users):
            drop.add(id(dq))
            removed += 1
    kept = [n for n in graph.node if id(n) not in drop]
    read = {i for n in kept for i in n.input}
    kept = [n for n in kept if n.op_type != "QuantizeLinear" or n.output[0] in read or n.output[0] in outputs]
    del graph.node[:]
    graph.node.extend(kept)
    used = {i for n in kept for i in n.input} | {o.name for o in graph.output}
    for n in kept:  # names a subgraph (If/Loop body) reads from the outer scope
        for a in n.attribute:
            for g in [a.g] if a.HasField("g") else list(a.graphs):
                used |= {i for sub in g.node for i in sub.input}
    inits = [t for t in graph.initializer if t.name in used]  # the dropped pairs' scales and zero points
    del graph.initializer[:]
    graph.initializer.extend(inits)
    onnx.save(model, os.fspath(onnx_file))
    return removed


def _preprocessing(meta: dict[str, Any]) -> tuple[int, int, dict[str, Any]]:
    pre = meta.get("preprocessing")
    if not isinstance(pre, dict):
        raise ExportError("the detector export's metadata has no preprocessing block")
    size = pre.get("resize")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and 1 <= v <= 8192 for v in size)):
        raise ExportError(f"detector preprocessing resize must be [h, w] (1..8192), got {size!r}")
    if pre.get("crop"):
        raise ExportError("detector preprocessing with a crop is not supported (boxes map back through the resize)")
    return size[0], size[1], pre


def detection_input(path: Any, meta: dict[str, Any]) -> tuple[np.ndarray, tuple[int, int], np.ndarray]:
    """``(float32 (3, h, w) input, (H, W) of the original image, original uint8 RGB pixels)``.

    ``path`` is an image file or uint8 (H, W, C) pixels.
    """
    h, w, pre = _preprocessing(meta)
    raw = path if isinstance(path, np.ndarray) else read_image(path)
    pixels = to_color(raw, str(pre.get("color", "RGB")))
    height, width = pixels.shape[:2]
    x = normalize(resize_to(pixels, h, w), float(pre.get("scale", 255.0)), pre.get("mean", [0.0]),
                  pre.get("std", [1.0]))
    return x, (height, width), pixels


def _threshold(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ExportError(f"--threshold must be between 0 and 1, got {value!r}")
    return float(value)


def _draw(pixels: np.ndarray, items: list[dict[str, Any]], classes: list[str], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..utils import plot_bbox

    boxes = np.asarray([d["box"] for d in items], dtype=np.float32).reshape(-1, 4)
    ids = np.asarray([d["index"] for d in items], dtype=np.float32)
    scores = np.asarray([d["score"] for d in items], dtype=np.float32)
    ax = plot_bbox(pixels if pixels.shape[2] == 3 else np.repeat(pixels, 3, axis=2), boxes, scores, ids,
                   thresh=0.0, class_names=classes)
    buf = io.BytesIO()
    ax.figure.savefig(buf, format="png", bbox_inches="tight")
    plt.close(ax.figure)
    write_bytes_atomic(target, buf.getvalue())


@register_predictor("detection")
def detect(
    model: Any,
    inputs: Sequence[str | os.PathLike],
    k: int = 5,
    with_logits: bool = False,
    threshold: float = 0.5,
    draw: str | os.PathLike | None = None,
) -> list[dict[str, Any]]:
    """Detect objects in image files with an exported detector.

    Parameters
    ----------
    model : ExportedBlock or OpenVINOBlock
        A loaded detection export (NMS in the graph).
    inputs : sequence of path
        Image files.
    k, with_logits
        Unused (the ``toolkit predict`` interface).
    threshold : float
        Keep detections scoring at least this (0..1; GluonCV's display default 0.5).
    draw : path, optional
        Folder for ``<stem>.png`` pictures with the boxes (``toolkit.cv.utils.plot_bbox``).

    Returns
    -------
    list of dict
        ``{"input", "detections": [{"index", "label", "score", "box": [x1, y1, x2, y2]}]}`` per image,
        best first, boxes in the original image's pixels.
    """
    meta = model.metadata
    threshold = _threshold(threshold)
    if not isinstance(meta.get("detection"), dict) or meta["detection"].get("nms") != "NonMaxSuppression":
        raise ExportError("the export's metadata has no detection block (NMS in the graph); re-export the "
                          "detector with toolkit export")
    classes = meta.get("classes")
    if not isinstance(classes, list) or not classes:
        raise ExportError("a detector export lists its class names in the metadata (classes)")
    folder = output_folder(draw, "--draw") if draw is not None else None
    results = []
    for path in inputs:
        x, (height, width), pixels = detection_input(path, meta)
        outs = model(x[None])
        if not isinstance(outs, (list, tuple)) or len(outs) != 3:
            raise ExportError("a detector export returns three outputs (ids, scores, bboxes)")
        ids, scores, boxes = (np.asarray(o) for o in outs)
        if ids.shape[:1] != (1,) or boxes.shape[-1] != 4 or scores.shape[:2] != boxes.shape[:2]:
            raise ExportError(f"unexpected detector output shapes {ids.shape}, {scores.shape}, {boxes.shape}")
        h, w = x.shape[1:]
        sx, sy = width / w, height / h
        items = []
        for j in range(boxes.shape[1]):
            cls, score = int(ids[0, j, 0]), float(scores[0, j, 0])
            if cls < 0 or score < threshold:
                continue
            if cls >= len(classes) or not np.isfinite(boxes[0, j]).all():
                raise ExportError(f"the detector returned class {cls} or a non-finite box for {path}")
            b = boxes[0, j].astype(np.float64)
            items.append({"index": cls, "label": str(classes[cls]), "score": score,
                          "box": [float(b[0] * sx), float(b[1] * sy), float(b[2] * sx), float(b[3] * sy)]})
        if folder is not None:
            target = folder / f"{Path(path).stem}.png"
            try:
                _draw(pixels, items, [str(c) for c in classes], target)
            except OSError as err:
                raise ExportError(f"cannot write {target}: {err.strerror or err}") from err
        results.append({"input": os.fspath(path), "detections": items})
    return results


def _scenes(split: str):
    from ..data import FashionScenes

    return FashionScenes(split)


def _pixels(image: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image).transpose(1, 2, 0), dtype=np.uint8)


def detection_batches(spec: str, meta: dict[str, Any], batch_size: int, limit: int):
    """Calibration batches for a detector: a folder of images or ``fashion-scenes`` (its train split)."""
    if spec.lower() in ("fashion-scenes", "fashion_scenes"):
        ds = _scenes("train")
        count, get = len(ds), lambda i: _pixels(ds[i][0])
    else:
        folder = Path(spec).expanduser()
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp")) \
            if folder.is_dir() else []
        if not files:
            raise ExportError(f"calibration data {spec!r} is neither a folder of images nor fashion-scenes")
        count, get = len(files), lambda i: files[i]
    total = min(count, limit)
    for start in range(0, total, batch_size):
        yield np.stack([detection_input(get(i), meta)[0] for i in range(start, min(total, start + batch_size))])


def evaluate_detection(sessions: dict[str, Any], meta: dict[str, Any], val: str, batch_size: int = 8,
                       limit: int | None = None) -> dict[str, Any]:
    """VOC07 11-point mAP (GluonCV's ``VOC07MApMetric``) of each onnxruntime session on ``fashion-scenes`` val.

    Boxes are compared in the original images' pixels (the predictor's mapping).
    """
    from ..data.detection import to_gluoncv_label
    from ..metrics import VOC07MApMetric

    if val.lower() not in ("fashion-scenes", "fashion_scenes"):
        raise ExportError(f"detection validation data {val!r} is not a known set (fashion-scenes)")
    ds = _scenes("val")
    classes = meta.get("classes") or []
    if list(ds.classes) != list(classes):
        raise ExportError(f"{val} has classes {list(ds.classes)}, the detector {classes}")
    n = len(ds) if limit is None else min(len(ds), limit)
    metrics = {k: VOC07MApMetric(iou_thresh=0.5, class_names=list(classes)) for k in sessions}
    name = meta["inputs"][0]["name"]
    for i in range(n):
        image, target = ds[i]
        x, (height, width), _ = detection_input(_pixels(image), meta)
        label = to_gluoncv_label(target)
        scale = np.array([width / x.shape[2], height / x.shape[1]] * 2, dtype=np.float32)
        for key, sess in sessions.items():
            ids, scores, boxes = (np.asarray(o) for o in sess.run(None, {name: x[None]}))
            boxes = np.where(ids >= 0, boxes * scale, -1)
            metrics[key].update(boxes, ids, scores, label[None, :, :4], label[None, :, 4:5], label[None, :, 5:6])
    result: dict[str, Any] = {"samples": int(n), "val": val}
    for key, metric in metrics.items():
        names, values = metric.get()
        result[f"{key}_mAP"] = float(values[-1] if isinstance(values, list) else values)
    return result
