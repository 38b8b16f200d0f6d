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

from .fileformat import ExportError, check_graph_io, read_metadata, verify_graph
from .ov_core import shared_core
from .runtime import _one_line, as_input_array, check_image_preprocessing

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
    A segmentation graph's (N, C, H, W) logits come back as a transposed view of
    NHWC memory (same values and shape; see :func:`_nhwc_outputs`).
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
        check_image_preprocessing(self.metadata)
        model = verify_graph(prefix, self.metadata, verify)
        core = shared_core()  # one Core per process: see toolkit.deploy.ov_core
        try:
            graph = core.read_model(str(model))
        except Exception as err:  # OpenVINO raises RuntimeError subclasses of its own
            raise ExportError(f"OpenVINO cannot read {model}: {_one_line(err)}") from err
        names = [p.get_any_name() for p in graph.inputs]

        def describe(ports):
            out = []
            for p in ports:
                try:
                    dtype = p.get_element_type().to_dtype()
                except Exception:  # element types numpy has no dtype for (bf16 ...): not checked
                    dtype = None
                rank = p.get_partial_shape().rank
                out.append((p.get_any_name(), dtype, rank.get_length() if rank.is_static else None))
            return out

        def last_size(p):
            shape = p.get_partial_shape()
            if shape.rank.is_static and shape.rank.get_length() and shape[shape.rank.get_length() - 1].is_static:
                return shape[shape.rank.get_length() - 1].get_length()
            return None

        check_graph_io(self.metadata, describe(graph.inputs), describe(graph.outputs),
                       [last_size(p) for p in graph.outputs])
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
        self._nhwc: list[int] = []
        if self.metadata.get("task") == "segmentation":
            graph, self._nhwc = _nhwc_outputs(ov, graph)
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
        if num_threads:
            config["INFERENCE_NUM_THREADS"] = int(num_threads)
        if performance_hint:
            config["PERFORMANCE_HINT"] = performance_hint
        try:
            self.compiled = core.compile_model(graph, "CPU", config)
        except Exception as err:
            raise ExportError(f"OpenVINO cannot compile {model}: {_one_line(err)}") from err
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
            feed[spec["name"]] = as_input_array(value, spec)
        try:
            results = self.request.infer(feed)
        except Exception as err:  # OpenVINO's multi-line RuntimeError
            raise ExportError(f"OpenVINO inference failed: {_one_line(err)}") from err
        outputs = [np.array(results[p]) for p in self.compiled.outputs]
        for i in self._nhwc:  # NHWC memory back to the graph's (N, C, H, W) order: a view, no copy
            outputs[i] = outputs[i].transpose(0, 3, 1, 2)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


def _nhwc_outputs(ov: Any, graph: Any) -> tuple[Any, list[int]]:
    """Have OpenVINO hand the rank-4 outputs over as NHWC: the edited graph and those outputs' indices.

    OpenVINO's CPU plugin computes a segmentation model's final resize in
    channels-last memory; an NCHW output then takes a single-threaded reference
    reorder of the whole output (DeepLabV3 at 512x512: 21x512x512 floats). Asking
    for NHWC drops that reorder; the caller transposes back to an (N, C, H, W)
    view, so the values and shape are the graph's.
    """
    picked = [i for i, p in enumerate(graph.outputs)
              if p.get_partial_shape().rank.is_static and p.get_partial_shape().rank.get_length() == 4]
    if picked:
        ppp = ov.preprocess.PrePostProcessor(graph)
        for i in picked:
            ppp.output(i).tensor().set_layout(ov.Layout("NHWC"))
            ppp.output(i).model().set_layout(ov.Layout("NCHW"))
        graph = ppp.build()
    return graph, picked


def load_openvino(prefix: str | os.PathLike, **kwargs: Any) -> OpenVINOBlock:
    """Load an export with OpenVINO; see :class:`OpenVINOBlock`."""
    return OpenVINOBlock(prefix, **kwargs)
