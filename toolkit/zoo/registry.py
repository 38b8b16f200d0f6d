"""Model registry: one way to define a model family, one ``get_model``.

A family file describes the family once (task, metadata, published weights)
and registers its builders through it (no edit anywhere else)::

    RESNET_CIFAR = ModelFamily(task="classification", metadata={"family": "cifar_resnet_v1"},
                               weights={"cifar_resnet20_v1": [Weights(sha256="...", metrics={"top1": 94.58})]})

    @RESNET_CIFAR.register
    def cifar_resnet20_v1(**kwargs) -> CIFARResNet:
        return CIFARResNet(...)

    # a family whose members are named configs of one builder
    BERT = ModelFamily(task="bert").register_configs(build_bert, bert_cfg_reg.list())

:func:`register_model` is the primitive both go through. Weights published
elsewhere (torchvision, Hugging Face) are *sources*: a converter registers a
loader per zoo name with :func:`register_source`, and
``get_model(name, pretrained="torchvision")`` calls it.

Names are case-insensitive and follow GluonCV/GluonNLP where the model
existed there.
"""
from __future__ import annotations

import difflib
import fnmatch
import importlib
import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch

from .store import WeightsError, fetch, load_weights, verify, weights_filename

__all__ = [
    "Weights",
    "ModelEntry",
    "ModelFamily",
    "register_model",
    "register_source",
    "Source",
    "get_model",
    "list_models",
    "get_entry",
    "checkout_logs",
]

log = logging.getLogger(__name__)

# Modules whose import registers models (and the converters, which register
# pretrained sources); imported lazily so that a missing half (toolkit-cv /
# toolkit-nlp not installed) only hides its own models.
_PROVIDERS = ("toolkit.cv.models", "toolkit.nlp.models", "toolkit.cv.convert", "toolkit.nlp.convert")

#: ``pretrained="DEFAULT"`` (and ``True``): a model's default weights, as in torchvision/timm.
DEFAULT = "DEFAULT"


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
        Row folder under ``model_zoo_logs/`` holding command, config, log,
        metrics and (when small) the weights file itself.
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


#: ``loader(name, spec, **kwargs) -> (model, info)``: builds zoo model ``name``
#: with weights ``spec`` of a source (``""`` for the source's default); ``info``
#: is the metadata recorded as ``model.metadata["weights"]``.
SourceLoader = Callable[..., "tuple[torch.nn.Module, dict[str, Any]]"]


@dataclass
class ModelEntry:
    name: str
    builder: Callable[..., torch.nn.Module]
    task: str | None
    weights: list[Weights]
    metadata: dict[str, Any]
    #: source kind (``torchvision``, ``huggingface``) -> how to load its weights
    sources: dict[str, "Source"] = field(default_factory=dict)

    def find_weights(self, tag: str) -> Weights:
        for w in self.weights:
            if w.tag == tag.lower()[:8]:
                return w
        tags = ", ".join(w.tag for w in self.weights) or "none"
        raise WeightsError(f"model {self.name!r} has no weights tagged {tag!r} (published tags: {tags})")

    @property
    def has_default(self) -> bool:
        """Whether ``pretrained=True`` / ``"DEFAULT"`` has something to load."""
        return bool(self.weights) or any(s.default is not None for s in self.sources.values())


_REGISTRY: dict[str, ModelEntry] = {}
# Sources registered before their model (a converter imported first) wait here.
_PENDING_SOURCES: dict[str, dict[str, "Source"]] = {}
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

    Family files normally go through :class:`ModelFamily`, which calls this.

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
        _REGISTRY[key] = ModelEntry(key, builder, task, list(weights), dict(metadata or {}),
                                    dict(_PENDING_SOURCES.pop(key, {})))
        return builder

    return wrap(fn) if fn is not None else wrap


