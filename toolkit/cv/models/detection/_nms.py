"""``toolkit::grouped_nms``: NMS within many groups at once, exported as one ONNX ``NonMaxSuppression``.

ONNX's ``NonMaxSuppression`` takes boxes ``(B, N, 4)`` and scores ``(B, C, N)`` and suppresses within
each (batch, class) pair. ``torchvision::nms`` has no groups, so its ONNX lowering (onnxscript's
torch_lib) puts every candidate into one batch and one class; a detector then shifts its
(image, class) groups apart and runs one quadratic suppression over all of them (SSDlite320's
~27,000 candidates: seconds in onnxruntime). This op keeps the groups, so the exported graph holds
the ONNX op as designed and each group is suppressed on its own:

* eagerly (and in a hybridized ``torch.export`` graph) it is ``torchvision.ops.batched_nms``;
* under ``torch.export`` it is one opaque node with a data-dependent number of rows (fake kernel);
* :func:`toolkit.deploy.export.export_block` translates it to ``NonMaxSuppression`` through the
  custom translation registered here (``torch.onnx.export(..., custom_translation_table=...)``);
* OpenVINO's PyTorch frontend (the OpenVINO candidate of ``hybridize()``'s inference race) converts it to
  OpenVINO's ``NonMaxSuppression`` through the conversion registered here, the same answers to the index
  (``tests/cv/test_grouped_nms.py``).
"""
from __future__ import annotations

import torch
from torchvision.ops import batched_nms

from ....deploy.export import register_onnx_translation
from ....deploy.ov_core import register_openvino_conversion

__all__ = ["grouped_nms"]


@torch.library.custom_op("toolkit::grouped_nms", mutates_args=())
def grouped_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, score_threshold: float,
                max_per_class: int) -> torch.Tensor:
    """ONNX ``NonMaxSuppression`` semantics on top of ``torchvision.ops.batched_nms``.

    Parameters
    ----------
    boxes : Tensor
        ``(B, N, 4)`` corner boxes (``x1, y1, x2, y2``), shared by the classes of a batch row.
    scores : Tensor
        ``(B, C, N)`` scores.
    iou_threshold : float
        A box overlapping a better box of its (row, class) by IoU above this is suppressed.
    score_threshold : float
        Only boxes scoring above this take part.
    max_per_class : int
        Most boxes kept per (row, class): the first ones selected, i.e. the best.

    Returns
    -------
    Tensor
        ``(M, 3)`` int64 ``(row, class, box index)`` of the kept boxes, ordered by row, class, then
        best first, equal scores by box index (onnxruntime's order where scores differ).
    """
    if boxes.dim() != 3 or boxes.shape[-1] != 4 or scores.dim() != 3 or scores.shape[0] != boxes.shape[0] \
            or scores.shape[2] != boxes.shape[1]:
        raise ValueError(f"grouped_nms takes boxes (B, N, 4) and scores (B, C, N), got {tuple(boxes.shape)} "
                         f"and {tuple(scores.shape)}")
    _, num_classes, n = scores.shape
    flat = scores.reshape(-1)
    cand = torch.nonzero(flat > score_threshold).squeeze(1)  # row, class, box order
    if cand.numel() == 0 or max_per_class <= 0:
        return torch.empty((0, 3), dtype=torch.int64, device=boxes.device)
    row, cls, idx = cand // (num_classes * n), (cand // n) % num_classes, cand % n
    group = row * num_classes + cls
    kept = batched_nms(boxes[row, idx].float(), flat[cand].float(), group, iou_threshold)
    # by group, best first, equal scores by index (batched_nms's order among equal scores is arbitrary)
    kept = torch.sort(kept).values
    kept = kept[torch.sort(flat[cand][kept], descending=True, stable=True).indices]
    kept = kept[torch.sort(group[kept], stable=True).indices]
    g = group[kept]
    _, counts = torch.unique_consecutive(g, return_counts=True)
    rank = torch.arange(g.numel(), device=g.device) - (torch.cumsum(counts, 0) - counts).repeat_interleave(counts)
    kept = kept[rank < max_per_class]
    return torch.stack([row[kept], cls[kept], idx[kept]], dim=1)


@grouped_nms.register_fake
def _grouped_nms_fake(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, score_threshold: float,
                      max_per_class: int) -> torch.Tensor:
    rows = torch.library.get_ctx().new_dynamic_size()
    return boxes.new_empty((rows, 3), dtype=torch.int64)


def _grouped_nms_onnx(boxes, scores, iou_threshold: float, score_threshold: float, max_per_class: int):
    """The op as one ONNX ``NonMaxSuppression`` (boxes and scores as given, ``center_point_box=0``)."""
    from onnxscript import opset18 as op

    # NonMaxSuppression reads [y1, x1, y2, x2]; IoU is the same for [x1, y1, x2, y2]
    return op.NonMaxSuppression(boxes, scores, op.Constant(value_int=int(max_per_class)),
                                op.Constant(value_float=float(iou_threshold)),
                                op.Constant(value_float=float(score_threshold)))


register_onnx_translation(torch.ops.toolkit.grouped_nms.default, _grouped_nms_onnx)


def _grouped_nms_openvino(node) -> list:
    """The op as OpenVINO's ``NonMaxSuppression`` (opset 13) for its PyTorch frontend: corner boxes, rows of
    ``(row, class, box index)`` by row, class, then score (``sort_result_descending=False``, the op's order),
    cut to the number selected (OpenVINO pads the rest)."""
    import numpy as np
    import openvino.opset13 as ops

    boxes, scores, iou, score, most = (node.get_input(i) for i in range(5))
    nms = ops.non_max_suppression(boxes, scores, ops.convert(most, "i64"), ops.convert(iou, "f32"),
                                  ops.convert(score, "f32"), box_encoding="corner", sort_result_descending=False,
                                  output_type="i64")

    def const(v: int):
        return ops.constant(np.array([v], dtype=np.int64))

    return [ops.slice(nms.output(0), const(0), ops.convert(nms.output(2), "i64"), const(1), const(0)).output(0)]


register_openvino_conversion("toolkit.grouped_nms.default", _grouped_nms_openvino)
