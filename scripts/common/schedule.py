"""Learning-rate schedules with linear warmup, stepped every iteration."""
from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["LRSchedule"]


class LRSchedule:
    """Multiplier of the base learning rate at iteration ``t`` (for ``torch.optim.lr_scheduler.LambdaLR``).

    GluonCV's ``LRSequential(LRScheduler('linear', ...), LRScheduler(mode, ...))``:
    a linear warmup from 0 over ``warmup_iters``, then ``mode``:

    * ``cosine``: ``target + (1 - target) * (1 + cos(pi * p)) / 2``;
    * ``step``: times ``decay`` at every iteration in ``step_iters``;
    * ``poly``: ``target + (1 - target) * (1 - p) ** power``;
    * ``linear``: ``poly`` with power 1;

    where ``p`` is the fraction of the post-warmup iterations done. A plain
    object (not a lambda), so ``LambdaLR.state_dict()`` saves it.

    Parameters
    ----------
    mode : {"cosine", "step", "poly", "linear"}
    total_iters : int
        Iterations of the whole run (warmup included).
    warmup_iters : int, default 0
    decay : float, default 0.1
        Factor of ``step`` mode.
    step_iters : sequence of int, default ()
        Iterations at which ``step`` mode decays.
    target : float, default 0.0
        Final multiplier of cosine/poly/linear.
    power : float, default 2.0
        Exponent of ``poly``.
    """

    def __init__(self, mode: str, total_iters: int, warmup_iters: int = 0, decay: float = 0.1,
                 step_iters: Sequence[int] = (), target: float = 0.0, power: float = 2.0) -> None:
        if mode not in ("cosine", "step", "poly", "linear"):
            raise ValueError(f"unknown lr mode {mode!r}; use cosine, step, poly or linear")
        if total_iters <= 0:
            raise ValueError(f"total_iters must be > 0, got {total_iters}")
        if not 0 <= warmup_iters <= total_iters:
            raise ValueError(f"warmup_iters must be in [0, total_iters={total_iters}], got {warmup_iters}")
        self.mode, self.total_iters, self.warmup_iters = mode, int(total_iters), int(warmup_iters)
        self.decay, self.step_iters = float(decay), sorted(int(s) for s in step_iters)
        self.target, self.power = float(target), float(1.0 if mode == "linear" else power)

    def __call__(self, t: int) -> float:
        if t < self.warmup_iters:
            return (t + 1) / self.warmup_iters  # first iteration gets a small non-zero lr
        if self.mode == "step":
            return self.decay ** sum(1 for s in self.step_iters if t >= s)
        span = max(1, self.total_iters - self.warmup_iters)
        p = min(1.0, (t - self.warmup_iters) / span)
        if self.mode == "cosine":
            return self.target + (1 - self.target) * (1 + math.cos(math.pi * p)) / 2
        return self.target + (1 - self.target) * (1 - p) ** self.power
