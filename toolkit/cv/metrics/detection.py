"""Detection metrics: Pascal VOC mAP (GluonCV's ``VOCMApMetric``/``VOC07MApMetric``) and COCO mAP (pycocotools).

The VOC metrics follow GluonCV's semantics exactly, so numbers carry over:

* inputs are batched ``(B, K, ...)``; rows whose label is negative (the -1
  padding of detector outputs and batched labels) are ignored;
* per image and class, predictions are taken in decreasing score order; each
  is matched to the ground truth of that class with the highest IoU; IoU is
  computed on "integer" boxes (``x2 + 1``, ``y2 + 1``), as the VOC devkit and
  GluonCV do; a prediction with IoU >= ``iou_thresh`` is a true positive if
  that ground truth was not matched before (else a false positive), is
  ignored (neither) if the ground truth is difficult; below the threshold it
  is a false positive;
* difficult ground truths do not count as positives;
* precision/recall come from all predictions of a class sorted by score
  (ties: the later-added prediction first, as GluonCV's reversed ascending
  argsort gives for a stable sort);
* AP is the area under the interpolated precision envelope
  (:class:`VOCMApMetric`, VOC2010+) or the 11-point average
  (:class:`VOC07MApMetric`); a class with no (non-difficult) ground truth has
  AP NaN; mAP is the mean over classes ignoring NaN.

Written by hand (not pycocotools) because COCO's evaluation matches, interpolates
and handles difficult boxes differently; :class:`COCODetectionMetric` is
pycocotools' COCOeval itself.
"""
from __future__ import annotations

import contextlib
import io
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["VOCMApMetric", "VOC07MApMetric", "COCODetectionMetric"]


def _as_numpy(a: Any, name: str) -> np.ndarray | None:
    """Tensor, array or list of them (e.g. one per device) -> one numpy array, concatenated on axis 0."""
    if a is None:
        return None
    if isinstance(a, (list, tuple)):
        parts = [_as_numpy(x, name) for x in a]
        try:
            return np.concatenate(parts, axis=0)
        except ValueError:
            return np.array(parts)
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    try:
        return np.asarray(a)
    except Exception as err:
        raise TypeError(f"{name}: expected a torch tensor or numpy array, got {type(a).__name__}") from err


