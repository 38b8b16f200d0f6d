"""The common end of every reference training script: weights, their sha256 and ``metrics.json``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

__all__ = ["finish_run"]


def finish_run(save_dir: str | Path, model: torch.nn.Module, weights_name: str, metrics: dict[str, Any],
               header: dict[str, str] | None = None, logger: Any = None) -> dict[str, Any]:
    """Save ``model`` as ``save_dir/weights_name`` (safetensors), ``weights.sha256`` and ``metrics.json``.

    Parameters
    ----------
    save_dir : path
        The run's output folder.
    model : Module
        The trained model (rank 0's).
    weights_name : str
        File name of the weights, e.g. ``resnet18_v1.safetensors``.
    metrics : dict
        The run's results; its ``"sha256"`` entry (if present, at its position) or a new
        last entry receives the weights' digest.
    header : dict of str, optional
        safetensors metadata written with the weights.
    logger : JSONLinesLogger, optional
        If given, the metrics are also logged as a ``kind="final"`` record.

    Returns
    -------
    dict
        ``metrics`` with the digest filled in.
    """
    from toolkit.zoo import save_weights

    save_dir = Path(save_dir)
    sha = save_weights(model, save_dir / weights_name, metadata=header)
    (save_dir / "weights.sha256").write_text(f"{sha}  {weights_name}\n")
    metrics = dict(metrics)
    metrics["sha256"] = sha
    (save_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if logger is not None:
        logger.log(kind="final", **metrics)
    return metrics
