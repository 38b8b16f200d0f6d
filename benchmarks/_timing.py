"""What the benchmark scripts share: the machine they ran on, its load, and median step times.

Standard library only: ``vs_mxnet.py`` imports it in the MXNet peer environment too. The
scripts are run as files (``python benchmarks/<name>.py``), so this folder is on ``sys.path``.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

#: CPU flags shown in the header lines (the ones that change which kernels run).
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "amx_tile")


def cpu() -> tuple[str, list[str]]:
    """The CPU model name and which of :data:`ISA_FLAGS` it has (Linux ``/proc/cpuinfo``)."""
    model, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return model, [f for f in ISA_FLAGS if f in flags]


def load_text() -> str:
    """The 1, 5 and 15 minute load averages as ``"1.9 0.6 0.2"`` (timings under load mean little)."""
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def median_step_s(step: Callable[[], object], warmup: int, steps: int) -> float:
    """Median seconds of ``steps`` calls of ``step`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def matmul_gflops(size: int = 2048) -> float:
    """GFLOP/s of a ``size`` x ``size`` fp32 matrix product on torch's threads: what this CPU's cores reach, the
    ceiling the benchmarks set arithmetic rates beside (torch imported here: the peer environment has none)."""
    import torch

    a = torch.randn(size, size)
    return 2 * size ** 3 / median_step_s(lambda: torch.mm(a, a), 3, 10) / 1e9


def interleaved_medians(steps_by_label: dict[str, Callable[[], object]], warmup: int, steps: int) -> dict[str, float]:
    """Median seconds per label of ``steps`` calls each, after ``warmup`` untimed calls of every one, the
    labels taking turns call by call (forward then reverse order): drift on a shared machine, and
    whatever the first-timed variant of a process pays, weigh on all alike."""
    for step in steps_by_label.values():
        for _ in range(warmup):
            step()
    labels = list(steps_by_label)
    times: dict[str, list[float]] = {k: [] for k in labels}
    for i in range(steps):
        for label in (labels if i % 2 == 0 else labels[::-1]):
            t = time.perf_counter()
            steps_by_label[label]()
            times[label].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def run_json_child(code: str, cfg: dict, env: dict[str, str], cwd: Path) -> dict:
    """Run ``python -c code json(cfg)`` in a fresh process with ``env`` added to this one's environment
    (``OMP_WAIT_POLICY=PASSIVE`` unless set); the dict it prints on its last ``RESULT {json}`` line.

    Fresh processes are how the first-call benchmarks time what a user's new process pays.
    """
    full = dict(os.environ, **env)
    full.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(cfg)], cwd=cwd, env=full,
                          capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"child failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT "):])
