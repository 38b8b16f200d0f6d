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
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCHEMES = ("full-range", "reduced-range")


def _text_cases(work: Path) -> list[dict]:
    import numpy as np

    sys.path.insert(0, str(REPO / "tests" / "deploy"))
    import _text_fixtures as fx

    from toolkit.deploy import quantize
    from toolkit.deploy._emulation import record_calls, save_calls
    from toolkit.deploy.predict import predict

    inputs = fx.text_inputs(work)
    cases = []
    for name, export in (("bert", fx.export_bert_classifier), ("transformer", fx.export_transformer)):
        prefix = export(work / name)
        calls = record_calls(prefix, lambda: predict(prefix, [inputs]))
        if name == "transformer":  # first decoding step of each line: tgt = [bos], logits (1, 1, V)
            calls = [c for c in calls if c[1].shape[1] == 1]
        case = save_calls(work, name, calls)
        graphs = {}
        for scheme in SCHEMES:
            out = work / f"{name}-{scheme}"
            quantize(prefix, out=out, scheme=scheme, latency_repeats=1)
            graphs[scheme] = out.name + ".onnx"
        cases.append({**case, "kind": "rows" if name == "bert" else "first_step", "graphs": graphs})
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
    return {"name": "tiny", "kind": "rows", "calls": 1, "inputs": "tiny-inputs.npz",
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
    np.savez(work / "zoo-refs.npz", fp32_pred=pred, labels=labels[:n])
    graphs = {}
    for scheme in SCHEMES:
        out = work / f"zoo-{scheme}"
        quantize(prefix, calib="fashion-mnist", num_calib_batches=16, batch_size=32, calib_mode="naive",
                 exclude_first_last=True, out=out, scheme=scheme, latency_repeats=1)
        graphs[scheme] = out.name + ".onnx"
    return {"name": f"{metrics['model']} fashion-mnist", "kind": "labels", "inputs": "zoo-inputs.npz",
            "refs": "zoo-refs.npz", "graphs": graphs, "weights_sha256": metrics.get("sha256")}


def _cpu_line(cpu: dict[str, Any]) -> str:
    return f"{cpu['cpu']} (CPUID: {', '.join(cpu['isa']) or 'no AVX2'})"


def markdown(r: dict[str, Any]) -> str:
    nat = r["native_cpu"]
    emu = r.get("emulated")
    lines = [
        "# int8 weight range per CPU: full-range (8-bit) vs reduced-range (7-bit) weights", "",
        f"Generated by `benchmarks/int8_schemes.py` on {r['date']} UTC. Command: `{r['command']}`", "",
        f"* **native**: {_cpu_line(nat)}; onnxruntime's u8 x s8 kernels "
        f"{'saturate int16 sums' if nat['u8s8_saturates'] else 'accumulate exactly (VNNI)'}; "
        f"`--scheme auto` picks {'reduced' if nat['u8s8_saturates'] else 'full'}-range here.",
    ]
    if emu:
        lines.append(
            f"* **emulated AVX2**: QEMU user mode `-cpu {emu['qemu_cpu']}` on the machine above (an AMD EPYC model: "
            f"CPUID {', '.join(emu['cpu']['isa'])}, no AVX-512, no VNNI); onnxruntime there saturates "
            f"(checked: {emu['u8s8_saturates']}); `--scheme auto` picks {emu['auto_scheme']}. Same graphs, same "
            "inputs; these are emulated numbers (the kernels' arithmetic), not a native AMD run.")
    else:
        lines.append("* emulated AVX2: not run (qemu-x86_64 missing).")
    lines += ["", "Text: max |int8 - fp32| / max |fp32| over the 12 test lines (Transformer: first decoding step), "
              "tests/deploy/_text_fixtures.py exports. tiny: the tests' random-weight image model on 5 photos.", "",
              "| graph | scheme | native | emulated AVX2 |", "|---|---|---:|---:|"]
    for key, value in r["native"]["results"].items():
        name, scheme = key.rsplit("/", 1)
        e = emu["results"].get(key) if emu else None
        if "max_rel_drift" in value:
            lines.append(f"| {name} | {scheme} | {value['max_rel_drift'] * 100:.2f}% | "
                         f"{'%.2f%%' % (e['max_rel_drift'] * 100) if e else '-'} |")
    zoo = [k for k, v in r["native"]["results"].items() if "agreement" in v]
    if zoo:
        lines += ["", "Zoo Fashion-MNIST model (naive calibration, 16 x 32 training images, first/last layer float): "
                  "int8 top-1 agreement with fp32 and int8 top-1.", "",
                  "| model | scheme | CPU | test images | fp32 top-1 | int8 top-1 | int8 = fp32 top-1 |",
                  "|---|---|---|---:|---:|---:|---:|"]
        rows = [("native", r["native"]["results"]), ("native", r.get("native_zoo_subset") or {}),
                ("emulated AVX2", emu["results"] if emu else {})]
        for key in zoo:
            name, scheme = key.rsplit("/", 1)
            for where, results in rows:
                v = results.get(key)
                if v:
                    lines.append(f"| {name} | {scheme} | {where} | {v['samples']} | {v['fp32_top1'] * 100:.2f}% | "
                                 f"{v['int8_top1'] * 100:.2f}% | {v['agreement'] * 100:.2f}% |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="folder for int8_schemes.json / .md (default: print only)")
    parser.add_argument("--num-val", type=int, default=None, help="zoo model: first N test images (default all)")
    parser.add_argument("--emulated-num-val", type=int, default=2000,
                        help="zoo model under emulation: first N test images (TCG is ~50x slower)")
    parser.add_argument("--skip", nargs="*", default=[], choices=("text", "tiny", "zoo"))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from toolkit.deploy._emulation import qemu, run_cases, run_emulated
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
        if qemu() is None:
            result["emulated"] = None
            print("qemu-x86_64 not found: no emulated AVX2 numbers", file=sys.stderr)
        else:
            if zoo and args.emulated_num_val:
                import numpy as np

                d, r = np.load(work / zoo["inputs"]), dict(np.load(work / zoo["refs"]))
                n = args.emulated_num_val
                np.savez(work / "zoo-inputs-emu.npz", x=d["x"][:n])
                np.savez(work / "zoo-refs-emu.npz", fp32_pred=r["fp32_pred"][:n], labels=r["labels"][:n])
                zoo.update(inputs="zoo-inputs-emu.npz", refs="zoo-refs-emu.npz")
                (work / "cases.json").write_text(json.dumps(cases))
                # the same subset natively, for a like-for-like comparison
                result["native_zoo_subset"] = {k: v for k, v in run_cases(work)["results"].items()
                                               if k.startswith(zoo["name"])}
            result["emulated"] = run_emulated(work)  # raises unless onnxruntime there saturates (AVX2 kernels)
    text = json.dumps(result, indent=2)
    print(markdown(result))
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "int8_schemes.json").write_text(text + "\n")
        (Path(args.out) / "int8_schemes.md").write_text(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
