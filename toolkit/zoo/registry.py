"""Model registry: one decorator, one ``get_model``.

A model file registers its builders itself (no edit anywhere else)::

    @register_model(task="classification", weights=[Weights(sha256="...", metrics={"top1": 94.1})])
    def cifar_resnet20_v1(**kwargs) -> CIFARResNet:
        return CIFARResNet(...)

Names are case-insensitive and follow GluonCV/GluonNLP where the model
existed there.
"""
from __future__ import annotations

import difflib
import fnmatch
import importlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from .store import WeightsError, fetch, load_weights, weights_filename

__all__ = ["Weights", "ModelEntry", "register_model", "get_model", "list_models", "get_entry"]

# Modules whose import registers models; imported lazily so that a missing
# half (toolkit-cv / toolkit-nlp not installed) only hides its own models.
_PROVIDERS = ("toolkit.cv.models", "toolkit.nlp.models")


@dataclass(frozen=True)
class Weights:
    """A published set of weights for one zoo name.

    Attributes
    ----------
    sha256 : str
        Full hex digest of the safetensors file; its first 8 digits are the tag.
    metrics : dict
        Evaluation results from the log that produced the weights.
    log : str
        Folder under ``model_zoo_logs/`` holding command, config, log and metrics.
    metadata : dict
        Overrides of the model's metadata (e.g. classes, preprocessing) for these weights.
    kwargs : dict
        Builder arguments the weights need (e.g. ``classes=10, in_channels=1``).
    """

    sha256: str
    metrics: dict[str, float] = field(default_factory=dict)
    log: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return self.sha256[:8].lower()


@dataclass
class ModelEntry:
    name: str
    builder: Callable[..., torch.nn.Module]
    task: str | None
    weights: list[Weights]
    metadata: dict[str, Any]

    def find_weights(self, tag: str) -> Weights:
        for w in self.weights:
            if w.tag == tag.lower()[:8]:
                return w
        tags = ", ".join(w.tag for w in self.weights) or "none"
        raise WeightsError(f"model {self.name!r} has no weights tagged {tag!r} (published tags: {tags})")


_REGISTRY: dict[str, ModelEntry] = {}
_loaded = False


def register_model(
    fn: Callable | None = None,
    *,
    name: str | None = None,
    task: str | None = None,
    weights: Sequence[Weights] = (),
    metadata: dict[str, Any] | None = None,
):
    """Register a model builder under ``name`` (default: the function's name).

    Parameters
    ----------
    fn : callable
        Builder taking keyword arguments and returning a module.
    name : str, optional
        Zoo name; stored lower-case.
    task : str, optional
        ``classification``, ``language_model``, ``translation`` ... used by
        :func:`list_models`.
    weights : sequence of Weights
        Published weights, the first being the default of ``pretrained=True``.
    metadata : dict, optional
        Metadata set on every built model (preprocessing, input shape ...).
    """

    def wrap(builder: Callable) -> Callable:
        key = (name or builder.__name__).lower()
        if key in _REGISTRY and _REGISTRY[key].builder is not builder:
            raise ValueError(f"model name {key!r} is registered twice")
        _REGISTRY[key] = ModelEntry(key, builder, task, list(weights), dict(metadata or {}))
        return builder

    return wrap(fn) if fn is not None else wrap


def _load_providers() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _PROVIDERS:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            # Only a half that is not installed is skipped; a broken import inside it is an error.
            if not (err.name or "").startswith(("toolkit.cv", "toolkit.nlp")):
                raise


def get_entry(name: str) -> ModelEntry:
    """The registry entry of ``name`` (case-insensitive)."""
    _load_providers()
    key = str(name).lower()
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, list(_REGISTRY), n=5, cutoff=0.5)
        hint = f"; closest names: {', '.join(close)}" if close else ""
        raise ValueError(f"unknown model name {name!r}{hint} (list_models() lists all {len(_REGISTRY)})")
    return _REGISTRY[key]


def list_models(task: str | None = None, pattern: str | None = None) -> list[str]:
    """Sorted zoo names, optionally for one task and matching a glob ``pattern``."""
    _load_providers()
    names = [n for n, e in _REGISTRY.items() if task is None or e.task == task]
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n, pattern.lower())]
    return sorted(names)


def _resolve_weights(entry: ModelEntry, pretrained: bool | str) -> tuple[Path, Weights | None]:
    if pretrained is True:
        if not entry.weights:
            raise WeightsError(f"model {entry.name!r} has no published weights; build it with pretrained=False")
        chosen = entry.weights[0]
    elif isinstance(pretrained, (str, os.PathLike)):
        text = os.fspath(pretrained)
        if re.fullmatch(r"[0-9a-fA-F]{8,64}", text) and not Path(text).exists():
            chosen = entry.find_weights(text)
        else:
            path = Path(text).expanduser()
            if not path.is_file():
                raise WeightsError(f"pretrained={text!r} is neither a weight tag of {entry.name!r} nor a file")
            return path, None
    else:
        raise TypeError(f"pretrained must be a bool, a tag or a path, not {type(pretrained).__name__}")
    return fetch(weights_filename(entry.name, chosen.sha256), chosen.sha256), chosen


def get_model(name: str, pretrained: bool | str = False, **kwargs: Any) -> torch.nn.Module:
    """Build a zoo model.

    Parameters
    ----------
    name : str
        Zoo name, case-insensitive (``resnet50_v1d``, ``bert_12_768_12`` ...).
    pretrained : bool or str
        ``False``: random initialisation. ``True``: the default published
        weights. A tag (first 8 hex digits of a published sha256) picks a
        version; a path loads a local safetensors file.
    **kwargs
        Passed to the builder (``classes``, ``norm_layer`` ...).

    Raises
    ------
    ValueError
        For an unknown name, listing the closest names.
    WeightsError
        For weights that are missing, corrupt or do not fit.
    """
    entry = get_entry(name)
    chosen: Weights | None = None
    path: Path | None = None
    if pretrained is not False and pretrained is not None:
        path, chosen = _resolve_weights(entry, pretrained)
        if chosen is not None:
            kwargs = {**chosen.kwargs, **kwargs}
    model = entry.builder(**kwargs)
    meta = getattr(model, "metadata", None)
    if isinstance(meta, dict):
        for k, v in entry.metadata.items():
            meta.setdefault(k, v)
        meta["name"] = entry.name
        if entry.task:
            meta.setdefault("task", entry.task)
        if chosen is not None:
            meta.update(chosen.metadata)
            meta["weights"] = {"tag": chosen.tag, "sha256": chosen.sha256, "metrics": chosen.metrics, "log": chosen.log}
    if path is not None:
        load_weights(model, path)
    return model
