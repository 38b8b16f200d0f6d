"""Vision half of the toolkit (distribution ``toolkit-cv``): models, datasets, presets, metrics.

Submodules load on first use (``toolkit.cv.models``, ``toolkit.cv.data``,
``toolkit.cv.presets``, ``toolkit.cv.metrics``, ``toolkit.cv.convert``) so that
``import toolkit.cv`` stays cheap. The vision half needs torchvision; without
it the import fails with a message that says what to install.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any

if importlib.util.find_spec("torchvision") is None:  # pragma: no cover - depends on the environment
    raise ImportError(
        "toolkit.cv needs torchvision, which is not installed: pip install toolkit-cv "
        "(or pip install torchvision matching your torch version)"
    )

_SUBMODULES = ("models", "data", "presets", "metrics", "convert")

__all__ = list(_SUBMODULES)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
