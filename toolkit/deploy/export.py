"""Export a block to ONNX with a metadata file beside it.

``export_block(block, prefix)`` writes

* ``prefix.onnx``: the graph and its weights (one file), traced with
  ``torch.onnx.export(..., dynamo=True)`` from ``torch.export``;
* ``prefix.json``: what a runtime needs to use the graph on its own (see
  :data:`FORMAT` and the keys listed in :func:`export_block`).

The C++ and Java runners in ``deploy/`` read the same two files.
"""
from __future__ import annotations

import contextlib
import gc
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch

from ..version import __version__
from . import _onnx_optimize, _onnx_prepare, _onnx_registry
from ._switches import switch_on
from .fileformat import (  # re-exported: the file-format helpers used to live here
    FILE_MODE,
    FORMAT,
    metadata_path,
    onnx_path,
    sha256_file,
    write_bytes_atomic,
    write_json_atomic,
)

__all__ = ["FORMAT", "export_block", "register_onnx_translation", "sha256_file", "write_json_atomic",
           "write_bytes_atomic", "metadata_path", "onnx_path"]

#: ONNX translations of custom torch ops (op overload -> onnxscript function), given to every export
_ONNX_TRANSLATIONS: dict[Any, Callable[..., Any]] = {}


def register_onnx_translation(target: Any, translation: Callable[..., Any]) -> None:
    """Export ``target`` (a custom op's overload, e.g. ``torch.ops.ns.op.default``) with ``translation``.

    ``translation`` builds the op's ONNX nodes with onnxscript, as for ``torch.onnx.export``'s
    ``custom_translation_table``; the module defining the op registers it on import.
    """
    _ONNX_TRANSLATIONS[target] = translation

_DTYPES = {
    torch.float32: "float32",
    torch.float16: "float16",
    torch.bfloat16: "bfloat16",
    torch.float64: "float64",
    torch.int64: "int64",
    torch.int32: "int32",
    torch.uint8: "uint8",
    torch.int8: "int8",
    torch.bool: "bool",
}


def _io_spec(name: str, tensor: torch.Tensor, axes: Mapping[int, str]) -> dict[str, Any]:
    return {
        "name": name,
        "dtype": _DTYPES.get(tensor.dtype, str(tensor.dtype).replace("torch.", "")),
        "shape": [axes.get(i, int(s)) for i, s in enumerate(tensor.shape)],
    }


def _gc_pause_enabled() -> bool:
    """Whether exports pause Python's cyclic garbage collector (``TOOLKIT_EXPORT_GC_PAUSE``, default on)."""
    return switch_on("TOOLKIT_EXPORT_GC_PAUSE")


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while torch.onnx exports and saves.

    Capture, translation and serialization allocate hundreds of thousands of objects, so the collector
    runs hundreds of times, and each full collection walks every object of the process (torch, sympy,
    onnx modules included): about 0.5 s of a ResNet-50 export. Reference counting still frees what is
    not in a cycle; the cycles left are freed by the first collection after (the collector is back on,
    if it was on, when the block ends).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _flatten_outputs(out: Any) -> list[torch.Tensor]:
    leaves = torch.utils._pytree.tree_leaves(out)
    return [t for t in leaves if isinstance(t, torch.Tensor)]


