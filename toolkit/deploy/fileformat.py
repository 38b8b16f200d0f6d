"""The export file format (``PREFIX.onnx`` + ``PREFIX.json``): paths, atomic writes, reading and checking.

Shared by the writer (:mod:`toolkit.deploy.export`), the runtimes
(:mod:`toolkit.deploy.runtime`, :mod:`toolkit.deploy.openvino`), int8 quantization
and the text exports, so that none of them imports another's module. The C++ and
Java runners in ``deploy/`` apply the same rules to the same files.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "FORMAT",
    "DTYPES",
    "ExportError",
    "onnx_path",
    "metadata_path",
    "graph_path",
    "sha256_file",
    "write_bytes_atomic",
    "write_json_atomic",
    "read_metadata",
    "check_graph_io",
    "verify_graph",
]

#: Version tag of the ``prefix.json`` layout.
FORMAT = "toolkit-export/1"

#: Element types a metadata ``dtype`` may name, as numpy dtypes (bfloat16 has none in numpy).
DTYPES: dict[str, Any] = {
    "float32": np.float32, "float16": np.float16, "float64": np.float64, "bfloat16": None,
    "int64": np.int64, "int32": np.int32, "int16": np.int16, "int8": np.int8,
    "uint8": np.uint8, "bool": np.bool_,
}

#: Mode of every file an export writes (readable by all, like any file ``open`` creates).
FILE_MODE = 0o644

_HEX64 = re.compile(r"[0-9a-f]{64}")


class ExportError(RuntimeError):
    """An exported model cannot be used: missing, corrupt or inconsistent files, or bad inputs."""


def onnx_path(prefix: str | os.PathLike) -> Path:
    """``PREFIX.onnx``."""
    return Path(f"{os.fspath(prefix)}.onnx")


def metadata_path(prefix: str | os.PathLike) -> Path:
    """``PREFIX.json``."""
    return Path(f"{os.fspath(prefix)}.json")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write a file so that a reader never sees it half-written (temporary file, then rename).

    The file gets mode 0644 (``mkstemp`` creates 0600).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON so that a reader never sees a half-written file.

    Raises
    ------
    ValueError
        If ``data`` holds NaN or infinity (not JSON; no runner could read it back).
    """
    text = json.dumps(data, indent=2, default=_json_default, allow_nan=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def _json_default(value: Any):
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, np.ndarray) or type(value).__module__.startswith("torch"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to export metadata")


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"non-finite number {token} (NaN and Infinity are not JSON)")


def _check_io_list(path: Path, meta: Mapping[str, Any], key: str) -> None:
    entries = meta[key]
    if not isinstance(entries, list) or not entries:
        raise ExportError(f"metadata file {path}: {key} must be a non-empty list")
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not isinstance(entry.get("shape"), list):
            raise ExportError(f"metadata file {path}: {key} entries need a 'name' and a 'shape' list")
        if entry.get("dtype") not in DTYPES:
            raise ExportError(f"metadata file {path}: {key} entry {entry['name']!r} has dtype {entry.get('dtype')!r}; "
                              f"known dtypes: {', '.join(DTYPES)}")
        for d in entry["shape"]:
            if not (isinstance(d, str) or (isinstance(d, int) and not isinstance(d, bool) and d >= 0)):
                raise ExportError(f"metadata file {path}: {key} entry {entry['name']!r} has shape entry {d!r} "
                                  "(a size or an axis name)")


def read_metadata(prefix: str | os.PathLike) -> dict[str, Any]:
    """Read and check ``prefix.json``.

    Checks the keys every runtime needs: ``format``; ``inputs``/``outputs`` (name, known
    dtype, shape); ``sha256`` (64 hex digits); ``onnx_file`` (a plain ``.onnx`` file name
    beside the JSON: no folder, no ``..``, no absolute path); ``classes`` (a list of
    strings) when present. NaN and Infinity tokens are refused (not JSON).

    Raises
    ------
    ExportError
        If the file is missing, is not JSON, or breaks one of those rules.
    """
    path = metadata_path(prefix)
    if path.is_dir():
        raise ExportError(f"metadata file {path} is a directory")
    if not path.is_file():
        raise ExportError(f"metadata file {path} not found (expected next to {onnx_path(prefix)})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ExportError(f"metadata file {path} is not valid JSON: {err}") from err
    if not isinstance(meta, dict):
        raise ExportError(f"metadata file {path} must hold a JSON object")
    missing = [k for k in ("format", "inputs", "outputs", "sha256") if k not in meta]
    if missing:
        raise ExportError(f"metadata file {path} lacks {', '.join(missing)}")
    if meta["format"] != FORMAT:
        raise ExportError(f"metadata file {path} has format {meta['format']!r}; this toolkit reads {FORMAT!r}")
    digest = meta["sha256"]
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise ExportError(f"metadata file {path}: sha256 must be the graph's 64 lowercase hex digits, got {digest!r}")
    name = meta.get("onnx_file", onnx_path(Path(prefix).name).name)
    if (not isinstance(name, str) or not name.endswith(".onnx") or len(name) <= len(".onnx")
            or any(c in name for c in "/\\\0") or name in (".", "..") or Path(name).name != name):
        raise ExportError(f"metadata file {path}: onnx_file must be a plain .onnx file name beside the JSON, "
                          f"got {name!r}")
    meta["onnx_file"] = name
    _check_io_list(path, meta, "inputs")
    _check_io_list(path, meta, "outputs")
    classes = meta.get("classes")
    if classes is not None and (not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)):
        raise ExportError(f"metadata file {path}: classes must be a list of names, got {type(classes).__name__}")
    return meta


