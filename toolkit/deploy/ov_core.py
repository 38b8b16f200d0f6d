"""The process's one ``openvino.Core``: every OpenVINO compile in the toolkit goes through it.

Why one: each ``Core`` loads its own instance of OpenVINO's CPU plugin, and each instance installs an
alternate signal stack (``sigaltstack``) on the thread that creates it, putting back the one it found when
it is destroyed. Instances freed in another order than the reverse of their creation (Python's garbage
collector keeps no such order) leave the thread on an unmapped stack: its next signal (a ``SIGCHLD`` from a
subprocess, under a Python handler) kills the process with SIGSEGV, with no traceback. A pytest process
that compiled OpenVINO candidates early died that way later (stop 27; ``tests/core/test_openvino_core.py``
reproduces it with two ``Core`` objects). One ``Core``, never freed, means one plugin instance.
"""
from __future__ import annotations

import functools
from typing import Any


@functools.lru_cache(maxsize=None)
def shared_core() -> Any:
    """The ``openvino.Core`` of this process (created on first use, kept until exit).

    Raises ``ImportError`` when OpenVINO is not installed.
    """
    import openvino as ov

    return ov.Core()
