"""Predictions from an exported model: what ``toolkit predict`` prints.

The output of :func:`predict` (and of ``toolkit predict --json``) is the
reference the C++ and Java runners reproduce: a list with one object per input,
for classification ``{"input": PATH, "topk": [{"index": I, "label": NAME,
"prob": P}, ...]}`` best first (ties: lower index first), probabilities from a
float64 softmax of the graph's logits.

Tasks other than classification plug in with :func:`register_predictor`; the
text half of the toolkit (``toolkit-nlp``) adds ``text_classification`` and
``translation`` in :mod:`toolkit.nlp.deploy`, imported on first use so that
``toolkit-core`` works without it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .preprocess import ImagePreprocessing, preprocess_image
from .runtime import ExportedBlock, ExportError, load

__all__ = ["predict", "classify", "softmax", "topk", "topk_item", "register_predictor", "PREDICTORS", "LAZY_PREDICTORS"]

#: task name -> function(model, inputs, k, with_logits) -> list of result dicts
PREDICTORS: dict[str, Callable[..., list[dict[str, Any]]]] = {}
#: tasks served by another distribution: task -> (module that registers it, distribution)
LAZY_PREDICTORS: dict[str, tuple[str, str]] = {
    "text_classification": ("toolkit.nlp.deploy", "toolkit-nlp"),
    "translation": ("toolkit.nlp.deploy", "toolkit-nlp"),
    "segmentation": ("toolkit.cv.deploy", "toolkit-cv"),
    "detection": ("toolkit.cv.deploy", "toolkit-cv"),
}


def register_predictor(task: str) -> Callable:
    """Register the function that serves ``toolkit predict`` for exported models of ``task``."""

    def wrap(fn: Callable) -> Callable:
        PREDICTORS[task] = fn
        return fn

    return wrap


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis in float64 (the runners do the same sum in the same order)."""
    x = np.asarray(logits, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def topk(probs: np.ndarray, k: int) -> list[int]:
    """Indices of the ``k`` largest values, best first, ties broken by the lower index."""
    order = sorted(range(len(probs)), key=lambda i: (-probs[i], i))
    return order[: max(0, min(k, len(probs)))]


def _classes(meta: dict[str, Any], n: int) -> list[str] | None:
    names = meta.get("classes")
    if names is None:
        return None
    if not isinstance(names, list) or len(names) != n:
        count = len(names) if isinstance(names, list) else type(names).__name__
        raise ExportError(f"metadata classes lists {count} names but the classifier has {n} outputs")
    return [str(c) for c in names]


def topk_item(input_name: str, row: np.ndarray, meta: dict[str, Any], k: int, with_logits: bool) -> dict[str, Any]:
    """One classification result: ``{"input", "topk": [{"index", "label", "prob"}, ...]}`` (+ ``"logits"``).

    Shared by the image and text classifiers so that both print exactly what the native runners do.

    Raises
    ------
    ExportError
        If the logits hold NaN or infinity (no class can be named), or the metadata's class
        list does not have one name per logit.
    """
    row = np.asarray(row)
    if not np.isfinite(row).all():
        raise ExportError(f"the model returned non-finite logits (NaN or infinity) for {input_name}")
    probs = softmax(row)
    names = _classes(meta, len(row))
    item: dict[str, Any] = {
        "input": input_name,
        "topk": [{"index": int(i), "label": names[i] if names else str(i), "prob": float(probs[i])}
                 for i in topk(probs, k)],
    }
    if with_logits:
        item["logits"] = [float(v) for v in row]
    return item


def _image_input(meta: dict[str, Any]) -> tuple[str, list[Any]]:
    inputs = meta.get("inputs") or []
    if len(inputs) != 1:
        raise ExportError(f"an image classifier takes one input; the metadata lists {len(inputs)}")
    spec = inputs[0]
    shape = list(spec.get("shape", []))
    if len(shape) != 4:
        raise ExportError(f"image input {spec.get('name')!r} must be NCHW, the metadata says shape {shape}")
    return spec["name"], shape


@register_predictor("classification")
def classify(
    model: ExportedBlock,
    inputs: Sequence[str | os.PathLike],
    k: int = 5,
    with_logits: bool = False,
    batch_size: int = 8,
) -> list[dict[str, Any]]:
    """Classify image files with an exported classifier.

    Parameters
    ----------
    model : ExportedBlock
        A loaded export (``toolkit.deploy.load(prefix)``).
    inputs : sequence of path
        Image files (PNG/JPEG ...).
    k : int
        How many classes to report per image.
    with_logits : bool
        Also return the raw ``logits`` list (used to compare runtimes).
    batch_size : int
        Images per graph call.

    Returns
    -------
    list of dict
        ``{"input": PATH, "topk": [{"index", "label", "prob"}, ...]}`` per image.
    """
    meta = model.metadata
    pre = ImagePreprocessing.from_metadata(meta)
    _, shape = _image_input(meta)
    results: list[dict[str, Any]] = []
    for start in range(0, len(inputs), max(1, batch_size)):
        chunk = list(inputs[start : start + batch_size])
        batch = np.stack([preprocess_image(p, pre, shape[1:]) for p in chunk])
        logits = model(batch)
        if isinstance(logits, tuple):
            logits = logits[0]
        logits = np.asarray(logits)
        if logits.ndim != 2 or logits.shape[0] != len(chunk):
            raise ExportError(f"the graph returned shape {list(logits.shape)}; a classifier returns (N, classes)")
        results.extend(topk_item(os.fspath(path), row, meta, k, with_logits) for path, row in zip(chunk, logits))
    return results


def _load(prefix: str | os.PathLike, runtime: str) -> Any:
    if runtime == "onnxruntime":
        return load(prefix)
    if runtime == "openvino":
        from .openvino import load_openvino

        return load_openvino(prefix)
    raise ExportError(f"unknown runtime {runtime!r}; choose onnxruntime or openvino")


def _lazy_predictor(task: str | None) -> Callable[..., list[dict[str, Any]]] | None:
    """Import the module that serves ``task`` (e.g. the text half) and return its predictor."""
    if task not in LAZY_PREDICTORS:
        return None
    module, dist = LAZY_PREDICTORS[task]
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as err:
        raise ExportError(
            f"task {task!r} needs the {dist} distribution (pip install {dist}); importing {module} failed: {err}"
        ) from err
    return PREDICTORS.get(task)


def predict(
    prefix_or_model: str | os.PathLike | ExportedBlock,
    inputs: Sequence[str | os.PathLike],
    k: int = 5,
    with_logits: bool = False,
    runtime: str = "onnxruntime",
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Run an exported model on input files and return one result dict per input.

    Parameters
    ----------
    prefix_or_model : path, ExportedBlock or OpenVINOBlock
        The export prefix (``prefix.onnx`` + ``prefix.json``) or a loaded model.
    inputs : sequence of path
        Input files; what they are depends on the model's task (images for
        classification; UTF-8 text files, one input per non-blank line, for
        ``text_classification`` and ``translation``).
    k : int
        Top-k size.
    with_logits : bool
        Include the raw outputs.
    runtime : str
        ``"onnxruntime"`` (default) or ``"openvino"`` (the engine of the C++ and
        Java runners, so their outputs can be compared with Python's, int8
        included) for a prefix; ignored for a loaded model.

    Raises
    ------
    ExportError
        Missing/corrupt model or tokenizer files, unreadable text inputs, a text
        task without ``toolkit-nlp`` installed, or a task ``toolkit predict`` does not serve.
    ImageError
        An unreadable or unusable image.
    """
    if isinstance(prefix_or_model, (str, os.PathLike)):
        model = _load(prefix_or_model, runtime)
    else:
        model = prefix_or_model
    if not inputs:
        raise ExportError("no inputs given")
    task = model.metadata.get("task")
    fn = PREDICTORS.get(task or "") or _lazy_predictor(task)
    if fn is None:
        served = ", ".join(sorted({*PREDICTORS, *LAZY_PREDICTORS}))
        raise ExportError(
            f"toolkit predict does not yet support task {task!r} (model {model.metadata.get('model')!r}); "
            f"supported tasks: {served}"
        )
    if kwargs:  # task options (--out, --overlay ...): refuse those this task's predictor does not take
        import inspect

        params = inspect.signature(fn).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            unknown = sorted(k for k in kwargs if k not in params)
            if unknown:
                raise ExportError(f"option(s) {', '.join(unknown)} do not apply to task {task!r}")
    return fn(model, [Path(p) if not isinstance(p, str) else p for p in inputs], k=k, with_logits=with_logits, **kwargs)
