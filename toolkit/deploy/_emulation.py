"""Run int8 graphs as an AVX2 CPU without VNNI would, under QEMU user-mode emulation.

Used by the int8 tests and ``benchmarks/int8_schemes.py`` to measure, on any x86 machine,
what onnxruntime's u8 x s8 kernels give on an AMD EPYC-class CPU (AVX2 + FMA, no AVX-512,
no VNNI): ``qemu-x86_64 -cpu EPYC-Rome`` runs this file with the same Python; onnxruntime
reads the emulated CPUID and dispatches its AVX2 kernels (the child checks that it really
does, with :func:`toolkit.deploy.cpu.u8s8_saturates`). The child imports only numpy, onnx
and onnxruntime (torch under TCG would take minutes), loading ``cpu.py`` by path.

Case folder layout (``cases.json``, a list of objects):

* ``kind``: ``"rows"`` (compare every output row), ``"first_step"`` (row ``[0, 0]`` of a
  ``(1, T, V)`` output) or ``"labels"`` (argmax agreement and top-1);
* ``graphs``: ``{label: onnx file}``; ``inputs``/``refs``: ``.npz`` files. For rows and
  first_step, ``inputs`` holds ``"{call}:{input name}"`` arrays and ``refs`` the fp32 output
  ``"{call}"``; for labels, ``inputs`` holds ``x`` and ``refs`` ``fp32_pred``, ``labels``.

Emulation measures arithmetic, not speed (TCG is ~50x slower than the host).
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

#: QEMU's model of an AMD EPYC 7002: AVX2, FMA, no AVX-512, no VNNI
EMULATED_CPU = "EPYC-Rome"


def _cpu_module():
    spec = importlib.util.spec_from_file_location("_toolkit_cpu", Path(__file__).with_name("cpu.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_cases(work: str | os.PathLike) -> dict[str, Any]:
    """Run every graph of ``work/cases.json`` on its recorded inputs (numpy + onnxruntime only)."""
    import numpy as np
    import onnxruntime as ort

    work = Path(work)
    cpu = _cpu_module()
    out: dict[str, Any] = {"cpu": cpu.cpu_info(), "u8s8_saturates": cpu.u8s8_saturates(),
                           "auto_scheme": cpu.resolve_scheme("auto")["scheme"], "results": {}}
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    for case in json.loads((work / "cases.json").read_text()):
        data, refs = np.load(work / case["inputs"]), np.load(work / case["refs"])
        for label, graph in case["graphs"].items():
            sess = ort.InferenceSession(str(work / graph), sess_options=options, providers=["CPUExecutionProvider"])
            names = [i.name for i in sess.get_inputs()]
            key = f"{case['name']}/{label}"
            if case["kind"] == "labels":
                x = data["x"]
                pred = np.concatenate([sess.run(None, {names[0]: x[s:s + 256]})[0].argmax(axis=1)
                                       for s in range(0, len(x), 256)])
                out["results"][key] = {"samples": int(len(pred)),
                                       "agreement": float((pred == refs["fp32_pred"]).mean()),
                                       "int8_top1": float((pred == refs["labels"]).mean()),
                                       "fp32_top1": float((refs["fp32_pred"] == refs["labels"]).mean())}
                continue
            drift = []
            for i in range(case["calls"]):
                got = np.asarray(sess.run(None, {n: data[f"{i}:{n}"] for n in names})[0], dtype=np.float64)
                ref = refs[str(i)].astype(np.float64)
                if case["kind"] == "first_step":
                    got, ref = got[0, 0][None], ref[0, 0][None]
                got, ref = got.reshape(ref.shape[0], -1), ref.reshape(ref.shape[0], -1)
                drift.extend((np.abs(got - ref).max(axis=1) / np.abs(ref).max(axis=1)).tolist())
            out["results"][key] = {"rows": len(drift), "max_rel_drift": float(max(drift)),
                                   "median_rel_drift": float(np.median(drift))}
    return out


def qemu() -> str | None:
    """Path of ``qemu-x86_64`` when it can emulate this machine (x86-64 Linux), else None."""
    import platform

    return shutil.which("qemu-x86_64") if platform.machine() in ("x86_64", "AMD64") else None


def run_emulated(work: str | os.PathLike, cpu: str = EMULATED_CPU, timeout: float | None = None) -> dict[str, Any]:
    """:func:`run_cases` in a child process under ``qemu-x86_64 -cpu CPU``.

    Raises
    ------
    RuntimeError
        QEMU is missing, the child failed, or onnxruntime did not dispatch the saturating
        AVX2 kernels there (then the numbers would not be those of an AVX2 CPU).
    """
    binary = qemu()
    if binary is None:
        raise RuntimeError("qemu-x86_64 is not installed (Debian: apt-get install qemu-user)")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # sys.executable as is (not its realpath): in a virtual environment the link's path is what finds the venv
    done = subprocess.run([binary, "-cpu", cpu, sys.executable, __file__, str(work)],
                          capture_output=True, text=True, env=env, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"emulated run failed (exit {done.returncode}): {done.stderr[-2000:]}")
    result = {"qemu_cpu": cpu, **json.loads(done.stdout.strip().splitlines()[-1])}
    if not result["u8s8_saturates"]:
        raise RuntimeError(f"onnxruntime under qemu -cpu {cpu} does not saturate: its AVX2 kernels did not run")
    return result


def record_calls(prefix: str | os.PathLike, fn: Callable[[], Any]) -> list[tuple[dict, Any]]:
    """Call ``fn()`` and return each ``(feed, first output)`` the onnxruntime block of ``prefix`` ran."""
    import numpy as np

    from . import runtime

    calls: list[tuple[dict, Any]] = []
    original = runtime.ExportedBlock.__call__

    def spy(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        if Path(self.prefix) == Path(prefix):
            feed, _ = self._feed(args, kwargs)
            calls.append((feed, np.asarray(result[0] if isinstance(result, tuple) else result)))
        return result

    runtime.ExportedBlock.__call__ = spy
    try:
        fn()
    finally:
        runtime.ExportedBlock.__call__ = original
    return calls


def save_calls(work: Path, name: str, calls: list[tuple[dict, Any]]) -> dict[str, Any]:
    """Write recorded calls as a case's ``inputs``/``refs`` files; returns the case without graphs."""
    import numpy as np

    np.savez(work / f"{name}-inputs.npz", **{f"{i}:{k}": v for i, (feed, _) in enumerate(calls) for k, v in feed.items()})
    np.savez(work / f"{name}-refs.npz", **{str(i): out for i, (_, out) in enumerate(calls)})
    return {"name": name, "calls": len(calls), "inputs": f"{name}-inputs.npz", "refs": f"{name}-refs.npz"}


if __name__ == "__main__":
    print(json.dumps(run_cases(sys.argv[1])))
