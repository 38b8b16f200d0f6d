"""One ``openvino.Core`` per process (``toolkit.deploy.ov_core``): OpenVINO compiles freed in any order leave
the process able to take signals.

Each ``Core`` loads a CPU plugin instance that installs an alternate signal stack on its thread and puts
back the previous one when destroyed; two instances freed first-in first-out left the thread on an unmapped
stack, and the next signal handled in Python killed the process with SIGSEGV (the crash that made the
OpenVINO tests run last). The check runs in a child process: a crash there must not take pytest with it.
"""
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("openvino")

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import gc, os, signal
    import torch
    from toolkit.nn import autotune

    def candidate(width):
        net = torch.nn.Sequential(torch.nn.Linear(4, width), torch.nn.ReLU()).eval()
        x = torch.randn(2, 4)
        with torch.no_grad():
            program = torch.export.export(net, (x,))
            return autotune.compile_openvino(program, (x,), {}, net(x))

    first, second = candidate(3), candidate(5)
    del first  # first compiled, first freed: the order that broke the signal stack
    gc.collect()
    del second
    gc.collect()
    signal.signal(signal.SIGUSR1, lambda *_: print("handled", flush=True))
    os.kill(os.getpid(), signal.SIGUSR1)
    print("alive", flush=True)
""")


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs POSIX signals")
def test_compiles_freed_in_any_order_leave_signals_working():
    proc = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, f"child died (rc {proc.returncode}): {proc.stderr[-2000:]}"
    assert proc.stdout.split() == ["handled", "alive"]


def test_one_core_per_process():
    from toolkit.deploy.ov_core import shared_core

    assert shared_core() is shared_core()
