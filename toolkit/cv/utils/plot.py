"""Plot training curves from the JSON-lines logs the training scripts write."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["read_training_log", "plot_training_curves"]


def read_training_log(path: str | os.PathLike) -> dict[str, list[dict[str, Any]]]:
    """Split a ``log.jsonl`` into its ``train`` (per step) and ``epoch`` records.

    Raises
    ------
    FileNotFoundError
        If the log does not exist.
    ValueError
        If a line is not JSON (the message gives its number) or the log has no epoch record.
    """
    path = Path(path)
    train, epochs = [], []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{i}: not valid JSON ({err.msg})") from err
        (epochs if rec.get("kind") == "epoch" else train).append(rec)
    if not epochs:
        raise ValueError(f"{path} holds no epoch record (\"kind\": \"epoch\"): nothing to plot")
    return {"train": train, "epoch": epochs}


def plot_training_curves(log: str | os.PathLike, output: str | os.PathLike, title: str | None = None) -> Path:
    """Draw loss and accuracy curves of a training log into a PNG file.

    Left: training loss per logged step and per epoch. Right: training accuracy
    and validation top-1 / top-5 per epoch.

    Parameters
    ----------
    log : path
        ``log.jsonl`` of ``scripts/classification/train.py`` (or any log with the same keys).
    output : path
        The PNG to write.
    title : str, optional
        Figure title.

    Returns
    -------
    Path
        ``output``.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    records = read_training_log(log)
    steps_per_epoch = None
    epochs = records["epoch"]
    if len(epochs) and epochs[0].get("step"):
        steps_per_epoch = epochs[0]["step"] / (epochs[0]["epoch"] + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    if records["train"] and steps_per_epoch:
        ax_loss.plot([r["step"] / steps_per_epoch for r in records["train"]], [r["loss"] for r in records["train"]],
                     alpha=0.5, label="train loss (running mean)")
    ax_loss.plot([r["epoch"] + 1 for r in epochs], [r["loss"] for r in epochs], "o-", label="train loss (epoch)")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    x = [r["epoch"] + 1 for r in epochs]
    for key, label in (("train_acc", "train accuracy"), ("val_top1", "val top-1"), ("val_top5", "val top-5")):
        pts = [(e, r[key]) for e, r in zip(x, epochs) if r.get(key) is not None]
        if pts:
            ax_acc.plot(*zip(*pts), "o-", label=label)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=100)
    plt.close(fig)
    return output