def export_block(
    block: torch.nn.Module,
    prefix: str | os.PathLike,
    example_inputs: Sequence[torch.Tensor] | None = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    check: bool = True,
    opset_version: int = 18,
) -> dict[str, Any]:
    """Export ``block`` (in eval mode) to ``prefix.onnx`` and ``prefix.json``.

    Parameters
    ----------
    block : HybridBlock
        The model. Its ``dynamic_axes`` pick the dynamic dimensions, its
        ``metadata`` dict is written to the JSON file.
    prefix : str or path
        Output path without extension; parent folders are created.
    example_inputs : sequence of Tensor, optional
        Tracing inputs; default ``block.example_inputs()``.
    input_names, output_names : sequence of str, optional
        Graph input/output names; default the forward's parameter names and
        ``output``/``output0..N``.
    metadata : mapping, optional
        Extra keys merged over ``block.metadata``.
    check : bool
        Run the exported graph with onnxruntime on the example inputs and
        raise if it disagrees with eager PyTorch (max abs diff over
        ``1e-4 * (1 + max |eager|)``).

    Returns
    -------
    dict
        The metadata written: ``format``, ``model``, ``task``, ``toolkit_version``,
        ``torch_version``, ``onnx_file``, ``sha256``, ``inputs``/``outputs``
        (name, dtype, shape with axis names for dynamic axes), ``dynamic_axes``,
        ``opset``, plus the block's own metadata (``preprocessing``, ``classes``,
        ``vocab_file`` ...).
    """
    import inspect

    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    was_training = block.training
    block.eval()
    try:
        if example_inputs is None:
            if not hasattr(block, "example_inputs"):
                raise ValueError("export needs example_inputs for a plain torch.nn.Module")
            example_inputs = block.example_inputs()
        example_inputs = tuple(example_inputs)
        params = [
            p.name
            for p in inspect.signature(block.forward).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        input_names = list(input_names or getattr(block, "input_names", None) or params[: len(example_inputs)])
        if len(input_names) != len(example_inputs):
            raise ValueError(f"{len(input_names)} input names for {len(example_inputs)} example inputs")

        if hasattr(block, "export_spec"):  # a HybridBlock: its dynamic_axes name the dynamic dimensions
            spec = block.export_spec(example_inputs)
            axes_per_input, dynamic_shapes = spec.axes, spec.dynamic_shapes
        else:
            axes_per_input = [{0: "batch"} for _ in example_inputs]
            dynamic_shapes = tuple({0: torch.export.Dim("batch")} for _ in example_inputs)

        # The reference is eager PyTorch: a hybridized block without a graph for these inputs
        # would otherwise capture and autotune one here, work the export never uses.
        eager_scope = getattr(block, "eager_scope", None)
        with torch.no_grad(), (eager_scope() if eager_scope is not None else contextlib.nullcontext()):
            eager_out = _flatten_outputs(block(*example_inputs))
        output_names = list(output_names or getattr(block, "output_names", None) or (["output"] if len(eager_out) == 1 else [f"output{i}" for i in range(len(eager_out))]))
        if len(output_names) != len(eager_out):
            raise ValueError(f"{len(output_names)} output names for {len(eager_out)} outputs")

        target = onnx_path(prefix)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
        os.close(fd)
        try:
            with torch.no_grad(), contextlib.ExitStack() as stack:
                if _gc_pause_enabled():
                    stack.enter_context(_gc_paused())
                # direct: skip torch.onnx's second trace where the captured graph needs none (see _onnx_prepare)
                if _onnx_prepare.enabled():
                    stack.enter_context(_onnx_prepare.direct_preparation())
                # the torchlib registry without the signatures of ops the graph does not use (see _onnx_registry)
                if _onnx_registry.enabled():
                    stack.enter_context(_onnx_registry.lazy_registry())
                # the optimizer's rewrite rules tried only on nodes of the op they end in (see _onnx_optimize)
                if _onnx_optimize.enabled():
                    stack.enter_context(_onnx_optimize.rule_filter())
                program = torch.onnx.export(
                    block,
                    example_inputs,
                    dynamo=True,
                    dynamic_shapes=dynamic_shapes,
                    input_names=input_names,
                    output_names=output_names,
                    opset_version=opset_version,
                    custom_translation_table=dict(_ONNX_TRANSLATIONS) or None,
                    external_data=False,
                    verbose=False,
                )
                program.save(tmp, external_data=False)
            os.chmod(tmp, FILE_MODE)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)

        # The output's dynamic axes follow the batch axis of the first input.
        in_axes = axes_per_input[0] if axes_per_input else {}
        meta: dict[str, Any] = {
            "format": FORMAT,
            "model": getattr(block, "metadata", {}).get("name", type(block).__name__),
            "task": None,
            "toolkit_version": __version__,
            "torch_version": torch.__version__,
            "opset": opset_version,
        }
        meta.update(getattr(block, "metadata", {}) or {})
        meta.update(metadata or {})
        meta["inputs"] = [_io_spec(n, t, a) for n, t, a in zip(input_names, example_inputs, axes_per_input)]
        meta["outputs"] = [
            _io_spec(n, t, {a: name for a, name in in_axes.items() if a < t.dim() and t.shape[a] == example_inputs[0].shape[a]})
            for n, t in zip(output_names, eager_out)
        ]
        meta["dynamic_axes"] = {n: {str(a): v for a, v in ax.items()} for n, ax in zip(input_names, axes_per_input)}
        meta["onnx_file"] = target.name
        meta["sha256"] = sha256_file(target)
        write_json_atomic(metadata_path(prefix), meta)

        if check:
            from .runtime import load

            # verify=False: the metadata's sha256 was computed from this very file a moment ago;
            # hashing it again (0.1 s for a ResNet-50) would check nothing
            got = load(prefix, verify=False)(*example_inputs)
            got = got if isinstance(got, (list, tuple)) else [got]
            for name, ref, out in zip(output_names, eager_out, got):
                ref = ref.detach().float()
                out = torch.as_tensor(out).float()
                tol = 1e-4 * (1 + ref.abs().max().item())
                diff = (ref - out).abs().max().item() if ref.numel() else 0.0
                if ref.shape != out.shape or diff > tol:
                    raise RuntimeError(
                        f"exported graph disagrees with eager PyTorch on output '{name}': "
                        f"shape {tuple(out.shape)} vs {tuple(ref.shape)}, max abs diff {diff:.3g} > {tol:.3g}"
                    )
        return meta
    finally:
        block.train(was_training)
