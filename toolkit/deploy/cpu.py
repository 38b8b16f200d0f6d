"""Which int8 weight range is accurate on this CPU, for onnxruntime's u8 x s8 kernels.

onnxruntime runs int8 graphs (QLinearConv/QLinearMatMul from QDQ, MatMulInteger and
DynamicQuantizeMatMul from dynamic quantization) with uint8 activations times int8
weights. On x86 CPUs with AVX2 or AVX-512 but without VNNI, its MLAS kernels multiply
with VPMADDUBSW, which adds two u8 x s8 products into a *saturating int16*: 255 x 127 x 2
does not fit, so large activations times large weights are clipped. onnxruntime's
documented remedy is ``reduce_range=True`` (7-bit weights, [-64, 63]: the pair sum then
fits). CPUs with VNNI (AVX512_VNNI, AVX_VNNI, AMX) accumulate in int32 with VPDPBUSD and
lose nothing with full 8-bit weights, so there the 8th bit is free accuracy.

The decision is taken from the kernel itself, not from a flag list:
:func:`u8s8_saturates` runs one tiny MatMulInteger whose exact result needs more than
int16 and reports whether onnxruntime clipped it. That is right on any CPU, including
future ones and ones whose flags a list would miss (and under an emulator, where
``/proc/cpuinfo`` describes the host). :func:`cpu_info` records the CPU model and its
ISA (from CPUID, through numpy) beside the choice, for people reading the metadata.
"""
from __future__ import annotations

import functools
import platform
import warnings
from pathlib import Path
from typing import Any

__all__ = ["SCHEMES", "Int8SchemeWarning", "cpu_info", "u8s8_saturates", "resolve_scheme", "warn_if_saturating"]

#: ``auto`` picks by the CPU; ``full-range`` = 8-bit weights (VNNI/AMX/ARM CPUs);
#: ``reduced-range`` = 7-bit weights (AVX2/AVX-512 without VNNI).
SCHEMES = ("auto", "full-range", "reduced-range")

#: CPUID features worth recording (numpy's names) for int8 speed and accuracy
_ISA_KEYS = ("AVX2", "FMA3", "AVX512F", "AVX512BW", "AVX512VNNI", "AVX512_SPR", "ASIMD", "ASIMDDP")
#: int8 flags numpy does not name, read from /proc/cpuinfo (the host's, under an emulator)
_PROC_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


class Int8SchemeWarning(RuntimeWarning):
    """An int8 graph runs on a CPU where its weight range loses accuracy."""


def _numpy_cpu_features() -> dict[str, bool]:
    try:
        from numpy._core import _multiarray_umath as umath  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import _multiarray_umath as umath
    return dict(getattr(umath, "__cpu_features__", {}))


@functools.lru_cache(maxsize=1)
def cpu_info() -> dict[str, Any]:
    """The CPU model and its int8-relevant ISA features (information; the decision is :func:`u8s8_saturates`).

    Returns
    -------
    dict
        ``cpu`` (``/proc/cpuinfo``'s model name, else ``platform.processor()``), ``machine``,
        ``isa`` (CPUID features as numpy names them, e.g. ``["AVX2", "FMA3"]``: right under
        an emulator too) and ``proc_flags`` (``avx512_vnni``/``avx_vnni``/``amx_int8`` from
        ``/proc/cpuinfo``, which numpy does not name).
    """
    model = ""
    flags: list[str] = []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not model and line.startswith(("model name", "Model")):
                model = line.split(":", 1)[1].strip()
            elif not flags and line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
    except OSError:
        pass
    features = _numpy_cpu_features()
    return {"cpu": model or platform.processor() or platform.machine(), "machine": platform.machine(),
            "isa": [k for k in _ISA_KEYS if features.get(k)], "proc_flags": [f for f in _PROC_FLAGS if f in flags]}


@functools.lru_cache(maxsize=1)
def u8s8_saturates() -> bool:
    """Whether onnxruntime's u8 x s8 kernels clip at int16 on this CPU (True: use 7-bit weights).

    Runs ``MatMulInteger`` on 255 x 127 (u8 x s8) over 64 products: exact 2,072,640; an
    AVX2/AVX-512 kernel without VNNI returns 32 x 32,767 = 1,048,544. Takes milliseconds,
    once per process.
    """
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    m, k, n = 4, 64, 16
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "u8s8_probe",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k]),
         helper.make_tensor_value_info("b", TensorProto.INT8, [k, n])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [m, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), sess_options=options,
                                   providers=["CPUExecutionProvider"])
    a = np.full((m, k), 255, dtype=np.uint8)
    b = np.full((k, n), 127, dtype=np.int8)
    got = session.run(None, {"a": a, "b": b})[0]
    return bool((got != 255 * 127 * k).any())


def resolve_scheme(scheme: str = "auto") -> dict[str, Any]:
    """The weight range to quantize with, and why.

    Parameters
    ----------
    scheme : {"auto", "full-range", "reduced-range"}
        ``auto``: reduced-range where :func:`u8s8_saturates`, else full-range.

    Returns
    -------
    dict
        ``scheme`` (the range used), ``reduce_range`` (onnxruntime's flag), ``chosen_by``
        (``"auto"`` or ``"user"``) and ``quantized_on`` (:func:`cpu_info` plus the probe's answer).

    Raises
    ------
    ValueError
        ``scheme`` is not one of :data:`SCHEMES`.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"int8 scheme {scheme!r} is not one of {', '.join(SCHEMES)}")
    saturates = u8s8_saturates()
    if scheme == "auto":
        used = "reduced-range" if saturates else "full-range"
    else:
        used = scheme
    return {"scheme": used, "reduce_range": used == "reduced-range", "chosen_by": "auto" if scheme == "auto" else "user",
            "quantized_on": {**cpu_info(), "u8s8_saturates": saturates}}


def warn_if_saturating(metadata: dict[str, Any], where: str | Path = "") -> bool:
    """Warn when a full-range int8 graph is loaded on a CPU whose kernels clip it; True if warned.

    A graph quantized with 8-bit weights (on a VNNI CPU, or forced) loses accuracy on
    AVX2/AVX-512 CPUs without VNNI: requantize it there (``toolkit quantize --scheme auto``).
    Exports without int8 weights, or with 7-bit weights, never warn (no probe is run).
    """
    q = metadata.get("quantization")
    if not isinstance(q, dict) or q.get("reduce_range", True) or not u8s8_saturates():
        return False
    on = q.get("quantized_on", {}).get("cpu", "an unrecorded CPU")
    here = cpu_info()
    warnings.warn(
        f"{where or 'this int8 graph'} has full-range (8-bit) weights, quantized on {on}; this CPU ({here['cpu']}, "
        f"{'/'.join(here['isa']) or 'no AVX2'}) has no VNNI, so onnxruntime's u8 x s8 kernels saturate int16 sums "
        "and the outputs drift (a small BERT: 6.4% instead of 1.3% with 7-bit weights). Requantize on this CPU with "
        "`toolkit quantize --scheme auto` (or --scheme reduced-range).",
        Int8SchemeWarning,
        stacklevel=3,
    )
    return True
