"""Run an exported graph from Python: the counterpart of Gluon's ``SymbolBlock.imports``."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .cpu import warn_if_saturating
from .export import FORMAT, metadata_path, onnx_path, sha256_file

__all__ = ["ExportedBlock", "ExportError", "load", "read_metadata"]


class ExportError(RuntimeError):
    """An exported model cannot be used: missing, corrupt or inconsistent files, or bad inputs."""


def read_metadata(prefix: str | os.PathLike) -> dict[str, Any]:
    """Read and check ``prefix.json``.

    Raises
    ------
    ExportError
        If the file is missing, is not JSON, or lacks the keys a runtime needs.
    """
    path = metadata_path(prefix)
    if not path.is_file():
        raise ExportError(f"metadata file {path} not found (expected next to {onnx_path(prefix)})")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ExportError(f"metadata file {path} is not valid JSON: {err}") from err
    if not isinstance(meta, dict):
        raise ExportError(f"metadata file {path} must hold a JSON object")
    missing = [k for k in ("format", "inputs", "outputs", "sha256") if k not in meta]
    if missing:
        raise ExportError(f"metadata file {path} lacks {', '.join(missing)}")
    if meta["format"] != FORMAT:
        raise ExportError(f"metadata file {path} has format {meta['format']!r}; this toolkit reads {FORMAT!r}")
    return meta


class ExportedBlock:
    """A callable over ``prefix.onnx`` run by onnxruntime.

    Calls take torch tensors or numpy arrays (positionally, in the order of
    ``metadata["inputs"]``, or by name) and return the same kind: one output
    alone, several as a tuple.

    Parameters
    ----------
    prefix : str or path
        Path given to ``export`` (without extension).
    providers : sequence of str, optional
        onnxruntime execution providers; default CPU.
    verify : bool
        Check the graph's sha256 against the metadata before loading it.
    num_threads : int, optional
        onnxruntime intra-op threads.
    """

    def __init__(
        self,
        prefix: str | os.PathLike,
        providers: Sequence[str] | None = None,
        verify: bool = True,
        num_threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        self.prefix = Path(prefix)
        self.metadata = read_metadata(prefix)
        model = self.prefix.parent / self.metadata.get("onnx_file", onnx_path(prefix).name)
        if not model.is_file():
            raise ExportError(f"graph file {model} not found")
        if verify:
            digest = sha256_file(model)
            if digest != self.metadata["sha256"]:
                raise ExportError(
                    f"graph file {model} is corrupt or was replaced: sha256 {digest[:12]}... "
                    f"but the metadata records {self.metadata['sha256'][:12]}..."
                )
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
        try:
            self.session = ort.InferenceSession(
                str(model), sess_options=options, providers=list(providers or ["CPUExecutionProvider"])
            )
        except Exception as err:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise ExportError(f"onnxruntime cannot load {model}: {err}") from err
        graph_inputs = [i.name for i in self.session.get_inputs()]
        meta_inputs = [i["name"] for i in self.metadata["inputs"]]
        if graph_inputs != meta_inputs:
            raise ExportError(f"metadata inputs {meta_inputs} do not match the graph's inputs {graph_inputs}")
        self.input_names = graph_inputs
        warn_if_saturating(self.metadata, model)  # a full-range int8 graph on a CPU whose int8 kernels clip it
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __repr__(self) -> str:
        return f"ExportedBlock({self.metadata.get('model')!r}, inputs={self.input_names}, outputs={self.output_names})"

    def _feed(self, args: tuple, kwargs: dict) -> tuple[dict[str, np.ndarray], bool]:
        if len(args) > len(self.input_names):
            raise ExportError(f"{len(args)} inputs given; the graph takes {len(self.input_names)}: {self.input_names}")
        values = dict(zip(self.input_names, args))
        for k, v in kwargs.items():
            if k not in self.input_names:
                raise ExportError(f"unknown input {k!r}; the graph takes {self.input_names}")
            values[k] = v
        missing = [n for n in self.input_names if n not in values]
        if missing:
            raise ExportError(f"missing inputs {missing}")
        torch_in = False
        feed = {}
        for spec in self.metadata["inputs"]:
            value = values[spec["name"]]
            if type(value).__module__.startswith("torch"):
                torch_in = True
                value = value.detach().cpu().numpy()
            array = np.ascontiguousarray(value, dtype=np.dtype(spec["dtype"]))
            shape = spec["shape"]
            bad = array.ndim != len(shape) or any(
                isinstance(d, int) and d != s for d, s in zip(shape, array.shape)
            )
            if bad:
                raise ExportError(
                    f"input {spec['name']!r} has shape {list(array.shape)}; the graph takes {shape} "
                    "(names are dynamic axes)"
                )
            feed[spec["name"]] = array
        return feed, torch_in

    def __call__(self, *args: Any, **kwargs: Any):
        feed, torch_in = self._feed(args, kwargs)
        outputs = self.session.run(None, feed)
        if torch_in:
            import torch

            outputs = [torch.from_numpy(o) for o in outputs]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


def load(prefix: str | os.PathLike, **kwargs: Any) -> ExportedBlock:
    """Load ``prefix.onnx`` + ``prefix.json`` written by ``HybridBlock.export``.

    See :class:`ExportedBlock` for the keyword arguments.
    """
    return ExportedBlock(prefix, **kwargs)