def _batched(a: np.ndarray, name: str, last: int | None) -> np.ndarray:
    """Shape (B, K, last) for boxes (last=4), (B, K) for labels/scores (trailing 1 squeezed)."""
    if last == 4:
        if a.ndim == 2:
            a = a[None]
        if a.ndim != 3 or a.shape[-1] != 4:
            raise ValueError(f"{name} must have shape (B, K, 4), got {a.shape}")
        return a.astype(np.float64)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2:
        raise ValueError(f"{name} must have shape (B, K) or (B, K, 1), got {a.shape}")
    return a


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) XYXY boxes (continuous areas)."""
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / (area_a[:, None] + area_b[None, :] - inter)


def _desc(scores: np.ndarray) -> np.ndarray:
    """Indices by decreasing score, ties in reverse order of appearance (GluonCV's ``argsort()[::-1]``)."""
    return np.argsort(scores, kind="stable")[::-1]


class VOCMApMetric:
    """Pascal VOC mean average precision (area under the precision envelope, VOC2010+), GluonCV's semantics.

    Parameters
    ----------
    iou_thresh : float, default 0.5
        IoU from which a prediction matches a ground truth.
    class_names : sequence of str, optional
        When given, :meth:`get` returns per-class APs and the mAP; else only
        ``("VOCMeanAP", mAP)``, as in GluonCV.

    Examples
    --------
    >>> metric = VOC07MApMetric(class_names=["cat", "dog"])
    >>> for ids, scores, bboxes, label in evaluation:   # ids (B, K, 1), label (B, M, 6)
    ...     metric.update(bboxes, ids, scores, label[..., :4], label[..., 4], label[..., 5])
    >>> names, values = metric.get()
    """

    name = "VOCMeanAP"

    def __init__(self, iou_thresh: float = 0.5, class_names: Sequence[str] | None = None) -> None:
        if not 0 < float(iou_thresh) <= 1:
            raise ValueError(f"iou_thresh must be in (0, 1], got {iou_thresh!r}")
        if class_names is not None:
            if isinstance(class_names, str) or not all(isinstance(n, str) for n in class_names):
                raise TypeError(f"class_names must be a sequence of str, got {class_names!r}")
            class_names = list(class_names)
        self.iou_thresh = float(iou_thresh)
        self.class_names = class_names
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        self._n_pos: dict[int, int] = defaultdict(int)
        self._score: dict[int, list[float]] = defaultdict(list)
        self._match: dict[int, list[int]] = defaultdict(list)  # 1 TP, 0 FP, -1 ignored (difficult)

    def update(self, pred_bboxes: Any, pred_labels: Any, pred_scores: Any, gt_bboxes: Any, gt_labels: Any,
               gt_difficults: Any = None) -> None:
        """Add a batch of predictions and ground truths.

        Parameters
        ----------
        pred_bboxes : tensor or array (B, K, 4)
            Predicted XYXY boxes.
        pred_labels : tensor or array (B, K) or (B, K, 1)
            Predicted class ids; negative = padding.
        pred_scores : tensor or array (B, K) or (B, K, 1)
            Confidences.
        gt_bboxes : tensor or array (B, M, 4)
            Ground-truth boxes.
        gt_labels : tensor or array (B, M) or (B, M, 1)
            Ground-truth class ids; negative = padding.
        gt_difficults : tensor or array (B, M) or (B, M, 1), optional
            Difficult flags (none difficult when omitted).

        A list of such arrays (one per device, GluonCV's split batches) is
        concatenated along the batch axis first.
        """
        pb = _batched(_as_numpy(pred_bboxes, "pred_bboxes"), "pred_bboxes", 4)
        pl = _batched(_as_numpy(pred_labels, "pred_labels"), "pred_labels", None)
        ps = _batched(_as_numpy(pred_scores, "pred_scores"), "pred_scores", None)
        gb = _batched(_as_numpy(gt_bboxes, "gt_bboxes"), "gt_bboxes", 4)
        gl = _batched(_as_numpy(gt_labels, "gt_labels"), "gt_labels", None)
        gd = None if gt_difficults is None else _batched(_as_numpy(gt_difficults, "gt_difficults"),
                                                         "gt_difficults", None)
        batch = pb.shape[0]
        for arr, name, k in ((pl, "pred_labels", pb.shape[1]), (ps, "pred_scores", pb.shape[1]),
                             (gb, "gt_bboxes", None), (gl, "gt_labels", gb.shape[1]),
                             (gd, "gt_difficults", gb.shape[1])):
            if arr is None:
                continue
            if arr.shape[0] != batch or (k is not None and arr.shape[1] != k):
                raise ValueError(f"{name} has shape {arr.shape}, which does not match pred_bboxes {pb.shape} / "
                                 f"gt_bboxes {gb.shape}")
        for i in range(batch):
            self._update_image(pb[i], pl[i], ps[i], gb[i], gl[i], None if gd is None else gd[i])

    def _update_image(self, pb, pl, ps, gb, gl, gd) -> None:
        keep = pl >= 0
        pb, pl, ps = pb[keep], pl[keep].astype(np.int64), ps[keep].astype(np.float64)
        keep = gl >= 0
        gb, gl = gb[keep], gl[keep].astype(np.int64)
        gd = np.zeros(len(gl), dtype=bool) if gd is None else gd[keep].astype(bool)
        for c in np.unique(np.concatenate([pl, gl])):
            order = _desc(ps[pl == c])
            boxes, scores = pb[pl == c][order], ps[pl == c][order]
            g, diff = gb[gl == c], gd[gl == c]
            self._n_pos[int(c)] += int((~diff).sum())
            self._score[int(c)].extend(scores.tolist())
            if not len(boxes):
                continue
            if not len(g):
                self._match[int(c)].extend([0] * len(boxes))
                continue
            # "integer" boxes: the VOC devkit counts x2, y2 as inclusive pixel indices
            iou = _iou(boxes + [0, 0, 1, 1], g + [0, 0, 1, 1])
            best = iou.argmax(axis=1)
            best[iou.max(axis=1) < self.iou_thresh] = -1
            taken = np.zeros(len(g), dtype=bool)
            out = self._match[int(c)]
            for j in best:
                if j < 0:
                    out.append(0)
                elif diff[j]:
                    out.append(-1)
                else:
                    out.append(0 if taken[j] else 1)
                if j >= 0:
                    taken[j] = True

    def _precision_recall(self) -> tuple[list, list]:
        n = max(self._n_pos) + 1 if self._n_pos else 0
        prec: list = [None] * n
        rec: list = [None] * n
        for c in self._n_pos:
            match = np.asarray(self._match[c], dtype=np.int64)[_desc(np.asarray(self._score[c]))]
            tp, fp = np.cumsum(match == 1), np.cumsum(match == 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                prec[c] = tp / (tp + fp)
            if self._n_pos[c] > 0:
                rec[c] = tp / self._n_pos[c]
        return rec, prec

    @staticmethod
    def _average_precision(rec: np.ndarray | None, prec: np.ndarray | None) -> float:
        """Area under the monotone precision envelope (VOC2010+)."""
        if rec is None or prec is None:
            return float("nan")
        r = np.concatenate([[0.0], rec, [1.0]])
        p = np.concatenate([[0.0], np.nan_to_num(prec), [0.0]])
        p = np.maximum.accumulate(p[::-1])[::-1]
        steps = np.nonzero(r[1:] != r[:-1])[0]
        return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))

    def ap_per_class(self) -> list[float]:
        """AP of every class id from 0 to the largest seen (NaN where a class has no ground truth)."""
        rec, prec = self._precision_recall()
        return [self._average_precision(r, p) for r, p in zip(rec, prec)]

    def get(self) -> tuple[str | list[str], float | list[float]]:
        """The result: ``(names, values)`` = per-class APs then ``"mAP"`` (with ``class_names``), else
        ``("VOCMeanAP", mAP)``. NaN for classes without ground truth, and for the mAP before any update."""
        aps = self.ap_per_class()
        with np.errstate(invalid="ignore"):
            mean = float(np.nanmean(aps)) if aps and not np.all(np.isnan(aps)) else float("nan")
        if self.class_names is None:
            return self.name, mean
        values = [aps[c] if c < len(aps) else float("nan") for c in range(len(self.class_names))]
        return [*self.class_names, "mAP"], [*values, mean]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(iou_thresh={self.iou_thresh}, classes={self.class_names})"


