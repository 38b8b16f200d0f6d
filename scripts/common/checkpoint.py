"""Checkpoints that make a resumed run EXACTLY continue the original one.

A checkpoint holds the model, optimizer and scheduler state dicts, the RNG
states (python, numpy, torch CPU and CUDA) and any sampler / script state. It
is written atomically (temporary file, then rename) and uses only tensors and
plain python values, so :func:`load_checkpoint` reads it with
``torch.load(weights_only=True)``: no pickle code runs when loading.
"""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["capture_rng_state", "restore_rng_state", "save_checkpoint", "load_checkpoint", "CheckpointError"]


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or does not fit the run resuming from it."""


def capture_rng_state() -> dict[str, Any]:
    """RNG states of python, numpy and torch as tensors/ints (``weights_only``-loadable)."""
    py = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [py[0], torch.tensor(py[1], dtype=torch.int64), py[2]],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(int(v) for v in internal.tolist()), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") and isinstance(model.module, torch.nn.Module) else model


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any = None, **state: Any) -> Path:
    """Write a checkpoint atomically.

    Parameters
    ----------
    path : path
        Target file (``.pt``).
    model : Module
        Saved unwrapped (a DDP wrapper's ``module``), so single- and multi-process
        runs read each other's checkpoints.
    optimizer, scheduler : optional
        Objects with ``state_dict()``.
    **state
        More entries: ``epoch``, ``step``, sampler state, best metric ... (tensors,
        numbers, strings, lists and dicts of these). RNG states are added as ``rng``.
    """
    ckpt = {"model": _unwrap(model).state_dict(), "rng": capture_rng_state(), **state}
    if optimizer is not None:
        ckpt["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        ckpt["scheduler"] = scheduler.state_dict()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        torch.save(ckpt, tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | os.PathLike, model: torch.nn.Module | None = None,
                    optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None,
                    restore_rng: bool = True) -> dict[str, Any]:
    """Read a checkpoint, load it into the given objects and return the whole dict.

    Raises
    ------
    CheckpointError
        If the file is missing or corrupt, or the model's parameters do not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise CheckpointError(f"checkpoint {path} is corrupt or not a toolkit checkpoint: {err}") from err
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"checkpoint {path} has no model state")
    if model is not None:
        try:
            _unwrap(model).load_state_dict(ckpt["model"])
        except RuntimeError as err:
            raise CheckpointError(f"checkpoint {path} does not fit the model: {err}") from err
    if optimizer is not None and "optimizer" in ckpt:
        optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and "scheduler" in ckpt:
        scheduler.load_state_dict(ckpt["scheduler"])
    if restore_rng and "rng" in ckpt:
        restore_rng_state(ckpt["rng"])
    return ckpt
