"""Deployment benchmark: eager PyTorch vs onnxruntime vs OpenVINO, fp32 and int8, side by side.

For each model (random weights are fine for speed) it measures, in one run and
with the same thread count everywhere:

* latency at batch 1 (median of interleaved runs, ms) and
* throughput at batch 32 (median of interleaved runs, images/s)

of eager PyTorch fp32, onnxruntime fp32, OpenVINO fp32, onnxruntime int8 and
OpenVINO int8 (the same QDQ graph from ``toolkit.deploy.quantize``), and the
ratio of each to eager fp32. When the zoo's Fashion-MNIST model is published
(``model_zoo_logs/classification/*fashion-mnist*/metrics.json``), it also
reports its fp32 and int8 top-1 on the Fashion-MNIST test set.

Usage::

    OMP_WAIT_POLICY=PASSIVE nice -n 10 python benchmarks/deploy.py \
        --models resnet50_v1 mobilenetv3_large --threads 2 \
        --out model_zoo_logs/quantization

writes ``benchmark.md`` (table with hardware and date) and ``benchmark.json``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

RUNTIMES = ("eager fp32", "onnxruntime fp32", "openvino fp32", "onnxruntime int8", "openvino int8")


def hardware() -> dict[str, Any]:
    """The CPU (model, int8-relevant ISA from /proc/cpuinfo), whether its u8 x s8 kernels saturate, the load."""
    from toolkit.deploy.cpu import cpu_info, u8s8_saturates

    info: dict[str, Any] = {"machine": platform.machine(), "cores": os.cpu_count()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
        info["isa"] = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    except OSError:
        pass
    info["cpu"] = cpu_info()["cpu"]
    info["u8s8_saturates"] = u8s8_saturates()
    info["load_average"] = list(os.getloadavg())
    return info


def cpu_label(hw: dict[str, Any]) -> str:
    return f"{hw.get('cpu')} ({', '.join(hw.get('isa', [])) or 'ISA not recorded'})"


def versions() -> dict[str, str]:
    import onnxruntime
    import openvino

    return {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "openvino": openvino.__version__,
            "python": platform.python_version()}


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each function, calls interleaved so load changes hit all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def calibration_folder(root: Path) -> Path:
    """Real photos for calibration: the PNG/JPEG images shipped in scikit-image's wheel."""
    import skimage

    folder = root / "calib"
    folder.mkdir(parents=True, exist_ok=True)
    data = Path(skimage.__file__).parent / "data"
    for name in ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "rocket.jpg", "camera.png",
                 "horse.png", "color.png"):
        if (data / name).is_file():
            shutil.copy(data / name, folder / name)
    return folder


def bench_model(name: str, work: Path, threads: int, repeats: int, batch: int, calib: Path) -> dict[str, Any]:
    from toolkit.deploy import load, load_openvino, quantize
    from toolkit.zoo import get_model

    torch.manual_seed(0)
    model = get_model(name).eval()
    prefix = work / name
    start = time.perf_counter()
    model.export(prefix)
    export_s = time.perf_counter() - start
    report = quantize(prefix, calib=str(calib), num_calib_batches=2, batch_size=4, calib_mode="naive",
                      num_threads=threads, latency_repeats=3)  # scheme auto: the weight range for this CPU
    int8 = report["out"]
    shape = model.metadata["input_shape"]
    ort32, ort8 = load(prefix, num_threads=threads), load(int8, num_threads=threads)
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"model": name, "input_shape": shape, "export_s": round(export_s, 1)}
    for label, n, reps in (("latency_ms_b1", 1, repeats * 4), (f"throughput_ips_b{batch}", batch, repeats)):
        x = rng.standard_normal((n, *shape)).astype(np.float32)
        xt = torch.from_numpy(x)
        # OpenVINO compiled for the static batch size: it runs static shapes faster than dynamic ones
        ov32 = load_openvino(prefix, num_threads=threads, batch_size=n, performance_hint="LATENCY")
        ov8 = load_openvino(int8, num_threads=threads, batch_size=n, performance_hint="LATENCY")

        def eager():
            with torch.inference_mode():
                model(xt)

        fns = {
            "eager fp32": eager,
            "onnxruntime fp32": lambda: ort32(x),
            "openvino fp32": lambda ov32=ov32: ov32(x),
            "onnxruntime int8": lambda: ort8(x),
            "openvino int8": lambda ov8=ov8: ov8(x),
        }
        med = interleaved(fns, reps)
        if n == 1:
            out[label] = {k: round(v * 1e3, 3) for k, v in med.items()}
        else:
            out[label] = {k: round(n / v, 2) for k, v in med.items()}
        base = med["eager fp32"]
        out[label.split("_")[0] + "_speedup_vs_eager"] = {k: round(base / v, 2) for k, v in med.items()}
    return out


