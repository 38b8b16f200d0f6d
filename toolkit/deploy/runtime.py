"""Run an exported graph from Python: the counterpart of Gluon's ``SymbolBlock.imports``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .cpu import warn_if_saturating
from .fileformat import DTYPES, ExportError, check_graph_io, read_metadata, verify_graph

__all__ = ["ExportedBlock", "ExportError", "load", "read_metadata", "as_input_array", "check_outputs_finite"]

#: onnxruntime's type strings -> numpy dtypes (for the metadata check at load)
_ORT_TYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int16)": np.int16, "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_,
}


def as_input_array(value: Any, spec: dict[str, Any]) -> np.ndarray:
    """One graph input as a contiguous numpy array of the metadata's dtype, shape-checked.

    The cast rule: a value is cast only within its kind (float64 -> float32,
    int32 -> int64); integer (e.g. uint8 or int64 pixels) or bool values for a float
    graph, and floats for an integer graph, are refused rather than silently converted.

    Raises
    ------
    ExportError
        If the dtype kind or the shape does not fit ``spec``.
    """
    if type(value).__module__.startswith("torch"):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    want = DTYPES.get(spec["dtype"])
    if want is not None and array.dtype != want:
        group = {"f": "float", "i": "int", "u": "int", "b": "bool"}
        if group.get(array.dtype.kind) != group.get(np.dtype(want).kind):
            raise ExportError(
                f"input {spec['name']!r} is {array.dtype.name} but the graph takes {spec['dtype']}; "
                f"convert it explicitly (e.g. pixels / 255 after normalising), it is not cast silently"
            )
    array = np.ascontiguousarray(array, dtype=want)
    shape = spec["shape"]
    if array.ndim != len(shape) or any(isinstance(d, int) and d != s for d, s in zip(shape, array.shape)):
        raise ExportError(
            f"input {spec['name']!r} has shape {list(array.shape)}; the graph takes {shape} (names are dynamic axes)"
        )
    return array


def check_outputs_finite(outputs: Sequence[np.ndarray], names: Sequence[str]) -> None:
    """Raise :class:`ExportError` if a floating output holds NaN or infinity."""
    for name, out in zip(names, outputs):
        out = np.asarray(out)
        if out.dtype.kind == "f" and not np.isfinite(out).all():
            raise ExportError(f"the model returned non-finite values (NaN or infinity) in output {name!r}")


def check_image_preprocessing(meta: dict[str, Any]) -> None:
    """Check an image model's ``preprocessing`` entry at load (finite numbers, sizes in bounds)."""
    pre = meta.get("preprocessing")
    if isinstance(pre, dict) and pre.get("type", "image") == "image" and meta.get("task") == "classification":
        from .preprocess import ImagePreprocessing

        ImagePreprocessing.from_metadata(meta)


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
        check_image_preprocessing(self.metadata)
        model = verify_graph(prefix, self.metadata, verify)
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
        try:
            self.session = ort.InferenceSession(
                str(model), sess_options=options, providers=list(providers or ["CPUExecutionProvider"])
            )
        except Exception as err:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise ExportError(f"onnxruntime cannot load {model}: {_one_line(err)}") from err

        def describe(args):
            return [(a.name, _ORT_TYPES.get(a.type), len(a.shape) if a.shape is not None else None) for a in args]

        outputs = self.session.get_outputs()
        sizes = [o.shape[-1] if o.shape and isinstance(o.shape[-1], int) else None for o in outputs]
        check_graph_io(self.metadata, describe(self.session.get_inputs()), describe(outputs), sizes)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in outputs]
        warn_if_saturating(self.metadata, model)  # a full-range int8 graph on a CPU whose int8 kernels clip it

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
        torch_in = any(type(v).__module__.startswith("torch") for v in values.values())
        feed = {spec["name"]: as_input_array(values[spec["name"]], spec) for spec in self.metadata["inputs"]}
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

    Checks at load: the metadata (:func:`toolkit.deploy.fileformat.read_metadata`), the
    graph's sha256, its input/output names, ranks and dtypes against the metadata, the
    class list against a classifier's output, and an image model's preprocessing.

    See :class:`ExportedBlock` for the keyword arguments.
    """
    return ExportedBlock(prefix, **kwargs)


def _one_line(err: BaseException) -> str:
    """A runtime's (often multi-line) error message on one line."""
    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    return text if len(text) <= 400 else text[:397] + "..."
