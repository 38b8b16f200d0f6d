"""Shared helpers of the weight converters: renaming, and strict tensor placement into a zoo model."""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ...zoo import WeightsError

__all__ = ["assign_state", "mxnet_norm_name", "rename_by_rules", "to_tensor"]


def mxnet_norm_name(name: str) -> str:
    """MXNet's norm parameter names to PyTorch's: ``*.gamma`` -> ``*.weight``, ``*.beta`` -> ``*.bias``."""
    return re.sub(r"\.beta$", ".bias", re.sub(r"\.gamma$", ".weight", name))


def rename_by_rules(name: str, rules: Sequence[tuple[str, str | Callable[[re.Match], str]]]) -> str | None:
    """``name`` rewritten by the first ``(pattern, replacement)`` rule that matches it; None if none does."""
    for pattern, repl in rules:
        new, n = re.subn(pattern, repl, name)
        if n:
            return new
    return None


def to_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    return torch.from_numpy(np.ascontiguousarray(value))


def assign_state(model: torch.nn.Module, tensors: Mapping[str, torch.Tensor], source: str) -> torch.nn.Module:
    """Load ``tensors`` (already renamed to ``model``'s names) into ``model``.

    Every float tensor of the model must be given, with the same number of
    elements (a tensor is reshaped to the model's shape, e.g. a fully
    connected weight stored as a 1x1 convolution). ``num_batches_tracked``
    counters may be absent. Names the model does not have are errors.

    Raises
    ------
    WeightsError
        Naming what is missing, unexpected or of the wrong size.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in tensors and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in tensors if k not in own]
    bad = []
    state: dict[str, torch.Tensor] = {}
    for k, v in tensors.items():
        if k not in own:
            continue
        if v.numel() != own[k].numel():
            bad.append(f"{k}: {source} {tuple(v.shape)} vs model {tuple(own[k].shape)}")
            continue
        state[k] = v.reshape(own[k].shape).to(own[k].dtype)
    if missing or unexpected or bad:
        parts = []
        if bad:
            parts.append("wrong sizes: " + "; ".join(bad[:5]) + (" ..." if len(bad) > 5 else ""))
        if missing:
            parts.append(f"missing in {source}: {missing[:6]}" + (" ..." if len(missing) > 6 else ""))
        if unexpected:
            parts.append(f"not in the model: {unexpected[:6]}" + (" ..." if len(unexpected) > 6 else ""))
        raise WeightsError(f"{source} does not fit {type(model).__name__}: " + ", ".join(parts))
    model.load_state_dict(state, strict=False)
    return model
