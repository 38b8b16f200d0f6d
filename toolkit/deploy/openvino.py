"""Run an exported graph with OpenVINO from Python (benchmarks and cross-runtime tests).

:class:`OpenVINOBlock` is the OpenVINO twin of :class:`toolkit.deploy.runtime.ExportedBlock`:
same checks (metadata, sha256, input names and shapes), same call convention. It
compiles the ONNX file itself, the way the C++ and Java runners do, so a Python
test can stand in for them when comparing onnxruntime with OpenVINO.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .export import onnx_path, sha256_file
from .runtime import ExportError, read_metadata

__all__ = ["OpenVINOBlock", "load_openvino"]


class OpenVINOBlock:
    """A callable over ``prefix.onnx`` compiled by OpenVINO for the CPU.

    Parameters
    ----------
    prefix : str or path
        Export prefix (``prefix.onnx`` + ``prefix.json``).
    num_threads : int, optional
        OpenVINO inference threads (default: OpenVINO's choice).
    verify : bool
        Check the graph's sha256 against the metadata.
    performance_hint : str, optional
        ``"LATENCY"`` or ``"THROUGHPUT"``.
    batch_size : int, optional
        Fix the batch axis to this size before compiling (OpenVINO runs static
        shapes faster than dynamic ones; other batch sizes are then rejected).

    Notes
    -----
    Inference precision is pinned to f32: on CPUs with bf16 support OpenVINO
    would otherwise run float graphs in bf16. int8 (QDQ) graphs still run in u8.
    """

    def __init__(
        self,
        prefix: str | os.PathLike,
        num_threads: int | None = None,
        verify: bool = True,
        performance_hint: str | None = None,
        batch_size: int | None = None,
    ) -> None:
        try:
            import openvino as ov
        except ImportError as err:
            raise ExportError("OpenVINO is not installed: pip install openvino") from err
        self.prefix = Path(prefix)
        self.metadata = read_metadata(prefix)
        model = self.prefix.parent / self.metadata.get("onnx_file", onnx_path(prefix).name)
        if not model.is_file():
            raise ExportError(f"graph file {model} not found")
        if verify and sha256_file(model) != self.metadata["sha256"]:
            raise ExportError(f"graph file {model} is corrupt or was replaced: its sha256 does not match the metadata")
        core = ov.Core()
        try:
            graph = core.read_model(str(model))
        except Exception as err:  # OpenVINO raises RuntimeError subclasses of its own
            raise ExportError(f"OpenVINO cannot read {model}: {err}") from err
        names = [p.get_any_name() for p in graph.inputs]
        want = [s["name"] for s in self.metadata["inputs"]]
        if names != want:
            raise ExportError(f"metadata inputs {want} do not match the graph's inputs {names}")
        self.metadata = dict(self.metadata)
        if batch_size:
            specs = []
            for port, spec in zip(graph.inputs, self.metadata["inputs"]):
                dims = [int(batch_size) if i == 0 else d for i, d in enumerate(spec["shape"])]
                if any(not isinstance(d, int) for d in dims):
                    raise ExportError(f"batch_size fixes only the batch axis; input {spec['name']!r} has other dynamic axes")
                specs.append({**spec, "shape": dims})
            graph.reshape({port.get_any_name(): s["shape"] for port, s in zip(graph.inputs, specs)})
            self.metadata["inputs"] = specs
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
        if num_threads:
            config["INFERENCE_NUM_THREADS"] = int(num_threads)
        if performance_hint:
            config["PERFORMANCE_HINT"] = performance_hint
        try:
            self.compiled = core.compile_model(graph, "CPU", config)
        except Exception as err:
            raise ExportError(f"OpenVINO cannot compile {model}: {err}") from err
        self.request = self.compiled.create_infer_request()
        self.input_names = names
        self.output_names = [p.get_any_name() for p in graph.outputs]

    def __repr__(self) -> str:
        return f"OpenVINOBlock({self.metadata.get('model')!r}, inputs={self.input_names})"

    def __call__(self, *args: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        if len(args) != len(self.input_names):
            raise ExportError(f"{len(args)} inputs given; the graph takes {len(self.input_names)}: {self.input_names}")
        feed = {}
        for spec, value in zip(self.metadata["inputs"], args):
            if type(value).__module__.startswith("torch"):
                value = value.detach().cpu().numpy()
            array = np.ascontiguousarray(value, dtype=np.dtype(spec["dtype"]))
            shape = spec["shape"]
            if array.ndim != len(shape) or any(isinstance(d, int) and d != s for d, s in zip(shape, array.shape)):
                raise ExportError(f"input {spec['name']!r} has shape {list(array.shape)}; the graph takes {shape}")
            feed[spec["name"]] = array
        results = self.request.infer(feed)
        outputs = [np.array(results[p]) for p in self.compiled.outputs]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


def load_openvino(prefix: str | os.PathLike, **kwargs: Any) -> OpenVINOBlock:
    """Load an export with OpenVINO; see :class:`OpenVINOBlock`."""
    return OpenVINOBlock(prefix, **kwargs)