class VOC07MApMetric(VOCMApMetric):
    """Pascal VOC 2007 mean average precision: the 11-point average (precision at recall 0, 0.1, ..., 1).

    Same constructor, :meth:`update` and :meth:`get` as :class:`VOCMApMetric`.
    """

    @staticmethod
    def _average_precision(rec: np.ndarray | None, prec: np.ndarray | None) -> float:
        if rec is None or prec is None:
            return float("nan")
        p = np.nan_to_num(prec)
        total = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            above = rec >= t
            total += (p[above].max() if above.any() else 0.0) / 11.0
        return float(total)


# ----------------------------------------------------------------------------- COCO
_COCO_STATS = ("mAP", "mAP@0.5", "mAP@0.75", "mAP_small", "mAP_medium", "mAP_large",
               "AR@1", "AR@10", "AR@100", "AR_small", "AR_medium", "AR_large")


def _load_coco(source: Any):
    from pycocotools.coco import COCO

    if isinstance(source, COCO):
        return source
    coco = getattr(source, "coco", None)
    if coco is not None:
        return coco
    if isinstance(source, (str, os.PathLike)):
        from toolkit.cv.data.detection import _load_json

        coco = COCO()
        coco.dataset = _load_json(Path(source))
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
        return coco
    raise TypeError("COCODetectionMetric needs a COCODetection dataset, a pycocotools COCO object or the path of "
                    f"an instances JSON file, got {type(source).__name__}")


