"""Up-front checks of the reference scripts' flags: a bad flag is named before any work starts.

Every script parses with :func:`parse_args`, which runs argparse and then these checks and
reports a failure through ``parser.error`` (exit status 2, the message names the flag),
instead of a traceback from deep inside the scheduler, the zoo or ``torch.load``.
The rules go by flag name, so one table serves every script in ``scripts/``.
"""
from __future__ import annotations

import argparse
import difflib
import json
import math
import zipfile
from pathlib import Path
from typing import Any, Sequence

__all__ = ["parse_args", "validate_args", "check_resume_file", "resume_checkpoint"]

#: integer flags that must be >= 1 when given
POSITIVE_INTS = (
    "batch_size", "eval_batch_size", "num_epochs", "epochs", "log_interval", "bptt", "max_len", "max_length",
    "max_seq_length", "max_query_length", "doc_stride", "max_answer_len", "n_best", "num_buckets", "beam_size",
    "num_scales", "scale_divisor", "vocab_size", "embed_size", "num_groups", "stop_after_epoch", "val_interval",
    "input_size", "min_crop_size", "max_crop_size", "min_freq",
)
#: integer flags that must be >= 0 when given
NON_NEGATIVE_INTS = (
    "num_workers", "num_threads", "max_train_samples", "max_eval_samples", "max_val_samples", "max_samples",
    "max_train_sentences", "stop_after_steps", "save_frequency", "warmup_steps", "mixup_off_epoch",
    "tgt_max_len_b",
)
#: float flags that must be finite and > 0
POSITIVE_FLOATS = ("lr", "temperature", "lr_update_factor", "bucket_len_step", "tgt_max_len_a", "lp_k")
#: float flags that must be finite and >= 0
NON_NEGATIVE_FLOATS = ("wd", "momentum", "clip", "warmup_epochs", "mixup_alpha", "max_train_minutes", "lr_decay",
                       "lp_alpha")
#: float flags that must lie in [0, 1]
UNIT_FLOATS = ("label_smoothing", "dropout", "hard_weight", "warmup_ratio")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_resume_file(path: str | Path) -> str | None:
    """Why ``path`` cannot be a checkpoint to resume from (missing, a folder, empty, not a torch file), or None."""
    path = Path(path)
    if path.is_dir():
        return f"{path} is a directory, not a checkpoint file"
    if not path.is_file():
        return f"{path} not found"
    if path.stat().st_size == 0:
        return f"{path} is empty"
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive since torch 1.6
        return f"{path} is not a torch checkpoint (corrupt or another format)"
    return None


def validate_args(parser: argparse.ArgumentParser, args: argparse.Namespace, task: str | Sequence[str] | None = None,
                  model_flag: str = "model") -> argparse.Namespace:
    """Check ``args`` against the rules above and, with ``task``, that ``--model`` is a zoo model of that task.

    Calls ``parser.error`` (exit status 2) naming the first bad flag.
    """
    values = vars(args)

    def fail(name: str, message: str) -> None:
        parser.error(f"{_flag(name)} {message}")

    for name in POSITIVE_INTS:
        v = values.get(name)
        if v is not None and v < 1:
            fail(name, f"must be >= 1, got {v}")
    for name in NON_NEGATIVE_INTS:
        v = values.get(name)
        if v is not None and v < 0:
            fail(name, f"must be >= 0, got {v}")
    for name in POSITIVE_FLOATS + NON_NEGATIVE_FLOATS + UNIT_FLOATS:
        v = values.get(name)
        if v is None:
            continue
        if not math.isfinite(v):
            fail(name, f"must be a finite number, got {v}")
        if name in POSITIVE_FLOATS and v <= 0:
            fail(name, f"must be > 0, got {v}")
        if name in NON_NEGATIVE_FLOATS and v < 0:
            fail(name, f"must be >= 0, got {v}")
        if name in UNIT_FLOATS and not 0 <= v <= 1:
            fail(name, f"must be between 0 and 1, got {v}")
    if values.get("model_kwargs") is not None:
        try:
            kwargs = json.loads(values["model_kwargs"])
        except json.JSONDecodeError as err:
            fail("model_kwargs", f"is not valid JSON: {err}")
        if not isinstance(kwargs, dict):
            fail("model_kwargs", "must be a JSON object, e.g. '{\"norm_layer\": \"group\"}'")
    if values.get("resume_from"):
        problem = check_resume_file(values["resume_from"])
        if problem:
            fail("resume_from", problem)
    if task is not None and values.get(model_flag):
        from toolkit.zoo import list_models

        tasks = [task] if isinstance(task, str) else list(task)
        names = sorted({n for t in tasks for n in list_models(t)})
        if values[model_flag].lower() not in names:
            close = difflib.get_close_matches(values[model_flag].lower(), names, n=6, cutoff=0.5)
            hint = f"; similar: {', '.join(close)}" if close else f"; see toolkit.zoo.list_models({tasks[0]!r})"
            fail(model_flag, f"{values[model_flag]!r} is not a {'/'.join(tasks)} model of the zoo{hint}")
    return args


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None,
               task: str | Sequence[str] | None = None, model_flag: str = "model") -> argparse.Namespace:
    """``parser.parse_args(argv)`` followed by :func:`validate_args`."""
    return validate_args(parser, parser.parse_args(argv), task=task, model_flag=model_flag)


def resume_checkpoint(path: str | Path, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`scripts.common.checkpoint.load_checkpoint` for ``--resume-from``: a bad file ends the
    script with one message naming the flag (``SystemExit``), not a traceback."""
    from .checkpoint import CheckpointError, load_checkpoint

    try:
        return load_checkpoint(path, *args, **kwargs)
    except CheckpointError as err:
        raise SystemExit(f"--resume-from: {err}") from None
