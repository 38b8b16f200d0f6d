"""Box arithmetic shared by the detectors: formats, GluonCV's normalized center coder, fixed-shape NMS.

torchvision has box conversion, IoU and NMS (used here); what it lacks is a
*batched, fixed-shape* post-processing that returns GluonCV's padded
``(ids, scores, bboxes)`` and can be captured by ``torch.export`` (its own
detectors return a list of variable-length dicts), so that part is written here.
Its suppression is the custom op :func:`~._nms.grouped_nms` (``batched_nms``
eagerly, one ONNX ``NonMaxSuppression`` over the (image, class) groups when exported).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.ops import box_convert

from ._nms import grouped_nms

__all__ = [
    "NormalizedBoxCenterCoder",
    "center_to_corner",
    "corner_to_center",
    "fixed_detections",
    "rank_within_image",
]

#: GluonCV's default ``stds`` of NormalizedBoxCenterEncoder/Decoder (also torchvision's weights 10, 10, 5, 5).
BOX_STDS = (0.1, 0.1, 0.2, 0.2)


def corner_to_center(boxes: torch.Tensor) -> torch.Tensor:
    """``x1, y1, x2, y2`` -> ``cx, cy, w, h`` on the last axis."""
    return box_convert(boxes, "xyxy", "cxcywh")


def center_to_corner(boxes: torch.Tensor) -> torch.Tensor:
    """``cx, cy, w, h`` -> ``x1, y1, x2, y2`` on the last axis."""
    return box_convert(boxes, "cxcywh", "xyxy")


class NormalizedBoxCenterCoder:
    """GluonCV's ``NormalizedBoxCenterEncoder`` / ``NormalizedBoxCenterDecoder``.

    ``encode``: ``((gx - ax) / aw / s0, (gy - ay) / ah / s1, log(gw / aw) / s2, log(gh / ah) / s3)``
    with anchors and boxes in center form; ``decode`` is its inverse and returns
    corner boxes. ``clip`` bounds the decoded log-scale (as torchvision does, to
    avoid ``exp`` overflow early in training).

    Parameters
    ----------
    stds : sequence of 4 float
        Scale of each encoded coordinate.
    clip : float, optional
        Upper bound of the decoded ``w, h`` log-scales.
    """

    def __init__(self, stds: Sequence[float] = BOX_STDS, clip: float | None = None) -> None:
        if len(stds) != 4:
            raise ValueError(f"stds takes 4 values, got {list(stds)}")
        self.stds = tuple(float(s) for s in stds)
        self.clip = clip

    def encode(self, boxes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """Offsets of corner ``boxes`` from center-form ``anchors`` (broadcast on leading axes)."""
        g = corner_to_center(boxes)
        s = self.stds
        w = anchors[..., 2].clamp(min=1e-12)
        h = anchors[..., 3].clamp(min=1e-12)
        tx = (g[..., 0] - anchors[..., 0]) / w / s[0]
        ty = (g[..., 1] - anchors[..., 1]) / h / s[1]
        tw = torch.log(g[..., 2].clamp(min=1e-12) / w) / s[2]
        th = torch.log(g[..., 3].clamp(min=1e-12) / h) / s[3]
        return torch.stack([tx, ty, tw, th], dim=-1)

    def decode(self, offsets: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """Corner boxes from ``offsets`` relative to center-form ``anchors``."""
        s = self.stds
        cx = offsets[..., 0] * s[0] * anchors[..., 2] + anchors[..., 0]
        cy = offsets[..., 1] * s[1] * anchors[..., 3] + anchors[..., 1]
        lw, lh = offsets[..., 2] * s[2], offsets[..., 3] * s[3]
        if self.clip is not None:
            lw, lh = lw.clamp(max=self.clip), lh.clamp(max=self.clip)
        w, h = torch.exp(lw) * anchors[..., 2], torch.exp(lh) * anchors[..., 3]
        return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def _suppress(grid_scores: torch.Tensor, grid_boxes: torch.Tensor, top_indices: torch.Tensor,
              cand_boxes: torch.Tensor, cand_cls: torch.Tensor, cand_scores: torch.Tensor, score_thresh: float,
              nms_thresh: float, max_per_class: int) -> torch.Tensor:
    """Per-(image, class) NMS of the candidates; the kept ones' flat candidate indices, by image then best first.

    ``grid_scores`` ``(B, K, C)`` and ``grid_boxes`` (``(B, K, 4)`` shared or ``(B, K, C, 4)``) hold every
    scored box; ``top_indices`` ``(B, k)`` the candidates among them (flat ``K * C`` indices, best first),
    ``cand_*`` those candidates flattened over the batch (``B * k`` rows).
    One :func:`~._nms.grouped_nms` call (one ONNX ``NonMaxSuppression``) suppresses within each
    (image, class), on the layout that gives it the fewest scores to scan.
    """
    batch, k = top_indices.shape
    _, n, num_classes = grid_scores.shape
    if grid_boxes.dim() == 3 and k < n:
        # boxes shared by the classes, few candidates: the candidates' boxes, each one's score in its class row
        scores = torch.full((batch, num_classes, k), float("-inf"), dtype=torch.float32, device=cand_scores.device)
        scores = scores.scatter(1, cand_cls.reshape(batch, 1, k), cand_scores.reshape(batch, 1, k).float())
        sel = grouped_nms(cand_boxes.reshape(batch, k, 4).float(), scores, nms_thresh, score_thresh, max_per_class)
        return torch.sort(sel[:, 0] * k + sel[:, 2]).values
    # every scored box, those outside the candidates masked out; pos: a box's rank among the candidates
    pos = torch.full((batch, n * num_classes), -1, dtype=torch.int64, device=top_indices.device)
    pos = pos.scatter(1, top_indices, torch.arange(k, device=top_indices.device).expand(batch, k))
    scores = torch.where(pos >= 0, grid_scores.reshape(batch, -1).float(), float("-inf"))
    scores = scores.reshape(batch, n, num_classes).transpose(1, 2)
    if grid_boxes.dim() == 3:  # shared boxes: (B, N, 4) and (B, C, N)
        sel = grouped_nms(grid_boxes.float(), scores, nms_thresh, score_thresh, max_per_class)
        image, cls = sel[:, 0], sel[:, 1]
    else:  # a box per class: one group per (image, class), (B * C, K, 4) and (B * C, 1, K)
        boxes = grid_boxes.transpose(1, 2).reshape(batch * num_classes, n, 4).float()
        sel = grouped_nms(boxes, scores.reshape(batch * num_classes, 1, n), nms_thresh, score_thresh,
                          max_per_class)
        image, cls = sel[:, 0] // num_classes, sel[:, 0] % num_classes
    rank = pos.reshape(-1)[image * (n * num_classes) + sel[:, 2] * num_classes + cls]
    return torch.sort(image * k + rank).values


def rank_within_image(image: torch.Tensor, batch: int) -> torch.Tensor:
    """Each row's position within its image, for rows already grouped by ``image`` (ids in ``[0, batch)``).

    Counts per image and a cumulative sum: no data-dependent loop, so it exports as it runs.
    """
    counts = (image.unsqueeze(1) == torch.arange(batch, device=image.device)).sum(0)
    return torch.arange(image.shape[0], device=image.device) - (torch.cumsum(counts, 0) - counts)[image]


def fixed_detections(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    score_thresh: float = 0.01,
    nms_thresh: float = 0.45,
    nms_topk: int = 400,
    post_nms: int = 100,
    per_class_topk: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-class NMS over a batch into GluonCV's fixed-shape, ``-1``-padded output.

    Parameters
    ----------
    boxes : Tensor
        ``(B, N, 4)`` corner boxes shared by all classes, or ``(B, N, C, 4)`` per class.
    scores : Tensor
        ``(B, N, C)`` class scores (no background column).
    score_thresh : float
        Candidates scoring at most this are dropped.
    nms_thresh : float
        IoU above which a lower-scoring box of the same class is suppressed
        (``<= 0`` or ``>= 1`` skips NMS).
    nms_topk : int
        Best candidates per image kept before NMS (GluonCV's ``nms_topk``; ``-1`` keeps all).
    post_nms : int
        ``K``: detections per image after NMS.
    per_class_topk : int, optional
        Best candidates per class and image kept first (torchvision's ``topk_candidates``).

    Returns
    -------
    ids, scores, bboxes : Tensor
        ``(B, K, 1)``, ``(B, K, 1)``, ``(B, K, 4)``, float32, best first, padded with ``-1``.

    Notes
    -----
    The suppression is one :func:`~._nms.grouped_nms` call (``torchvision.ops.batched_nms`` eagerly,
    one ONNX ``NonMaxSuppression`` with a group per (image, class) when exported), so eager, hybridized
    and exported runs share this code. Candidates are ranked once (a top-k per image); every later
    order is an integer key, so no stable sort is needed (ONNX has none).
    """
    batch, n, num_classes = scores.shape
    if per_class_topk is not None and per_class_topk < n:
        # along the last axis: OpenVINO's TopK over a middle axis took 0.65 s of SSDlite512's 1.8 s
        # (PERF_COUNT profile on a loaded 2-core EPYC; benchmarks/results/detection_nms.txt)
        top = torch.topk(scores.transpose(1, 2), per_class_topk, dim=2)
        scores, indices = top.values.transpose(1, 2), top.indices.transpose(1, 2)
        if boxes.dim() == 3:
            boxes = boxes.unsqueeze(2).expand(batch, n, num_classes, 4)
        boxes = torch.gather(boxes, 1, indices.unsqueeze(-1).expand(*indices.shape, 4))
    flat_scores = scores.reshape(batch, -1)  # (anchor, class) -> anchor * C + class
    k = flat_scores.shape[1] if nms_topk is None or nms_topk < 0 else min(int(nms_topk), flat_scores.shape[1])
    top = torch.topk(flat_scores, k, dim=1)
    cand_scores = top.values.reshape(-1)
    cand_cls = (top.indices % num_classes).reshape(-1)
    if boxes.dim() == 3:
        idx = (top.indices // num_classes).unsqueeze(-1).expand(batch, k, 4)
        cand_boxes = torch.gather(boxes, 1, idx).reshape(-1, 4)
    else:
        cand_boxes = torch.gather(boxes.reshape(batch, -1, 4), 1, top.indices.unsqueeze(-1).expand(batch, k, 4))
        cand_boxes = cand_boxes.reshape(-1, 4)
    if 0.0 < nms_thresh < 1.0:
        keep = _suppress(scores, boxes, top.indices, cand_boxes, cand_cls, cand_scores, score_thresh, nms_thresh,
                         post_nms)
    else:  # candidates are already by image, best first
        keep = torch.nonzero(cand_scores > score_thresh).squeeze(1)
    img = keep // k
    rank = rank_within_image(img, batch)
    sel = torch.nonzero(rank < post_nms).squeeze(1)
    keep, img, rank = keep[sel], img[sel], rank[sel]
    out_ids = torch.full((batch, post_nms), -1.0, dtype=torch.float32, device=scores.device)
    out_scores = torch.full((batch, post_nms), -1.0, dtype=torch.float32, device=scores.device)
    out_boxes = torch.full((batch, post_nms, 4), -1.0, dtype=torch.float32, device=scores.device)
    out_ids = out_ids.index_put((img, rank), cand_cls[keep].float())
    out_scores = out_scores.index_put((img, rank), cand_scores[keep].float())
    out_boxes = out_boxes.index_put((img, rank), cand_boxes[keep].float())
    return out_ids.unsqueeze(-1), out_scores.unsqueeze(-1), out_boxes