def _export_training_checkpoint(ckpt: Path, model: str, prefix: Path) -> dict[str, Any]:
    """Export an intermediate ``.pt`` checkpoint of a Fashion-MNIST training run (no metadata inside)."""
    from toolkit.cv import presets
    from toolkit.cv.data import FashionMNIST
    from toolkit.deploy.cli import build_model

    block = build_model(str(ckpt), model_name=model, classes=10, in_channels=1, input_size=[1, 28, 28])
    block.metadata.update(preprocessing=presets.preprocessing_metadata("fashion-mnist", crop=28),
                          classes=list(FashionMNIST.classes))
    block.export(prefix)
    epoch = torch.load(str(ckpt), map_location="cpu", weights_only=True).get("epoch")
    return {"model": model, "weights_sha256": None, "published_top1": None,
            "log": f"PROVISIONAL: intermediate checkpoint {ckpt} (epoch {epoch}), not the published zoo model"}


def zoo_accuracy(work: Path, threads: int, checkpoint: str | None = None, checkpoint_model: str | None = None
                 ) -> dict[str, Any] | None:
    """fp32 vs int8 top-1 of the zoo's Fashion-MNIST model (or, if unpublished, of a given training checkpoint)."""
    found = sorted(glob.glob(str(REPO / "model_zoo_logs/classification/*fashion-mnist*/metrics.json")))
    from toolkit.deploy import quantize
    from toolkit.deploy.cli import main as cli

    prefix = work / "fashion_mnist"
    if found:
        metrics = json.loads(Path(found[0]).read_text())
        weights = Path(found[0]).parent / metrics["weights"]
        if cli(["export", str(weights), "--out", str(prefix)]) != 0:
            raise SystemExit(f"cannot export {weights}")
        info = {"model": metrics.get("model"), "weights_sha256": metrics.get("sha256"),
                "published_top1": metrics.get("top1"), "log": str(Path(found[0]).parent.relative_to(REPO))}
    elif checkpoint:
        info = _export_training_checkpoint(Path(checkpoint), checkpoint_model or "cifar_resnet20_v1", prefix)
    else:
        return None
    from toolkit.deploy.cpu import resolve_scheme

    auto = resolve_scheme("auto")["scheme"]
    other = "reduced-range" if auto == "full-range" else "full-range"
    rows = {}
    # every calibration mode with the scheme auto picks here, and the other weight range once for contrast
    for mode, exclude, scheme in (("naive", False, "auto"), ("naive", True, "auto"), ("entropy", True, "auto"),
                                  ("percentile", True, "auto"), ("naive", True, other)):
        r = quantize(prefix, calib="fashion-mnist", num_calib_batches=16, batch_size=32, calib_mode=mode,
                     exclude_first_last=exclude, val="fashion-mnist", num_threads=threads, scheme=scheme,
                     out=work / f"fashion_mnist-{mode}-{exclude}-{scheme}", latency_repeats=20)
        key = mode + (" + first/last float" if exclude else "") + (f", {scheme} forced" if scheme != "auto" else "")
        rows[key] = {"scheme": r["scheme"], "chosen_by": r["chosen_by"], "fp32_top1": r["accuracy"]["fp32_top1"],
                     "int8_top1": r["accuracy"]["int8_top1"], "agreement": r["accuracy"]["int8_agreement"],
                     "latency_ms": r["latency_ms"]}
    return {**info, "by_calib_mode": rows}


