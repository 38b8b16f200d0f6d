"""A Gluon-style hybrid deep-learning toolkit for vision and text, on PyTorch.

``toolkit`` (distribution ``toolkit-core``) holds the shared parts:
:mod:`toolkit.nn` (hybridizable blocks), :mod:`toolkit.data` (batchify,
samplers, datasets), :mod:`toolkit.zoo` (model registry and weight store) and
:mod:`toolkit.deploy` (ONNX export, int8, runtimes). The vision half
:mod:`toolkit.cv` and the text half :mod:`toolkit.nlp` are installed separately
as ``toolkit-cv`` and ``toolkit-nlp``.
"""
import importlib.abc
import sys

from .version import __version__

_HALVES = {"toolkit.cv": "toolkit-cv", "toolkit.nlp": "toolkit-nlp"}


class _MissingHalfFinder(importlib.abc.MetaPathFinder):
    """Last finder on ``sys.meta_path``: reached only when a half is not installed.

    Without it, ``import toolkit.nlp`` would fail with a bare "No module named"
    that does not say which distribution provides the module.
    """

    def find_spec(self, fullname, path=None, target=None):
        dist = _HALVES.get(fullname)
        if dist is not None:
            raise ModuleNotFoundError(
                f"{fullname} is not installed; it is part of the '{dist}' distribution: "
                f"pip install {dist}",
                name=fullname,
            )
        return None


if not any(isinstance(f, _MissingHalfFinder) for f in sys.meta_path):
    sys.meta_path.append(_MissingHalfFinder())

__all__ = ["__version__"]
