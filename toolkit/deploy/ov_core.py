"""The process's one ``openvino.Core``, which every OpenVINO compile in the toolkit goes through, and
:func:`convert_program`, OpenVINO's PyTorch converter taught the toolkit's own operators
(:func:`register_openvino_conversion`) and without its side effect on the process's logging.

Why one: each ``Core`` loads its own instance of OpenVINO's CPU plugin, and each instance installs an
alternate signal stack (``sigaltstack``) on the thread that creates it, putting back the one it found when
it is destroyed. Instances freed in another order than the reverse of their creation (Python's garbage
collector keeps no such order) leave the thread on an unmapped stack: its next signal (a ``SIGCHLD`` from a
subprocess, under a Python handler) kills the process with SIGSEGV, with no traceback. A pytest process
that compiled OpenVINO candidates early died that way later (stop 27; ``tests/core/test_openvino_core.py``
reproduces it with two ``Core`` objects). One ``Core``, never freed, means one plugin instance.
"""
from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any, Callable, Iterator

#: Conversions of the toolkit's own operators for OpenVINO's PyTorch frontend, by the name OpenVINO reports
#: them under (``"toolkit.grouped_nms.default"``): see :func:`register_openvino_conversion`.
_CONVERSIONS: dict[str, Callable[[Any], list]] = {}


@functools.lru_cache(maxsize=None)
def shared_core() -> Any:
    """The ``openvino.Core`` of this process (created on first use, kept until exit).

    Raises ``ImportError`` when OpenVINO is not installed.
    """
    import openvino as ov

    return ov.Core()


@contextlib.contextmanager
def root_logging_kept() -> Iterator[None]:
    """Put the root logger's level, filters and handlers back as they were on the way out, whatever happens
    inside. ``openvino.convert_model`` sets the root logger to ``ERROR`` (and adds a handler to it when it has
    none) and restores it only when the convert succeeds: after a failed one every warning of the process,
    the toolkit's included, was silenced (found at stop 28: the zoo's detectors, whose NMS OpenVINO did
    not convert yet, hid the warning saying so)."""
    root = logging.getLogger()
    level, filters, handlers = root.level, list(root.filters), list(root.handlers)
    try:
        yield
    finally:
        root.setLevel(level)
        root.filters[:] = filters
        root.handlers[:] = handlers


def register_openvino_conversion(name: str, convert: Callable[[Any], list]) -> None:
    """Teach :func:`convert_program` an operator of the toolkit's (a ``torch.library.custom_op``), which
    OpenVINO's PyTorch frontend cannot know.

    Parameters
    ----------
    name : str
        The operator as OpenVINO names it: ``"<namespace>.<op>.<overload>"``, e.g. ``"toolkit.grouped_nms.default"``.
    convert : callable
        Takes OpenVINO's ``NodeContext`` (``get_input(i)``: the ``i``-th argument as an OpenVINO output,
        Python scalars as constants) and returns the list of OpenVINO outputs standing for the operator's.
    """
    _CONVERSIONS[name] = convert


def convert_program(program: Any) -> Any:
    """``openvino.convert_model(program)`` (an ``ExportedProgram``, a module ...) with the toolkit's operators
    (:func:`register_openvino_conversion`), leaving the process's logging as it found it (see
    :func:`root_logging_kept`); OpenVINO's errors propagate."""
    import openvino as ov
    from openvino.frontend.pytorch import ConversionExtension

    extensions = [ConversionExtension(name, convert) for name, convert in _CONVERSIONS.items()]
    with root_logging_kept():
        return ov.convert_model(program, extension=extensions or None)
