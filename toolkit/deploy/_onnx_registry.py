"""torch.onnx's torchlib registry, with each op's ONNX signature worked out when the op is first looked up.

``torch.onnx.export(..., dynamo=True)`` starts by building ``ONNXRegistry.from_torchlib()``: for every one
of the ~570 torchlib functions it parses the function's source (onnxscript's ``function_ir``, only for its
domain) and infers an ONNX signature from its annotations. A vision network uses about ten of those ops;
the rest is a second or more of every process's first export. :func:`lazy_torchlib_registry` makes the same
entries in the same order (same functions, targets, opsets, complex flags) without those two steps, and
infers an op's signature, exactly as torch.onnx would have, the first time ``get_decomps`` is asked about
that op. Code that walks ``registry.functions`` directly (torch.onnx's decomposition table) reads only the
targets, which are there from the start; a torchlib function called from inside another's translation gets
its signature where torch.onnx computes it then anyway (``_building`` ``eval_function``, from the same
arguments). ``TOOLKIT_EXPORT_LAZY_REGISTRY=0`` turns it off.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import threading
from typing import Any, Iterator

import torch
from ._switches import switch_on

__all__ = ["enabled", "lazy_torchlib_registry", "lazy_registry"]

_log = logging.getLogger(__name__)
_lock = threading.Lock()


def enabled() -> bool:
    """Whether exports build the registry lazily (``TOOLKIT_EXPORT_LAZY_REGISTRY``, default on)."""
    return switch_on("TOOLKIT_EXPORT_LAZY_REGISTRY")


@functools.cache
def _registry_class() -> type:
    """The lazy subclass of torch.onnx's ``ONNXRegistry`` (made on first use: torch.onnx imports are heavy)."""
    from torch.onnx._internal.exporter import _registration

    class LazyTorchlibRegistry(_registration.ONNXRegistry):
        """An ``ONNXRegistry`` whose torchlib entries get their signature on the first ``get_decomps``."""

        def __init__(self) -> None:
            super().__init__()
            # entries whose signature is not inferred yet, by id (held here, so that no id is reused)
            self._pending: dict[int, Any] = {}

        def _settle(self, key: Any) -> None:
            """Infer the signatures of ``key``'s pending entries; drop those torch.onnx would not have
            registered (its ``from_torchlib`` skips a torchlib function whose inference raises)."""
            decomps = self.functions.get(key)
            if not decomps or not any(id(d) in self._pending for d in decomps):
                return
            kept = []
            for decomp in decomps:
                if id(decomp) in self._pending:
                    del self._pending[id(decomp)]
                    decomp.skip_signature_inference = False
                    try:
                        decomp.__post_init__()
                    except Exception:  # noqa: BLE001 - as from_torchlib: log and leave the function out
                        _log.exception("Failed to register '%s'. Skipped", key)
                        continue
                kept.append(decomp)
            if kept:
                self.functions[key] = kept
            else:
                del self.functions[key]

        def get_decomps(self, target):
            self._settle(target.name() if isinstance(target, torch._ops.OpOverload) else target)
            return super().get_decomps(target)

    return LazyTorchlibRegistry


def lazy_torchlib_registry(opset_version: int | None = None) -> Any:
    """What ``ONNXRegistry.from_torchlib(opset_version)`` returns, less the signature inference of ops
    nobody looks up (see the module docstring)."""
    from onnxscript.function_libs.torch_lib import ops as _ops  # noqa: F401 - registers torchlib's functions
    from onnxscript.function_libs.torch_lib import registration as torchlib
    from torch.onnx._internal.exporter import _constants, _registration
    from torch.onnx._internal.exporter._torchlib import _torchlib_registry

    registry = _registry_class()()
    registry._opset_version = _constants.TORCHLIB_OPSET if opset_version is None else opset_version
    for meta in _torchlib_registry.get_torchlib_ops():  # torch's own few, inferred already
        registry._register(meta.fx_target, meta)
    # the walk of onnxscript's get_torchlib_ops (torch_2_5), without its function_ir per function
    for qualified_name, funcs in torchlib.default_registry.items():
        if qualified_name.startswith("internal::"):
            continue
        for func, is_complex in [(f, False) for f in funcs.overloads] + [(f, True) for f in funcs.complex]:
            try:
                target = _registration._get_overload(qualified_name)
                if target is None:
                    continue
                meta = _registration.OnnxDecompMeta(onnx_function=func, fx_target=target, signature=None,
                                                    is_custom=False, is_complex=is_complex,
                                                    skip_signature_inference=True)
                registry._register(target, meta)
                registry._pending[id(meta)] = meta
            except Exception:  # noqa: BLE001 - as from_torchlib
                _log.exception("Failed to register '%s'. Skipped", qualified_name)
    registry._cleanup_registry_based_on_opset_version()
    kept = {id(d) for decomps in registry.functions.values() for d in decomps}
    registry._pending = {i: d for i, d in registry._pending.items() if i in kept}
    return registry


@contextlib.contextmanager
def lazy_registry() -> Iterator[None]:
    """Within this context, torch.onnx's ``ONNXRegistry.from_torchlib`` builds :func:`lazy_torchlib_registry`."""
    try:
        from torch.onnx._internal.exporter import _registration
        original = _registration.ONNXRegistry.__dict__["from_torchlib"]
    except (ImportError, KeyError):  # another torch: its own registry
        yield
        return

    def from_torchlib(cls, opset_version=None):
        if cls is not _registration.ONNXRegistry:  # a subclass someone made: theirs to build
            return original.__func__(cls, *(() if opset_version is None else (opset_version,)))
        return lazy_torchlib_registry(opset_version)

    with _lock:
        _registration.ONNXRegistry.from_torchlib = classmethod(from_torchlib)
        try:
            yield
        finally:
            _registration.ONNXRegistry.from_torchlib = original