def graph_path(prefix: str | os.PathLike, meta: Mapping[str, Any]) -> Path:
    """The graph file of an export whose metadata :func:`read_metadata` checked."""
    return Path(prefix).parent / meta["onnx_file"]


def verify_graph(prefix: str | os.PathLike, meta: Mapping[str, Any], verify: bool = True) -> Path:
    """The graph file, checked to exist and (with ``verify``) to have the recorded sha256.

    Raises
    ------
    ExportError
        If the graph is missing, a directory, or its sha256 differs from the metadata's.
    """
    model = graph_path(prefix, meta)
    if model.is_dir():
        raise ExportError(f"graph file {model} is a directory")
    if not model.is_file():
        raise ExportError(f"graph file {model} not found")
    if verify:
        digest = sha256_file(model)
        if digest != meta["sha256"]:
            raise ExportError(
                f"graph file {model} is corrupt or was replaced: sha256 {digest[:12]}... "
                f"but the metadata records {meta['sha256'][:12]}..."
            )
    return model


def check_graph_io(
    meta: Mapping[str, Any],
    inputs: Sequence[tuple[str, Any, int | None]],
    outputs: Sequence[tuple[str, Any, int | None]],
    out_sizes: Sequence[int | None] = (),
) -> None:
    """Check the metadata's inputs/outputs against a loaded graph's (any runtime).

    Parameters
    ----------
    meta : mapping
        Checked metadata (:func:`read_metadata`).
    inputs, outputs : sequence of (name, numpy dtype or None, rank or None)
        What the runtime reports for the graph; ``None`` = unknown (not checked).
    out_sizes : sequence of int or None
        The static size of each output's last axis, if the runtime knows it.

    Raises
    ------
    ExportError
        Names, order, ranks or dtypes differ, or a classifier's ``classes`` list does not
        have one name per output of the graph.
    """
    for key, graph in (("inputs", inputs), ("outputs", outputs)):
        specs = meta[key]
        names, want = [g[0] for g in graph], [s["name"] for s in specs]
        if names != want:
            raise ExportError(f"metadata {key} {want} do not match the graph's {key} {names}")
        for spec, (name, dtype, rank) in zip(specs, graph):
            expected = DTYPES[spec["dtype"]]
            if dtype is not None and expected is not None and np.dtype(dtype) != np.dtype(expected):
                raise ExportError(f"metadata {key} {name!r} has dtype {spec['dtype']} but the graph's is "
                                  f"{np.dtype(dtype).name}")
            if rank is not None and rank != len(spec["shape"]):
                raise ExportError(f"metadata {key} {name!r} has rank {len(spec['shape'])} ({spec['shape']}) but the "
                                  f"graph's {key[:-1]} has rank {rank}")
    classes = meta.get("classes")
    if isinstance(classes, list) and meta.get("task") in ("classification", "text_classification"):
        last = meta["outputs"][0]["shape"][-1] if meta["outputs"][0]["shape"] else None
        sizes = [s for s in (out_sizes[0] if out_sizes else None, last) if isinstance(s, int)]
        for size in sizes:
            if size != len(classes):
                raise ExportError(f"metadata classes lists {len(classes)} names but the classifier has {size} outputs")


def finite_number(value: Any, label: str) -> float:
    """``value`` as a finite float; ``label`` names it in the error.

    Raises
    ------
    ValueError
        If ``value`` is not a number, or is NaN or infinite.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{label} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{label} has a non-finite value ({out})")
    return out