class COCODetectionMetric:
    """COCO box mAP through pycocotools' ``COCOeval`` (mAP@[.5:.95], mAP@0.5, mAP@0.75, by size, AR).

    Parameters
    ----------
    dataset : COCODetection, pycocotools COCO or path
        The ground truth. With a :class:`~toolkit.cv.data.COCODetection`,
        predictions may come without image ids, in the dataset's order (GluonCV's
        way), and class ids are mapped back with its ``contiguous_id_to_json``;
        otherwise class id ``k`` is the ``k``-th category id in increasing order.
    score_thresh : float, default 1e-3
        Predictions below are not submitted (GluonCV's default).
    data_shape : int or (int, int), optional
        The network input (height, width): boxes are rescaled from it to each
        image's original size (for presets that stretch the image to a fixed
        size, as SSD/YOLO's resize). Letterboxed inputs need their own inverse.

    Notes
    -----
    Boxes are XYXY pixel edges; they are submitted as COCO ``[x, y, x2 - x, y2 - y]``.
    Only images seen by :meth:`update` are evaluated. ``get()`` returns
    ``(names, values)``: the twelve COCOeval summary numbers (names in
    ``_COCO_STATS`` order: ``mAP`` = AP@[.5:.95], ``mAP@0.5``, ...) followed
    by each class's AP@[.5:.95] (NaN where a class has no ground truth);
    ``summary`` holds COCOeval's printed table after ``get()``.
    """

    def __init__(self, dataset: Any, score_thresh: float = 1e-3,
                 data_shape: int | Sequence[int] | None = None) -> None:
        self.coco = _load_coco(dataset)
        cat_ids = sorted(self.coco.getCatIds())
        mapping = getattr(dataset, "contiguous_id_to_json", None)
        self.contiguous_id_to_json = dict(mapping) if mapping else dict(enumerate(cat_ids))
        self.class_names = [self.coco.cats[self.contiguous_id_to_json[k]]["name"]
                            for k in sorted(self.contiguous_id_to_json)]
        ids = getattr(dataset, "image_ids", None)
        self._order = list(ids) if ids is not None else sorted(self.coco.getImgIds())
        if data_shape is not None:
            data_shape = (int(data_shape), int(data_shape)) if isinstance(data_shape, int) else tuple(data_shape)
            if len(data_shape) != 2:
                raise ValueError(f"data_shape must be an int or (height, width), got {data_shape!r}")
        self.data_shape = data_shape
        self.score_thresh = float(score_thresh)
        self.summary = ""
        self.reset()

    def reset(self) -> None:
        """Forget all predictions."""
        self._results: list[dict[str, Any]] = []
        self._seen: list[int] = []
        self._next = 0

    def update(self, pred_bboxes: Any, pred_labels: Any, pred_scores: Any, *args: Any,
               image_ids: Any = None) -> None:
        """Add a batch of predictions (GluonCV's signature; extra positional arguments are ignored).

        Parameters
        ----------
        pred_bboxes : tensor or array (B, K, 4)
        pred_labels : tensor or array (B, K) or (B, K, 1); negative = padding
        pred_scores : tensor or array (B, K) or (B, K, 1)
        image_ids : sequence of int, optional
            COCO image id of each batch entry; default: the next ``B`` images
            of the dataset's order.
        """
        pb = _batched(_as_numpy(pred_bboxes, "pred_bboxes"), "pred_bboxes", 4)
        pl = _batched(_as_numpy(pred_labels, "pred_labels"), "pred_labels", None)
        ps = _batched(_as_numpy(pred_scores, "pred_scores"), "pred_scores", None)
        if image_ids is None:
            if self._next + len(pb) > len(self._order):
                raise ValueError(f"COCODetectionMetric: more predictions ({self._next + len(pb)}) than images "
                                 f"({len(self._order)}); pass image_ids=")
            ids = self._order[self._next: self._next + len(pb)]
            self._next += len(pb)
        else:
            ids = [int(i) for i in np.asarray(_as_numpy(image_ids, "image_ids")).reshape(-1)]
            if len(ids) != len(pb):
                raise ValueError(f"{len(ids)} image_ids for a batch of {len(pb)}")
        for boxes, labels, scores, img_id in zip(pb, pl, ps, ids):
            if img_id not in self.coco.imgs:
                raise ValueError(f"image id {img_id} is not in the annotation file")
            self._seen.append(img_id)
            keep = (labels >= 0) & (scores >= self.score_thresh)
            boxes, labels, scores = boxes[keep].copy(), labels[keep].astype(np.int64), scores[keep]
            if self.data_shape is not None:
                info = self.coco.imgs[img_id]
                boxes[:, 0::2] *= info["width"] / self.data_shape[1]
                boxes[:, 1::2] *= info["height"] / self.data_shape[0]
            for b, c, s in zip(boxes, labels, scores):
                if int(c) not in self.contiguous_id_to_json:
                    raise ValueError(f"predicted class id {int(c)} is not one of the {len(self.class_names)} classes")
                self._results.append({"image_id": img_id, "category_id": self.contiguous_id_to_json[int(c)],
                                      "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                                      "score": float(s)})

    def get(self) -> tuple[list[str], list[float]]:
        """Run COCOeval on the predictions so far; ``(names, values)`` as in the class notes."""
        from pycocotools.cocoeval import COCOeval

        names = [*_COCO_STATS, *(f"AP/{n}" for n in self.class_names)]
        if not self._seen:
            return names, [float("nan")] * len(names)
        img_ids = sorted(set(self._seen))
        if not self._results:  # COCO.loadRes cannot take an empty list: nothing found is AP 0
            has_gt = bool(self.coco.getAnnIds(imgIds=img_ids, iscrowd=False))
            self.summary = "no detections"
            return names, [0.0 if has_gt else float("nan")] * len(names)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            dets = self.coco.loadRes(list(self._results))
            ev = COCOeval(self.coco, dets, "bbox")
            ev.params.imgIds = img_ids
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        self.summary = out.getvalue()
        stats = [float(v) if v >= 0 else float("nan") for v in ev.stats]  # COCOeval writes -1 for "no data"
        prec = ev.eval["precision"][:, :, :, 0, -1]  # (iou, recall, class, area=all, maxDets=100)
        per_class = []
        for k in sorted(self.contiguous_id_to_json):
            p = prec[:, :, ev.params.catIds.index(self.contiguous_id_to_json[k])]
            p = p[p > -1]
            per_class.append(float(p.mean()) if p.size else float("nan"))
        return names, [*stats, *per_class]

    def __repr__(self) -> str:
        return f"COCODetectionMetric(images={len(self._order)}, classes={len(self.class_names)})"