@dataclass
class ModelFamily:
    """One model family: its task, shared metadata and published weights, in one place.

    Parameters
    ----------
    task : str, optional
        Task of every member (see :func:`list_models`).
    metadata : dict, optional
        Metadata of every member (``family``, ``paper`` ...).
    weights : dict, optional
        Zoo name -> published :class:`Weights` of that member (first = default).
    """

    task: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, list[Weights]] = field(default_factory=dict)

    def register(self, fn: Callable | None = None, *, name: str | None = None,
                 metadata: dict[str, Any] | None = None):
        """Decorator: register ``fn`` as a member (zoo name: ``name`` or the function's name)."""

        def wrap(builder: Callable) -> Callable:
            key = (name or builder.__name__).lower()
            return register_model(builder, name=key, task=self.task, weights=self.weights.get(key, ()),
                                  metadata={**self.metadata, **(metadata or {})})

        return wrap(fn) if fn is not None else wrap

    def register_configs(self, build: Callable[..., torch.nn.Module], names: Iterable[str],
                         doc: str = "{name} (see :func:`{build}`).") -> "ModelFamily":
        """Register ``build(name, **kwargs)`` under each config name in ``names``."""
        for config in names:
            def builder(_config: str = config, **kwargs: Any) -> torch.nn.Module:
                return build(_config, **kwargs)

            builder.__name__ = config
            builder.__doc__ = doc.format(name=config, build=build.__name__)
            self.register(builder, name=config)
        return self


@dataclass(frozen=True)
class Source:
    """Weights published elsewhere for one zoo name (see :func:`register_source`)."""

    loader: SourceLoader
    default: str | None = ""
    catalog: Callable[[str], list[dict[str, Any]]] | None = None


def register_source(kind: str, name: str, loader: SourceLoader, default: str | None = "",
                    catalog: Callable[[str], list[dict[str, Any]]] | None = None) -> None:
    """Let ``get_model(name, pretrained=kind)`` load weights published elsewhere.

    This is the hook for converters (:mod:`toolkit.cv.convert` registers
    torchvision's classifiers; detection and segmentation converters register
    their families the same way).

    Parameters
    ----------
    kind : str
        ``"torchvision"``, ``"huggingface"`` ...: what ``pretrained=`` names.
    name : str
        Zoo name.
    loader : callable
        ``loader(name, spec, **kwargs) -> (model, info)``; ``spec`` is what
        follows ``kind:`` in ``pretrained`` (``""`` when nothing does).
    default : str or None
        The spec ``pretrained=True``/``"DEFAULT"`` uses when the model has no
        weights of its own; ``None``: this source is never the default.
    catalog : callable, optional
        ``catalog(name) -> [{"pretrained": ..., "default": bool, "dataset": ...,
        "metrics": {...}, "num_params": ...}]``: the source's published weights
        and numbers, read offline, for the zoo table (``scripts/zoo_table.py``).
    """
    key = name.lower()
    source = Source(loader, default, catalog)
    if key in _REGISTRY:
        _REGISTRY[key].sources[kind] = source
    else:
        _PENDING_SOURCES.setdefault(key, {})[kind] = source


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


def list_models(task: str | None = None, pattern: str | None = None, pretrained: bool = False) -> list[str]:
    """Sorted zoo names.

    Parameters
    ----------
    task : str, optional
        Only this task's models.
    pattern : str, optional
        Glob over names (``"resnet*_v1b"``).
    pretrained : bool
        Only models that ``get_model(name, pretrained=True)`` can load weights
        for (published here, or by a registered source such as torchvision).
    """
    _load_providers()
    names = [n for n, e in _REGISTRY.items() if (task is None or e.task == task) and (not pretrained or e.has_default)]
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n, pattern.lower())]
    return sorted(names)


def checkout_logs() -> Path | None:
    """``model_zoo_logs/`` of the source checkout this package runs from, if any.

    Small row weights are committed there, so a source checkout loads them
    without a download; an installed wheel has no such folder.
    """
    logs = Path(__file__).resolve().parents[2] / "model_zoo_logs"
    return logs if logs.is_dir() else None


def _committed_file(w: Weights) -> Path | None:
    logs = checkout_logs()
    if logs is None or not w.log:
        return None
    sums = logs / w.log / "weights.sha256"
    if not sums.is_file():
        return None
    parts = sums.read_text().split()
    if len(parts) < 2 or parts[0].lower() != w.sha256.lower():
        return None
    path = logs / w.log / parts[1]
    return path if path.is_file() and verify(path, w.sha256) else None


def _fetch(entry: ModelEntry, w: Weights) -> Path:
    """The verified file of ``w``: the store, then a committed row file, then ``$TOOLKIT_REPO``."""
    filename = weights_filename(entry.name, w.sha256)
    from .store import models_dir

    cached = models_dir() / filename
    if cached.is_file() and verify(cached, w.sha256):
        return cached
    committed = _committed_file(w)
    if committed is not None:
        return committed
    return fetch(filename, w.sha256)


