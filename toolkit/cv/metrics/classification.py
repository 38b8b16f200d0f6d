"""Classification metrics: top-k accuracy."""
from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["topk_correct", "topk_accuracy", "TopKAccuracy"]


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: Sequence[int] = (1, 5)) -> list[int]:
    """Number of samples whose label is among the ``k`` highest scores, for each ``k``.

    Parameters
    ----------
    logits : Tensor (N, C)
        Scores.
    target : Tensor (N,) of class indices, or (N, C) of probabilities (mixup; its argmax is used).
    ks : sequence of int
        The ``k`` values; a ``k`` above ``C`` counts every sample as correct.
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be (N, C), got shape {tuple(logits.shape)}")
    if target.dim() == 2:
        target = target.argmax(dim=1)
    if target.shape[0] != logits.shape[0]:
        raise ValueError(f"{logits.shape[0]} predictions but {target.shape[0]} labels")
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices
    hit = top.eq(target.view(-1, 1))
    return [int(hit[:, : min(k, kmax)].any(dim=1).sum()) for k in ks]


def topk_accuracy(logits: torch.Tensor, target: torch.Tensor, ks: Sequence[int] = (1, 5)) -> list[float]:
    """Top-k accuracies in percent (see :func:`topk_correct`)."""
    n = max(1, logits.shape[0])
    return [100.0 * c / n for c in topk_correct(logits, target, ks)]


class TopKAccuracy:
    """Running top-k accuracy over batches (Gluon's ``TopKAccuracy`` metric), summable across processes.

    Parameters
    ----------
    ks : sequence of int, default (1, 5)
    """

    def __init__(self, ks: Sequence[int] = (1, 5)) -> None:
        self.ks = tuple(int(k) for k in ks)
        self.reset()

    def reset(self) -> None:
        self.correct = torch.zeros(len(self.ks), dtype=torch.float64)
        self.count = 0

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        self.correct += torch.tensor(topk_correct(logits.detach(), target, self.ks), dtype=torch.float64)
        self.count += int(logits.shape[0])

    def all_reduce(self) -> None:
        """Sum the counts over the ``torch.distributed`` group (when one is initialised)."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            t = torch.cat([self.correct, torch.tensor([float(self.count)], dtype=torch.float64)])
            dist.all_reduce(t)
            self.correct, self.count = t[:-1], int(t[-1].item())

    def get(self) -> dict[str, float]:
        """``{"top1": ..., "top5": ...}`` in percent (NaN before any update)."""
        if self.count == 0:
            return {f"top{k}": float("nan") for k in self.ks}
        return {f"top{k}": float(100.0 * c / self.count) for k, c in zip(self.ks, self.correct.tolist())}
