"""int8 accuracy of each weight range (8-bit vs 7-bit) on this CPU and on an emulated AVX2 CPU.

onnxruntime's u8 x s8 kernels saturate int16 sums on AVX2/AVX-512 CPUs without VNNI
(see toolkit/deploy/cpu.py). This script measures what that costs, for both schemes of
``toolkit quantize --scheme``:

* the tests' text exports (tests/deploy/_text_fixtures.py): BERT classifier logits and the
  Transformer's first-step logits, int8 vs fp32, max |difference| / max |fp32| per input
  line (the quantity tests/nlp/test_deploy_text.py bounds);
* the zoo's Fashion-MNIST model (``model_zoo_logs/classification/*fashion-mnist*``): int8
  top-1 agreement with fp32 and int8 top-1 on the test set (naive calibration, 16 x 32
  training images, first/last layer float: the settings of tests/deploy/test_quantize.py);
* the tests' tiny random-weight image model: max |int8 - fp32| / max |fp32| on the 3 photos.

Every graph is quantized once, natively. It is then run (1) natively and (2) when
``qemu-x86_64`` is installed, under QEMU user-mode emulation of an AMD EPYC-Rome CPU (AVX2,
FMA, no AVX-512, no VNNI): a child process that imports only numpy and onnxruntime runs the
same int8 graphs on the same recorded inputs. The child first checks that onnxruntime there
really clips (:func:`toolkit.deploy.cpu.u8s8_saturates`-style probe), so the emulated numbers
come from the AVX2 kernels. Emulated numbers are labelled as such; they measure the kernels'
arithmetic, not speed.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/int8_schemes.py --out model_zoo_logs/quantization
"""
from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCHEMES = ("full-range", "reduced-range")
EMULATED_CPU = "EPYC-Rome"


# ----------------------------------------------------------------------------- child (numpy + onnxruntime only)
def _probe_saturates(ort, np) -> bool:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "p",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [4, 64]),
         helper.make_tensor_value_info("b", TensorProto.INT8, [64, 16])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [4, 16])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"a": np.full((4, 64), 255, np.uint8), "b": np.full((64, 16), 127, np.int8)})[0]
    return bool((got != 255 * 127 * 64).any())


def run_cases(work: Path) -> dict[str, Any]:
    """Run every int8 graph of ``work/cases.json`` on its recorded inputs; numpy + onnxruntime only."""
    import numpy as np
    import onnxruntime as ort

    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # pragma: no cover
        from numpy.core import _multiarray_umath as umath
    feats = [k for k in ("AVX2", "FMA3", "AVX512F", "AVX512VNNI") if umath.__cpu_features__.get(k)]
    cases = json.loads((work / "cases.json").read_text())
    out: dict[str, Any] = {"cpuid_isa": feats, "u8s8_saturates": _probe_saturates(ort, np), "results": {}}
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    for case in cases:
        data = np.load(work / case["inputs"])
        refs = np.load(work / case["refs"])
        for scheme, graph in case["graphs"].items():
            sess = ort.InferenceSession(str(work / graph), sess_options=options, providers=["CPUExecutionProvider"])
            names = [i.name for i in sess.get_inputs()]
            if case["kind"] == "labels":
                pred = []
                x = data["x"]
                for start in range(0, len(x), 256):
                    pred.append(sess.run(None, {names[0]: x[start:start + 256]})[0].argmax(axis=1))
                pred = np.concatenate(pred)
                out["results"][f"{case['name']}/{scheme}"] = {
                    "samples": int(len(pred)), "agreement": float((pred == refs["fp32_pred"]).mean()),
                    "int8_top1": float((pred == refs["labels"]).mean()), "fp32_top1": float(refs["fp32_top1"])}
            else:
                worst = []
                for i in range(case["calls"]):
                    feed = {n: data[f"{i}:{n}"] for n in names}
                    got = np.asarray(sess.run(None, feed)[case["output"]], dtype=np.float64)
                    ref = refs[str(i)].astype(np.float64)
                    got = got.reshape(ref.shape[0], -1) if case["kind"] == "rows" else got[0, 0][None]
                    ref = ref.reshape(ref.shape[0], -1) if case["kind"] == "rows" else ref[0, 0][None]
                    worst.extend((np.abs(got - ref).max(axis=1) / np.abs(ref).max(axis=1)).tolist())
                out["results"][f"{case['name']}/{scheme}"] = {"rows": len(worst), "max_rel_drift": max(worst),
                                                              "median_rel_drift": float(np.median(worst))}
    return out