def _source_of(entry: ModelEntry, text: str) -> tuple[str, str] | None:
    """``(kind, spec)`` when ``text`` names a registered source of ``entry``."""
    kind, _, spec = text.partition(":")
    if kind in entry.sources:
        return kind, spec
    # A Hugging Face id ("org/name") is recognised without its "huggingface:" prefix.
    if ("huggingface" in entry.sources and re.fullmatch(r"[\w.-]+/[\w.-]+(@[\w.-]+)?", text)
            and not text.endswith((".safetensors", ".params", ".pt", ".pth", ".bin")) and not Path(text).exists()):
        return "huggingface", text
    return None


def _resolve(entry: ModelEntry, pretrained: bool | str | os.PathLike) -> tuple[str, Any]:
    """What to load: ``("weights", Weights)``, ``("path", Path)`` or ``("source", (kind, spec))``."""
    if pretrained is True or (isinstance(pretrained, str) and pretrained.upper() == DEFAULT):
        if entry.weights:
            return "weights", entry.weights[0]
        for kind, src in entry.sources.items():
            if src.default is not None:
                return "source", (kind, src.default)
        sources = ", ".join(f"pretrained={k!r}" for k in entry.sources)
        hint = f" (it can load {sources})" if sources else "; build it with pretrained=False"
        raise WeightsError(f"model {entry.name!r} has no published weights{hint}")
    if not isinstance(pretrained, (str, os.PathLike)):
        raise TypeError(f"pretrained must be a bool, 'DEFAULT', a tag, a source or a path, not {type(pretrained).__name__}")
    text = os.fspath(pretrained)
    source = _source_of(entry, text)
    if source is not None:
        return "source", source
    if re.fullmatch(r"[0-9a-fA-F]{8,64}", text) and not Path(text).exists():
        return "weights", entry.find_weights(text)
    path = Path(text).expanduser()
    if not path.is_file():
        known = ", ".join(["a published tag", *(repr(k) for k in entry.sources)])
        raise WeightsError(f"pretrained={text!r} is neither a file nor one of {entry.name!r}'s weights ({known})")
    return "path", path


