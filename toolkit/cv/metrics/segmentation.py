"""Semantic segmentation metrics: pixel accuracy and mean IoU, as GluonCV's ``SegmentationMetric``."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["SegmentationMetric", "batch_intersection_union", "batch_pix_accuracy"]


def _as_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    raise TypeError(f"{name} must be a torch.Tensor or numpy array (or a list of them), not {type(x).__name__}")


def _predictions(preds: torch.Tensor, labels: torch.Tensor, nclass: int) -> torch.Tensor:
    """Class ids (B, H, W) from logits (B, C, H, W); integer class maps of the labels' shape pass through."""
    if preds.dim() == labels.dim() and not preds.is_floating_point():
        pred = preds.long()
    else:
        if preds.dim() != 4 or labels.dim() != 3:
            raise ValueError(f"preds must be logits (B, C, H, W) and labels (B, H, W); got {tuple(preds.shape)} "
                             f"and {tuple(labels.shape)}")
        if preds.shape[1] != nclass:
            raise ValueError(f"preds have {preds.shape[1]} classes, the metric was built for nclass={nclass}")
        pred = preds.argmax(dim=1)
    if pred.shape != labels.shape:
        raise ValueError(f"predictions {tuple(pred.shape)} and labels {tuple(labels.shape)} differ in size")
    return pred


def _check_labels(labels: torch.Tensor, nclass: int) -> torch.Tensor:
    labels = labels.long()
    bad = (labels != -1) & ((labels < 0) | (labels >= nclass))
    if bool(bad.any()):
        raise ValueError(f"labels {torch.unique(labels[bad])[:10].tolist()} are outside the {nclass} classes "
                         "(-1 marks ignored pixels; stored masks use 255, see mask_to_target)")
    return labels


def batch_pix_accuracy(preds: Any, labels: Any, nclass: int | None = None) -> tuple[int, int]:
    """``(pixel_correct, pixel_labeled)`` of one batch; pixels labelled -1 are not counted."""
    p, lab = _as_tensor(preds, "preds"), _as_tensor(labels, "labels")
    n = nclass if nclass is not None else (p.shape[1] if p.dim() == 4 else int(p.max()) + 1)
    lab = _check_labels(lab, n)
    pred = _predictions(p, lab, n)
    valid = lab >= 0
    return int((pred.eq(lab) & valid).sum()), int(valid.sum())


def batch_intersection_union(preds: Any, labels: Any, nclass: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class ``(area_intersection, area_union)`` of one batch, over labelled pixels only."""
    p, lab = _as_tensor(preds, "preds"), _as_tensor(labels, "labels")
    lab = _check_labels(lab, nclass)
    pred = _predictions(p, lab, nclass)
    valid = lab >= 0
    pred, lab = pred[valid], lab[valid]
    pred = pred.clamp(0, nclass - 1) if pred.numel() else pred
    inter = torch.bincount(pred[pred == lab], minlength=nclass)[:nclass]
    area_pred = torch.bincount(pred, minlength=nclass)[:nclass]
    area_lab = torch.bincount(lab, minlength=nclass)[:nclass]
    return inter.numpy().astype(np.int64), (area_pred + area_lab - inter).numpy().astype(np.int64)


class SegmentationMetric:
    """Running pixel accuracy and mean IoU (GluonCV's ``SegmentationMetric``).

    Semantics (GluonCV's, checked against its ``get``):

    * ``pixAcc`` = correct pixels / labelled pixels (label -1 is ignored);
    * ``mIoU`` = mean over **all** ``nclass`` classes of
      ``intersection / (eps + union)``, both summed over every update, with
      ``eps = np.spacing(1)``: a class that never occurs in labels or predictions
      counts as IoU 0 (GluonCV does not drop absent classes);
    * pixels labelled -1 count neither in the intersection nor in the union
      (their predictions are left out);
    * both are fractions in [0, 1] (GluonCV's), not percent.

    Parameters
    ----------
    nclass : int
        Number of classes (background included).
    """

    def __init__(self, nclass: int) -> None:
        if int(nclass) < 1:
            raise ValueError(f"nclass must be positive, got {nclass}")
        self.nclass = int(nclass)
        self.reset()

    def reset(self) -> None:
        """Forget every update."""
        self.total_inter = np.zeros(self.nclass, dtype=np.int64)
        self.total_union = np.zeros(self.nclass, dtype=np.int64)
        self.total_correct = 0
        self.total_label = 0

    def update(self, labels: Any, preds: Any) -> None:
        """Add a batch: ``labels`` (B, H, W) with -1 ignored, ``preds`` logits (B, C, H, W).

        Torch tensors or numpy arrays, or lists/tuples of them (GluonCV's
        per-device lists). Integer ``preds`` of the labels' shape are taken as
        predicted class ids. Raises ``ValueError`` for sizes that disagree and
        for labels outside ``[0, nclass)`` other than -1.
        """
        if isinstance(labels, (list, tuple)) or isinstance(preds, (list, tuple)):
            if not isinstance(labels, (list, tuple)) or not isinstance(preds, (list, tuple)) or len(labels) != len(preds):
                raise ValueError("labels and preds must both be lists of the same length, or both arrays")
            for lab, pred in zip(labels, preds):
                self.update(lab, pred)
            return
        correct, labeled = batch_pix_accuracy(preds, labels, self.nclass)
        inter, union = batch_intersection_union(preds, labels, self.nclass)
        self.total_correct += correct
        self.total_label += labeled
        self.total_inter += inter
        self.total_union += union

    def all_reduce(self) -> None:
        """Sum the counts over the ``torch.distributed`` group (when one is initialised)."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            t = torch.from_numpy(np.concatenate([self.total_inter, self.total_union,
                                                 [self.total_correct, self.total_label]]).astype(np.float64))
            dist.all_reduce(t)
            v = t.numpy().astype(np.int64)
            n = self.nclass
            self.total_inter, self.total_union = v[:n], v[n:2 * n]
            self.total_correct, self.total_label = int(v[-2]), int(v[-1])

    def get_iou(self) -> np.ndarray:
        """Per-class IoU (GluonCV's formula; 0 for classes never seen)."""
        return self.total_inter / (np.spacing(1) + self.total_union)

    def get(self) -> tuple[float, float]:
        """``(pixAcc, mIoU)`` as fractions."""
        pix_acc = 1.0 * self.total_correct / (np.spacing(1) + self.total_label)
        return float(pix_acc), float(self.get_iou().mean())
