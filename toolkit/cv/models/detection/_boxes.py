"""Box arithmetic shared by the detectors: formats, GluonCV's normalized center coder, fixed-shape NMS.

torchvision has box conversion, IoU and NMS (used here); what it lacks is a
*batched, fixed-shape* post-processing that returns GluonCV's padded
``(ids, scores, bboxes)`` and can be captured by ``torch.export`` (its own
detectors return a list of variable-length dicts), so that part is written here.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.ops import batched_nms, box_convert, nms

__all__ = [
    "NormalizedBoxCenterCoder",
    "center_to_corner",
    "corner_to_center",
    "fixed_detections",
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


def _capturing() -> bool:
    """Whether this forward is being captured (torch.export, dynamo or the TorchScript tracer)."""
    return torch.compiler.is_exporting() or torch.compiler.is_compiling() or torch.jit.is_tracing()


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
    """
    batch, n, num_classes = scores.shape
    if boxes.dim() == 3:
        boxes = boxes.unsqueeze(2).expand(batch, n, num_classes, 4)
    cls = torch.arange(num_classes, device=scores.device).expand(batch, n, num_classes)
    if per_class_topk is not None and per_class_topk < n:
        top = torch.topk(scores, per_class_topk, dim=1)
        scores = top.values
        cls = torch.gather(cls, 1, top.indices)
        boxes = torch.gather(boxes, 1, top.indices.unsqueeze(-1).expand(*top.indices.shape, 4))
    flat_scores = scores.reshape(batch, -1)
    flat_cls = cls.reshape(batch, -1)
    flat_boxes = boxes.reshape(batch, -1, 4)
    k = flat_scores.shape[1] if nms_topk is None or nms_topk < 0 else min(int(nms_topk), flat_scores.shape[1])
    top = torch.topk(flat_scores, k, dim=1)
    cand_scores = top.values.reshape(-1)
    cand_cls = torch.gather(flat_cls, 1, top.indices).reshape(-1)
    cand_boxes = torch.gather(flat_boxes, 1, top.indices.unsqueeze(-1).expand(batch, k, 4)).reshape(-1, 4)
    image = torch.arange(batch, device=scores.device).repeat_interleave(k)
    keep = torch.nonzero(cand_scores > score_thresh).squeeze(1)
    if 0.0 < nms_thresh < 1.0:
        # One NMS call for the whole batch, every (image, class) pair shifted to a region of its own
        # (the offset trick torchvision's batched_nms uses; called directly because batched_nms picks
        # its strategy by a data-dependent size test that torch.export cannot capture).
        group = (image * num_classes + cand_cls).to(cand_boxes.dtype)
        if _capturing():
            span = cand_boxes.max() - cand_boxes.min() + 1
            shifted = (cand_boxes - cand_boxes.min()) + (group * span)[:, None]
            kept = nms(shifted[keep].float(), cand_scores[keep].float(), nms_thresh)
        else:
            # Eagerly, batched_nms is the same suppression but loops over the groups once there are
            # many candidates: one NMS over SSDlite's ~27,000 (class, anchor) pairs is quadratic in
            # all of them (SSDlite320 eager forward, 1 thread: 0.63 s with it, 0.14 s with batched_nms).
            kept = batched_nms(cand_boxes[keep].float(), cand_scores[keep].float(), group[keep].long(), nms_thresh)
        keep = keep[kept]
    else:
        keep = keep[torch.argsort(cand_scores[keep], descending=True)]
    # group by image keeping the score order inside each image (unique sort keys, so no stable sort is
    # needed: ONNX has none), then rank within the image
    position = torch.arange(keep.shape[0], device=scores.device)
    keep = keep[torch.argsort(image[keep] * keep.shape[0] + position)]
    img = image[keep]
    counts = (img.unsqueeze(1) == torch.arange(batch, device=scores.device)).sum(0)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(keep.shape[0], device=scores.device) - starts[img]
    sel = torch.nonzero(rank < post_nms).squeeze(1)
    keep, img, rank = keep[sel], img[sel], rank[sel]
    out_ids = torch.full((batch, post_nms), -1.0, dtype=torch.float32, device=scores.device)
    out_scores = torch.full((batch, post_nms), -1.0, dtype=torch.float32, device=scores.device)
    out_boxes = torch.full((batch, post_nms, 4), -1.0, dtype=torch.float32, device=scores.device)
    out_ids = out_ids.index_put((img, rank), cand_cls[keep].float())
    out_scores = out_scores.index_put((img, rank), cand_scores[keep].float())
    out_boxes = out_boxes.index_put((img, rank), cand_boxes[keep].float())
    return out_ids.unsqueeze(-1), out_scores.unsqueeze(-1), out_boxes
