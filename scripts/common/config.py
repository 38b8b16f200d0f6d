"""Dump a run's resolved configuration together with its environment."""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["hardware_info", "environment_info", "dump_config"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_info(threads: int | None = None, world_size: int = 1) -> str:
    """One line naming the hardware a run used, e.g. ``"CPU: AMD EPYC ... (2 threads) x1 process"``."""
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() > 0:
        dev = f"GPU: {torch.cuda.get_device_name(0)}"
    else:
        threads = threads if threads is not None else torch.get_num_threads()
        dev = f"CPU: {_cpu_model()} ({threads} thread{'s' if threads != 1 else ''}, {os.cpu_count()} cores on machine)"
    return f"{dev} x{world_size} process{'es' if world_size > 1 else ''}"


def _git_commit(cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment_info(world_size: int = 1) -> dict[str, Any]:
    """Versions, hardware, command line and git commit of the running process."""
    import torch

    info: dict[str, Any] = {
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "hardware": hardware_info(world_size=world_size),
        "platform": platform.platform(),
        "git_commit": _git_commit(Path(__file__).resolve().parents[2]),
    }
    try:
        import torchvision

        info["torchvision"] = torchvision.__version__
    except ImportError:
        pass
    return info


def dump_config(args: argparse.Namespace | dict[str, Any], path: str | os.PathLike,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``{"args": ..., "env": ..., **extra}`` as indented JSON and return it.

    Parameters
    ----------
    args : Namespace or dict
        The resolved flags (after defaults were applied).
    path : path
        Output file (parents are created).
    extra : dict, optional
        More resolved values (e.g. number of parameters, dataset sizes).
    """
    config = {"args": dict(vars(args)) if isinstance(args, argparse.Namespace) else dict(args),
              "env": environment_info(int(os.environ.get("WORLD_SIZE", "1"))), **(extra or {})}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2, default=str) + "\n", encoding="utf-8")
    return config