def markdown(result: dict[str, Any]) -> str:
    hw = result["hardware"]
    lines = [
        "# Deployment benchmark: eager PyTorch vs onnxruntime vs OpenVINO, fp32 and int8",
        "",
        f"Generated by `benchmarks/deploy.py` on {result['date']} UTC. Command: `{result['command']}`",
        "",
        "## Speed", "",
        f"Hardware: {hw.get('cpu')} ({hw['cores']} logical cores, ISA {', '.join(hw.get('isa', []))}); "
        f"{result['threads']} threads for every runtime; load average before/after "
        f"{', '.join(f'{v:.1f}' for v in hw['load_average'])} / {', '.join(f'{v:.1f}' for v in result['load_after'])}"
        " (the machine was shared with other jobs: absolute numbers are noisy, ratios come from interleaved runs).",
        f"Versions: {', '.join(f'{k} {v}' for k, v in result['versions'].items())}.",
        "int8: onnxruntime static QDQ (per-channel int8 weights, uint8 activations, min/max calibration on 8 "
        "scikit-image photos); OpenVINO runs the same QDQ graph, compiled for the static batch size with "
        "the LATENCY hint. Random weights (speed only). Weight range: "
        + (f"{result['speed_scheme']} (`--scheme auto` on this CPU)." if result.get("speed_scheme") else
           "full-range 8-bit (the default before `--scheme`)."),
        "",
    ]
    b = result["batch"]
    for m in result["models"]:
        lines += [f"### {m['model']} (input {m['input_shape']})", "",
                  f"| runtime | latency b1 (ms) | vs eager | throughput b{b} (img/s) | vs eager |",
                  "|---|---:|---:|---:|---:|"]
        for rt in RUNTIMES:
            lines.append(
                f"| {rt} | {m['latency_ms_b1'][rt]:.2f} | {m['latency_speedup_vs_eager'][rt]:.2f}x | "
                f"{m[f'throughput_ips_b{b}'][rt]:.1f} | {m['throughput_speedup_vs_eager'][rt]:.2f}x |"
            )
        lines.append("")
    lines.append("## int8 accuracy on the zoo's Fashion-MNIST model (test set, 10,000 images)")
    lines.append("")
    lines += ["Each table names the CPU it ran on: onnxruntime's u8 x s8 int8 kernels saturate int16 sums on AVX2 / "
              "AVX-512 CPUs without VNNI, so the weight range (`--scheme`: full-range 8-bit or reduced-range 7-bit) "
              "that is accurate depends on it. Emulated AVX2 numbers (QEMU EPYC-Rome) for both weight ranges: "
              "[int8_schemes.md](int8_schemes.md). The latency column was measured under load (the machine ran "
              "other jobs): do not compare it across tables.", ""]
    runs = [result] + list(result.get("earlier_accuracy", []))
    for run in runs:
        acc = run.get("zoo_accuracy")
        where = run.get("accuracy_cpu") or "CPU not recorded"
        lines += [f"### {run.get('accuracy_date', result['date'])} UTC on {where}", ""]
        if run.get("accuracy_command"):
            lines += [f"Command: `{run['accuracy_command']}`." + (f" {run['accuracy_note']}" if run.get("accuracy_note") else ""), ""]
        if acc is None:
            lines += ["Not measured: no published Fashion-MNIST zoo model (model_zoo_logs/classification/*fashion-mnist*/metrics.json) at run time.", ""]
            continue
        lines += [f"Model {acc['model']} (weights sha256 {str(acc['weights_sha256'])[:12]}..., log `{acc['log']}`, "
                  f"published top-1 {acc['published_top1']}). Calibration: 16 batches of 32 training images.", "",
                  "| calibration | weights | fp32 top-1 | int8 top-1 | loss (points) | int8 = fp32 top-1 | onnxruntime b1 fp32 / int8 (ms) |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for mode, r in acc["by_calib_mode"].items():
            scheme = r.get("scheme", "full-range (before --scheme)")
            lines.append(
                f"| {mode} | {scheme} | {r['fp32_top1'] * 100:.2f}% | {r['int8_top1'] * 100:.2f}% | "
                f"{(r['fp32_top1'] - r['int8_top1']) * 100:.2f} | {r['agreement'] * 100:.2f}% | "
                f"{r['latency_ms']['fp32']:.3f} / {r['latency_ms']['int8']:.3f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["resnet50_v1", "mobilenetv3_large"])
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--repeats", type=int, default=7, help="throughput runs per runtime (latency: 4x this)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", default=None, help="folder for benchmark.md / benchmark.json (default: print only)")
    parser.add_argument("--no-accuracy", action="store_true", help="skip the Fashion-MNIST int8 accuracy rows")
    parser.add_argument("--accuracy-checkpoint", help="a Fashion-MNIST training checkpoint (.pt) to use while no "
                        "zoo model is published; its rows are labelled provisional")
    parser.add_argument("--accuracy-model", default="cifar_resnet20_v1", help="zoo name of --accuracy-checkpoint")
    parser.add_argument("--accuracy-only", action="store_true",
                        help="keep the speed tables of OUT/benchmark.json and redo only the accuracy rows")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "command": "python benchmarks/deploy.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "hardware": hardware(), "versions": versions(), "threads": args.threads, "batch": args.batch_size,
        "models": [],
    }
    if args.accuracy_only:
        if not args.out or not (Path(args.out) / "benchmark.json").is_file():
            parser.error("--accuracy-only needs --out with a benchmark.json from an earlier run")
        previous = json.loads((Path(args.out) / "benchmark.json").read_text())
        result.update({k: previous[k] for k in ("date", "command", "hardware", "versions", "threads", "batch",
                                                "models", "load_after") if k in previous})
        # earlier accuracy runs stay in the table, each with the CPU it ran on
        earlier = [{k: previous[k] for k in ("accuracy_date", "accuracy_command", "accuracy_cpu", "accuracy_note",
                                             "zoo_accuracy") if k in previous}] + list(previous.get("earlier_accuracy", []))
        for e in earlier:
            if "accuracy_cpu" not in e:
                e["accuracy_note"] = ("The CPU was not recorded: this --accuracy-only run predates CPU attribution and "
                                      "kept the speed run's hardware fields; its weights were full-range (8-bit).")
        result["earlier_accuracy"] = [e for e in earlier if e.get("zoo_accuracy")]
        result["accuracy_command"] = "python benchmarks/deploy.py " + " ".join(argv if argv is not None else sys.argv[1:])
        result["accuracy_date"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
        args.models = []
    else:
        result["accuracy_command"], result["accuracy_date"] = result["command"], result["date"]
    if not args.accuracy_only:
        from toolkit.deploy.cpu import resolve_scheme

        result["speed_scheme"] = resolve_scheme("auto")["scheme"]
    result["accuracy_cpu"] = f"{cpu_label(hardware())}; onnxruntime u8 x s8 kernels " + (
        "saturate int16" if hardware()["u8s8_saturates"] else "exact (VNNI)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        calib = calibration_folder(work)
        for name in args.models:
            print(f"benchmarking {name} ...", file=sys.stderr, flush=True)
            result["models"].append(bench_model(name, work, args.threads, args.repeats, args.batch_size, calib))
        result["zoo_accuracy"] = None if args.no_accuracy else zoo_accuracy(
            work, args.threads, args.accuracy_checkpoint, args.accuracy_model)
    if not args.accuracy_only:
        result["load_after"] = list(os.getloadavg())
    text = markdown(result)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "benchmark.md").write_text(text)
        (out / "benchmark.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