def _transfer(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> list[str]:
    """Load ``state`` into ``model`` built for other classes and/or grey input (fine-tuning).

    Tensors whose first dimension (the class count) differs and whose other
    dimensions agree are the classifier: skipped, left newly initialised. The
    model's first convolution, when it takes 1 channel and the weights' take
    3, gets the weights' filters summed over RGB: on a grey image (R = G = B)
    that is the response of the RGB filters. Any other difference is an error.
    Warns (and logs) naming what was skipped or adapted.
    """
    own = model.state_dict()
    state = dict(state)
    first_conv = next((k for k, v in own.items() if v.dim() == 4), None)
    adapted = []
    if first_conv in state and own[first_conv].shape[1] == 1 and state[first_conv].shape[1] == 3 \
            and own[first_conv].shape[0] == state[first_conv].shape[0]:
        state[first_conv] = state[first_conv].sum(dim=1, keepdim=True)
        adapted.append(first_conv)
    skipped = [k for k in own if k in state and own[k].shape != state[k].shape]  # in the model's order
    bad = [k for k in skipped if own[k].dim() != state[k].dim() or own[k].shape[1:] != state[k].shape[1:]]
    if bad:
        raise WeightsError(f"{source} does not fit {type(model).__name__} beyond its classifier: "
                           + "; ".join(f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in bad[:5]))
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    if unexpected or _untied(model, missing):
        raise WeightsError(f"{source} does not fit {type(model).__name__}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.load_state_dict({k: v for k, v in state.items() if k not in skipped}, strict=False)
    parts = []
    if skipped:
        parts.append(f"except the classifier ({', '.join(skipped)}), which is newly initialised for the requested classes")
    if adapted:
        parts.append(f"with the RGB filters of {adapted[0]} summed for grey input")
    if parts:
        msg = f"{type(model).__name__}: loaded {source} " + "; ".join(parts)
        log.warning(msg)
        warnings.warn(msg, stacklevel=3)
    return skipped


def _untied(model: torch.nn.Module, missing: list[str]) -> list[str]:
    from .store import _untied_missing

    return _untied_missing(model, missing)


def _apply_metadata(model: torch.nn.Module, entry: ModelEntry, weights_meta: dict[str, Any] | None,
                    info: dict[str, Any] | None, retargeted: bool) -> None:
    meta = getattr(model, "metadata", None)
    if not isinstance(meta, dict):
        return
    for k, v in entry.metadata.items():
        meta.setdefault(k, v)
    meta["name"] = entry.name
    if entry.task:
        meta.setdefault("task", entry.task)
    if weights_meta:
        # The weights' dataset (class names, input, preprocessing) no longer applies after a transfer.
        dataset_keys = ("classes", "num_classes", "dataset", "input_shape", "preprocessing")
        meta.update({k: v for k, v in weights_meta.items() if not (retargeted and k in dataset_keys)})
    if info is not None:
        meta["weights"] = {**info, **({"classifier": "replaced"} if retargeted else {})}


def get_model(name: str, pretrained: bool | str | os.PathLike = False, **kwargs: Any) -> torch.nn.Module:
    """Build a zoo model.

    Parameters
    ----------
    name : str
        Zoo name, case-insensitive (``resnet50_v1d``, ``bert_12_768_12`` ...).
    pretrained : bool or str
        ``False``: random initialisation. ``True`` or ``"DEFAULT"``: the
        default weights (this project's published ones, else the default of a
        source such as torchvision). A tag (first 8 hex digits of a published
        sha256) picks a version; ``"torchvision"`` / ``"torchvision:IMAGENET1K_V2"``
        converts torchvision's weights (through its own cache, ``$TORCH_HOME``);
        a Hugging Face id (``"google-bert/bert-base-uncased"``, or
        ``"huggingface:<id>"``) converts a BERT checkpoint from the Hugging
        Face cache (``$HF_HOME``); a path loads a local safetensors file.
        Published files are taken from ``$TOOLKIT_HOME/models``, from the
        committed row of a source checkout, or downloaded from
        ``$TOOLKIT_REPO``, and always verified by sha256.
    **kwargs
        Passed to the builder (``classes``, ``norm_layer`` ...). With
        pretrained weights, ``classes=N`` different from the weights' loads
        everything but the classifier and warns naming the skipped tensors
        (fine-tuning); ``in_channels=1`` with RGB weights sums the first
        convolution's filters over RGB.

    Raises
    ------
    ValueError
        For an unknown name, listing the closest names.
    WeightsError
        For weights that are missing, corrupt or do not fit.
    """
    entry = get_entry(name)
    if pretrained is False or pretrained is None:
        model = entry.builder(**kwargs)
        _apply_metadata(model, entry, None, None, False)
        return model
    what, value = _resolve(entry, pretrained)
    if what == "source":
        kind, spec = value
        loader = entry.sources[kind].loader
        # The source builds the model its weights fit; other classes / input channels are a transfer.
        target = {k: kwargs.pop(k) for k in ("classes", "in_channels") if k in kwargs}
        source_model, info = loader(entry.name, spec, **kwargs)
        info = {"source": kind, **info}
        builder_kwargs = info.pop("kwargs", {})  # not metadata: may hold callables (norm_layer)
        natural = {"classes": (getattr(source_model, "metadata", {}) or {}).get("num_classes"),
                   "in_channels": builder_kwargs.get("in_channels")}
        retargeted = any(v != natural[k] for k, v in target.items())
        if retargeted:
            model = entry.builder(**{**builder_kwargs, **kwargs, **target})
            _transfer(model, source_model.state_dict(), f"{kind} weights {info.get('name', spec)}")
        else:
            model = source_model
        _apply_metadata(model, entry, info.pop("metadata", None), info, retargeted)
        return model
    if what == "path":
        model = entry.builder(**kwargs)
        load_weights(model, value)
        _apply_metadata(model, entry, None, {"path": str(value)}, False)
        return model
    chosen: Weights = value
    path = _fetch(entry, chosen)
    merged = {**chosen.kwargs, **kwargs}
    retargeted = any(k in chosen.kwargs and merged[k] != chosen.kwargs[k] for k in ("classes", "in_channels"))
    model = entry.builder(**merged)
    info = {"tag": chosen.tag, "sha256": chosen.sha256, "metrics": chosen.metrics, "log": chosen.log}
    if retargeted:
        from safetensors.torch import load_file

        _transfer(model, load_file(str(path)), f"weights {chosen.tag}")
    else:
        load_weights(model, path)
    _apply_metadata(model, entry, chosen.metadata, info, retargeted)
    return model