# ----------------------------------------------------------------------------- parent (torch, toolkit)
def _record_calls(prefix: Path, fn) -> list[tuple[dict, Any]]:
    """Run ``fn()`` and return every (feed, outputs) the ExportedBlock of ``prefix`` saw."""
    from toolkit.deploy import runtime

    calls = []
    original = runtime.ExportedBlock.__call__

    def spy(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        if Path(self.prefix) == Path(prefix):
            feed, _ = self._feed(args, kwargs)
            first = result[0] if isinstance(result, tuple) else result
            calls.append((feed, __import__("numpy").asarray(first)))
        return result

    runtime.ExportedBlock.__call__ = spy
    try:
        fn()
    finally:
        runtime.ExportedBlock.__call__ = original
    return calls


def _text_cases(work: Path) -> list[dict]:
    import numpy as np

    sys.path.insert(0, str(REPO / "tests" / "deploy"))
    import _text_fixtures as fx

    from toolkit.deploy import quantize
    from toolkit.deploy.predict import predict

    inputs = fx.text_inputs(work)
    cases = []
    for name, export in (("bert", fx.export_bert_classifier), ("transformer", fx.export_transformer)):
        prefix = export(work / name)
        calls = _record_calls(prefix, lambda: predict(prefix, [inputs], with_logits=True))
        if name == "transformer":  # first decoding step of each line: tgt = [bos]
            calls = [c for c in calls if c[0]["tgt_ids" if "tgt_ids" in c[0] else list(c[0])[-1]].shape[-1] == 1]
        feeds = {f"{i}:{k}": v for i, (feed, _) in enumerate(calls) for k, v in feed.items()}
        np.savez(work / f"{name}-inputs.npz", **feeds)
        np.savez(work / f"{name}-refs.npz", **{str(i): out for i, (_, out) in enumerate(calls)})
        graphs = {}
        for scheme in SCHEMES:
            out = work / f"{name}-{scheme}"
            quantize(prefix, out=out, scheme=scheme, latency_repeats=1)
            graphs[scheme] = out.name + ".onnx"
        cases.append({"name": name, "kind": "rows" if name == "bert" else "first_step", "calls": len(calls),
                      "output": 0, "inputs": f"{name}-inputs.npz", "refs": f"{name}-refs.npz", "graphs": graphs})
    return cases


def _tiny_case(work: Path) -> dict:
    import numpy as np

    sys.path.insert(0, str(REPO / "tests" / "deploy"))
    import _deploy_helpers as h

    from toolkit.deploy import load, quantize
    from toolkit.deploy.preprocess import preprocess_image

    import torch

    torch.manual_seed(0)  # the tests' tiny_export fixture
    prefix = work / "tiny"
    h.TinyNet().export(prefix)
    photos = [h.skimage_photo(n) for n in h.PHOTOS]
    calib = work / "tiny-calib"
    calib.mkdir()
    for p in photos:
        shutil.copy(p, calib / Path(p).name)
    meta = load(prefix).metadata
    batch = np.stack([preprocess_image(p, meta, [3, 32, 32]) for p in photos])
    np.savez(work / "tiny-inputs.npz", **{f"0:{meta['inputs'][0]['name']}": batch})
    np.savez(work / "tiny-refs.npz", **{"0": load(prefix)(batch)})
    graphs = {}
    for scheme in SCHEMES:
        out = work / f"tiny-{scheme}"
        quantize(prefix, calib=str(calib), num_calib_batches=2, batch_size=2, out=out, scheme=scheme, latency_repeats=1)
        graphs[scheme] = out.name + ".onnx"
    return {"name": "tiny", "kind": "rows", "calls": 1, "output": 0, "inputs": "tiny-inputs.npz",
            "refs": "tiny-refs.npz", "graphs": graphs}


def _zoo_case(work: Path, num_val: int | None) -> dict | None:
    import numpy as np

    from toolkit.deploy import load, quantize
    from toolkit.deploy.cli import main as cli
    from toolkit.deploy.preprocess import ImagePreprocessing
    from toolkit.deploy.quantize import _batches, labelled_source

    found = sorted(glob.glob(str(REPO / "model_zoo_logs/classification/*fashion-mnist*/metrics.json")))
    found.sort(key=lambda p: "cifar_resnet20_v1" not in p)
    if not found:
        return None
    metrics = json.loads(Path(found[0]).read_text())
    prefix = work / "zoo"
    if cli(["export", str(Path(found[0]).parent / metrics["weights"]), "--out", str(prefix)]) != 0:
        raise SystemExit("cannot export the zoo model")
    meta = load(prefix).metadata
    count, get, labels = labelled_source("fashion-mnist")
    n = count if num_val is None else min(count, num_val)
    x = np.concatenate(list(_batches(count, get, ImagePreprocessing.from_metadata(meta), meta["inputs"][0]["shape"][1:],
                                     256, n)))
    fp32 = load(prefix)
    pred = np.concatenate([fp32(x[s:s + 256]).argmax(axis=1) for s in range(0, n, 256)])
    np.savez(work / "zoo-inputs.npz", x=x)
    np.savez(work / "zoo-refs.npz", fp32_pred=pred, labels=labels[:n], fp32_top1=(pred == labels[:n]).mean())
    graphs = {}
    for scheme in SCHEMES:
        out = work / f"zoo-{scheme}"
        quantize(prefix, calib="fashion-mnist", num_calib_batches=16, batch_size=32, calib_mode="naive",
                 exclude_first_last=True, out=out, scheme=scheme, latency_repeats=1)
        graphs[scheme] = out.name + ".onnx"
    return {"name": f"{metrics['model']} fashion-mnist", "kind": "labels", "inputs": "zoo-inputs.npz",
            "refs": "zoo-refs.npz", "graphs": graphs, "weights_sha256": metrics.get("sha256")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="folder for int8_schemes.json / .md (default: print only)")
    parser.add_argument("--num-val", type=int, default=None, help="zoo model: first N test images (default all)")
    parser.add_argument("--emulated-num-val", type=int, default=2000,
                        help="zoo model under emulation: first N test images (TCG is ~50x slower)")
    parser.add_argument("--skip", nargs="*", default=[], choices=("text", "tiny", "zoo"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # child mode: a work folder
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_cases(Path(args.worker))))
        return 0
    sys.path.insert(0, str(REPO))
    from toolkit.deploy.cpu import cpu_info, u8s8_saturates

    result: dict[str, Any] = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
                              "command": "python benchmarks/int8_schemes.py " + " ".join(argv or sys.argv[1:]),
                              "native_cpu": {**cpu_info(), "u8s8_saturates": u8s8_saturates()}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cases = []
        if "text" not in args.skip:
            cases += _text_cases(work)
        if "tiny" not in args.skip:
            cases.append(_tiny_case(work))
        zoo = None if "zoo" in args.skip else _zoo_case(work, args.num_val)
        if zoo:
            cases.append(zoo)
        (work / "cases.json").write_text(json.dumps(cases))
        result["native"] = run_cases(work)
        qemu = shutil.which("qemu-x86_64")
        if qemu is None:
            result["emulated"] = None
            print("qemu-x86_64 not found: no emulated AVX2 numbers", file=sys.stderr)
        else:
            if zoo and args.emulated_num_val:
                import numpy as np

                d, r = np.load(work / zoo["inputs"]), dict(np.load(work / zoo["refs"]))
                n = args.emulated_num_val
                np.savez(work / "zoo-inputs-emu.npz", x=d["x"][:n])
                np.savez(work / "zoo-refs-emu.npz", fp32_pred=r["fp32_pred"][:n], labels=r["labels"][:n],
                         fp32_top1=(r["fp32_pred"][:n] == r["labels"][:n]).mean())
                zoo.update(inputs="zoo-inputs-emu.npz", refs="zoo-refs-emu.npz")
                (work / "cases.json").write_text(json.dumps(cases))
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            done = subprocess.run([qemu, "-cpu", EMULATED_CPU, os.path.realpath(sys.executable), __file__,
                                   "--worker", str(work)], capture_output=True, text=True, env=env)
            if done.returncode != 0:
                raise SystemExit(f"emulated run failed: {done.stderr[-2000:]}")
            result["emulated"] = {"qemu_cpu": EMULATED_CPU, **json.loads(done.stdout.strip().splitlines()[-1])}
            if not result["emulated"]["u8s8_saturates"]:
                raise SystemExit("onnxruntime under emulation does not saturate: it did not dispatch AVX2 kernels")
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "int8_schemes.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
