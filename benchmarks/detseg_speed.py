"""Detection and segmentation inference speed: exported graphs vs torchvision's eager models (issue 14).

For each pair of the same architecture (random weights; torchvision built with ``weights=None`` and
``weights_backbone=None``, nothing is downloaded):

* SSDlite320-MobileNetV3-Large: ours ``ssdlite320_mobilenet_v3_large`` vs
  ``torchvision.models.detection.ssdlite320_mobilenet_v3_large``;
* Faster R-CNN MobileNetV3-Large FPN: ``fasterrcnn_mobilenet_v3_large_fpn`` vs torchvision's;
* LR-ASPP MobileNetV3-Large: ``lraspp_mobilenet_v3_large`` vs torchvision's;
* DeepLabV3 ResNet-50: ``deeplab_resnet50_voc`` (GluonCV's ResNet-50 v1s, dilated) vs
  ``torchvision.models.segmentation.deeplabv3_resnet50`` (``aux_loss=False``, as ours at inference);
  ``deeplabv3_resnet50_v1b``: the same model in torchvision's architecture (``backbone="resnet50_v1b"``,
  ``align_corners=False``: what ``from_torchvision`` converts to) vs the same torchvision model,

it times batch-1 inference at SxS (default 512) of

* ``torchvision eager``: the torchvision model as a user calls it (detectors: a list with one image
  tensor; its transform is set to the same fixed size, so it resizes SxS to SxS; NMS included);
* ``ours hybridized``: our model after ``hybridize()`` (captured graph, autotuned kernels);
* ``onnxruntime fp32``, ``openvino fp32``: the graph ``toolkit export`` writes (NMS in the graph);
* ``onnxruntime int8``, ``openvino int8``: that graph after ``toolkit quantize`` (static QDQ,
  calibrated on scikit-image's photos; the weight scheme ``auto`` picks for this CPU).

All variants use the same thread count and run interleaved (A, B, ..., then reversed, in turn), so the
load of a shared machine hits them alike; each number is the median over the rounds, and ratios are
``torchvision eager / variant`` (above 1: faster). Each library keeps its own score threshold (ours
0.01, torchvision's SSDlite 0.001): with random weights nearly every class score of every anchor passes
it, so the detectors' timings are dominated by the NMS over the per-class top candidates (27,000 boxes
for SSDlite's 90 classes x 300), a worst case that trained weights do not reach. A runtime that
refuses a graph is reported with its one-line error, never timed.

Peak memory (torchvision eager and the exported variants): each runs in a fresh child process
(``--child``), which loads it, runs it three times and reports the kernel's resident-set high-water
mark (``VmHWM`` of ``/proc/self/status``): the peak RSS of the whole process, and its growth over the process's RSS just before the model was
loaded (the runtime libraries already imported). tracemalloc would miss native allocations
(oneDNN, onnxruntime and OpenVINO arenas), so it is not used.

    OMP_WAIT_POLICY=PASSIVE nice -n 10 python benchmarks/detseg_speed.py --rounds 7 \\
        | tee benchmarks/results/detseg_speed.txt
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# steady-state rows: hybridize() tunes in the first call (the lazy default spreads tuning over
# later calls, which the few warm-up calls here would time)
os.environ.setdefault("TOOLKIT_AUTOTUNE_LAZY", "0")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

#: label -> (our zoo name, our builder kwargs at size S, torchvision builder name, its kwargs at S, task)
PAIRS: dict[str, Callable[[int], tuple[str, dict, str, dict, str]]] = {
    "ssdlite320_mobilenet_v3": lambda s: (
        "ssdlite320_mobilenet_v3_large", {"data_shape": s},
        "detection.ssdlite320_mobilenet_v3_large", {"num_classes": 91}, "detection"),
    "fasterrcnn_mobilenet_v3_fpn": lambda s: (
        "fasterrcnn_mobilenet_v3_large_fpn", {"data_shape": (s, s)},
        "detection.fasterrcnn_mobilenet_v3_large_fpn", {"num_classes": 91, "min_size": s, "max_size": s},
        "detection"),
    "lraspp_mobilenet_v3": lambda s: (
        "lraspp_mobilenet_v3_large", {"crop_size": s, "base_size": s},
        "segmentation.lraspp_mobilenet_v3_large", {"num_classes": 21}, "segmentation"),
    "deeplabv3_resnet50": lambda s: (
        "deeplab_resnet50_voc", {"crop_size": s, "base_size": s, "aux": False},
        "segmentation.deeplabv3_resnet50", {"num_classes": 21, "aux_loss": False}, "segmentation"),
    # torchvision's architecture (what from_torchvision converts to): ResNet-50 v1b's 7x7 stem instead of
    # v1s's deep stem (3 convs 64-64-128 at S/2, ~7 GMAC more at 512), resizes with align_corners=False
    "deeplabv3_resnet50_v1b": lambda s: (
        "deeplab_resnet50_voc", {"crop_size": s, "base_size": s, "aux": False, "backbone": "resnet50_v1b",
                                 "align_corners": False},
        "segmentation.deeplabv3_resnet50", {"num_classes": 21, "aux_loss": False}, "segmentation"),
}
VARIANTS = ("torchvision eager", "ours hybridized", "onnxruntime fp32", "openvino fp32", "onnxruntime int8",
            "openvino int8")
EXPORTED = VARIANTS[2:]


# ----------------------------------------------------------------------------------------------- models
def torchvision_model(pair: str, size: int) -> torch.nn.Module:
    import torchvision

    _, _, tv_name, tv_kwargs, _ = PAIRS[pair](size)
    module, fn = tv_name.split(".")
    torch.manual_seed(0)
    model = getattr(getattr(torchvision.models, module), fn)(weights=None, weights_backbone=None, **tv_kwargs)
    if module == "detection" and hasattr(model.transform, "fixed_size") and model.transform.fixed_size:
        model.transform.fixed_size = (size, size)  # SSDlite resizes to a fixed size: the same S as ours
    return model.eval()


def our_model(pair: str, size: int) -> torch.nn.Module:
    from toolkit.zoo import get_model

    name, kwargs, _, _, _ = PAIRS[pair](size)
    torch.manual_seed(0)
    return get_model(name, **kwargs).eval()


def eager_call(model: torch.nn.Module, x: torch.Tensor, task: str, torchvision_api: bool) -> Callable[[], Any]:
    arg = [x[0]] if (task == "detection" and torchvision_api) else x

    def run():
        with torch.inference_mode():
            model(arg)
    return run


# ----------------------------------------------------------------------------------------------- export
def export_child(pair: str, size: int, prefix: str) -> None:
    """In a fresh process (so that a stuck exporter can be timed out): build, export, check the NMS node."""
    from toolkit.cv.deploy import check_nms_in_graph, prepare_export

    task = PAIRS[pair](size)[4]
    model = prepare_export(our_model(pair, size))
    model.export(prefix, check=task != "detection")  # detectors: tied random scores reorder the NMS (see cli)
    if task == "detection":
        check_nms_in_graph(f"{prefix}.onnx")


def export_and_quantize(pair: str, size: int, work: Path, threads: int, calib: Path, timeout: int
                        ) -> dict[str, Any]:
    """``{"fp32": prefix or None, "int8": prefix or None, "notes": [...], "export_s", "quantize_s"}``."""
    from toolkit.deploy import quantize

    info: dict[str, Any] = {"fp32": None, "int8": None, "notes": []}
    prefix = work / pair
    tic = time.perf_counter()
    cmd = [sys.executable, __file__, "--child-export", pair, str(size), str(prefix)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    except subprocess.TimeoutExpired:
        info["notes"].append(f"export did not finish within {timeout} s; exported rows skipped")
        return info
    if done.returncode != 0:
        info["notes"].append(f"export failed: {_one_line(_exporter_error(done.stderr))}; exported rows skipped")
        return info
    info["export_s"] = round(time.perf_counter() - tic, 1)
    info["fp32"] = prefix
    tic = time.perf_counter()
    try:
        report = quantize(prefix, calib=str(calib), num_calib_batches=2, batch_size=1, calib_mode="naive",
                          num_threads=threads, latency_repeats=1)
        info["int8"] = Path(report["out"])
        info["quantize_s"] = round(time.perf_counter() - tic, 1)
    except Exception as err:  # noqa: BLE001
        info["notes"].append(f"quantize failed ({type(err).__name__}: {_one_line(err)}); int8 rows skipped")
    return info


def _exporter_error(stderr: str) -> str:
    """The line of a failed export's traceback that names the error (torch adds advice lines after it)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    named = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception|SymNode)\w*: ", ln)
             and "The error above occurred" not in ln]
    return (named or lines or ["(no message)"])[0 if named else -1]


def _one_line(err: BaseException, limit: int = 240) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def exported_runner(variant: str, prefix: Path, threads: int) -> Callable[[np.ndarray], Any]:
    from toolkit.deploy import load, load_openvino

    if variant.startswith("onnxruntime"):
        return load(prefix, num_threads=threads)
    # OpenVINO compiled for the static batch of 1, latency hint (as benchmarks/deploy.py does)
    return load_openvino(prefix, num_threads=threads, batch_size=1, performance_hint="LATENCY")


def build_variants(pair: str, size: int, threads: int, exports: dict[str, Any], notes: list[str],
                   hybrid_timeout: int = 900) -> dict[str, Callable[[], Any]]:
    """Callables of every variant that loads and runs once; refusals go to ``notes``."""
    task = PAIRS[pair](size)[4]
    x = torch.rand(1, 3, size, size)
    xn = x.numpy()
    fns: dict[str, Callable[[], Any]] = {"torchvision eager": eager_call(torchvision_model(pair, size), x, task, True)}
    ours = our_model(pair, size).hybridize()

    def too_long(signum, frame):
        raise TimeoutError(f"the first call (capture and autotuning) took over {hybrid_timeout} s")

    old = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(hybrid_timeout)
    try:
        fn = eager_call(ours, x, task, False)
        fn()  # the capture (and kernel autotuning) happens here, outside the timings
        fns["ours hybridized"] = fn
    except Exception as err:  # noqa: BLE001
        notes.append(f"ours hybridized failed: {type(err).__name__}: {_one_line(err)}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    for variant in EXPORTED:
        prefix = exports["int8" if variant.endswith("int8") else "fp32"]
        if prefix is None:
            continue
        try:
            runner = exported_runner(variant, prefix, threads)
            runner(xn)
            fns[variant] = lambda runner=runner: runner(xn)
        except Exception as err:  # noqa: BLE001 - e.g. OpenVINO refusing the int8 detector graph
            notes.append(f"{variant} refused the graph: {type(err).__name__}: {_one_line(err)}")
    return fns


def interleaved(fns: dict[str, Callable[[], Any]], rounds: int, warmup: int) -> dict[str, float]:
    """Median seconds per call; forward and reverse order in turn so that no variant always follows another."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    keys = list(fns)
    for i in range(rounds):
        for k in (keys if i % 2 == 0 else keys[::-1]):
            tic = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - tic)
    return {k: float(np.median(v)) for k, v in times.items()}


# ----------------------------------------------------------------------------------------------- memory
def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def child_main(variant: str, pair: str, size: int, threads: int, prefix: str) -> None:
    """In a fresh process: load one variant, run it 3 times, print JSON with the RSS high-water mark."""
    torch.set_num_threads(threads)
    task = PAIRS[pair](size)[4]
    x = torch.rand(1, 3, size, size)
    import onnxruntime  # noqa: F401 - the runtime libraries count in the baseline, not in the model's share
    import openvino  # noqa: F401

    import toolkit.deploy  # noqa: F401
    base = _status_kib("VmRSS")
    if variant == "torchvision eager":
        fn = eager_call(torchvision_model(pair, size), x, task, True)
    elif variant == "ours hybridized":
        fn = eager_call(our_model(pair, size).hybridize(), x, task, False)
    else:
        runner = exported_runner(variant, Path(prefix), threads)
        xn = x.numpy()
        fn = lambda: runner(xn)  # noqa: E731
    for _ in range(3):
        fn()
    print(json.dumps({"baseline_kib": base, "peak_kib": _status_kib("VmHWM")}))


def peak_memory(variant: str, pair: str, size: int, threads: int, prefix: Path | None) -> dict[str, float] | str:
    cmd = [sys.executable, __file__, "--child", variant, pair, str(size), str(threads), str(prefix or "")]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if done.returncode != 0:
        return "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1][:200]
    rec = json.loads(done.stdout.strip().splitlines()[-1])
    return {"peak_mib": rec["peak_kib"] / 1024, "growth_mib": (rec["peak_kib"] - rec["baseline_kib"]) / 1024}


# ----------------------------------------------------------------------------------------------- report
def header(threads: int, size: int, rounds: int) -> str:
    import onnxruntime
    import openvino
    import torchvision

    from deploy import cpu_label, hardware  # benchmarks/deploy.py

    hw = hardware()
    load = ", ".join(f"{v:.2f}" for v in hw["load_average"])
    return (f"detseg_speed {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; CPU: {cpu_label(hw)}, "
            f"{hw['cores']} cores; u8s8 saturates: {hw['u8s8_saturates']}\n"
            f"torch {torch.__version__}, torchvision {torchvision.__version__}, onnxruntime {onnxruntime.__version__}, "
            f"openvino {openvino.__version__}; {threads} threads everywhere, batch 1, {size}x{size}, median of {rounds} "
            f"interleaved rounds; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}\n"
            f"load average (1, 5, 15 min) at start: {load}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child-export"]:
        export_child(argv[1], int(argv[2]), argv[3])
        return 0
    if argv[:1] == ["--child"]:
        variant, pair, size, threads, prefix = argv[1:6]
        child_main(variant, pair, int(size), int(threads), prefix)
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=512, help="input height and width (default 512)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models", default=",".join(PAIRS), help=f"comma-separated subset of {list(PAIRS)}")
    p.add_argument("--no-memory", action="store_true", help="skip the per-variant peak-memory child processes")
    p.add_argument("--export-timeout", type=int, default=1200, help="seconds one model's export may take")
    p.add_argument("--workdir", default=None, help="where the exports go (default: a temp folder)")
    args = p.parse_args(argv)
    models = args.models.split(",")
    if set(models) - set(PAIRS):
        p.error(f"unknown models {sorted(set(models) - set(PAIRS))}; choose from {list(PAIRS)}")
    torch.set_num_threads(args.threads)
    from deploy import calibration_folder

    work = Path(args.workdir or tempfile.mkdtemp(prefix="detseg-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    calib = calibration_folder(work)
    print(header(args.threads, args.size, args.rounds), flush=True)
    summary: list[str] = []
    for pair in models:
        ours_name, ours_kwargs, tv_name = PAIRS[pair](args.size)[:3]
        extra = {k: v for k, v in ours_kwargs.items() if k in ("backbone", "align_corners")}
        ours = ours_name + (f" with {extra}" if extra else "")
        print(f"\n== {pair} (ours {ours} vs torchvision {tv_name})", flush=True)
        exports = export_and_quantize(pair, args.size, work, args.threads, calib, args.export_timeout)
        notes = list(exports["notes"])
        fns = build_variants(pair, args.size, args.threads, exports, notes)
        med = interleaved(fns, args.rounds, args.warmup)
        ref = med["torchvision eager"]
        mem: dict[str, Any] = {}
        if not args.no_memory:
            for variant in [v for v in fns if v != "ours hybridized"]:  # the exported runs, torchvision's for scale
                prefix = exports["int8" if variant.endswith("int8") else "fp32"] if variant in EXPORTED else None
                mem[variant] = peak_memory(variant, pair, args.size, args.threads, prefix)
        print(f"{'variant':<20} {'ms':>9} {'vs torchvision':>15} {'peak RSS MiB':>13} {'growth MiB':>11}")
        for variant in VARIANTS:
            if variant not in med:
                print(f"{variant:<20} {'-':>9} {'-':>15}   (not run: see notes)")
                continue
            m = mem.get(variant, "-" if args.no_memory or variant == "ours hybridized" else None)
            mtext = (f"{m['peak_mib']:13.0f} {m['growth_mib']:11.0f}" if isinstance(m, dict)
                     else f"{m:>13} {m:>11}" if m == "-" else f"  {m}" if m else "")
            print(f"{variant:<20} {med[variant] * 1e3:9.1f} {ref / med[variant]:14.2f}x {mtext}")
        for note in notes:
            print(f"note: {note}")
        if "export_s" in exports:
            print(f"export {exports['export_s']} s" + (f", quantize {exports['quantize_s']} s" if "quantize_s" in exports
                                                       else ""))
        best32 = max((ref / med[v] for v in ("onnxruntime fp32", "openvino fp32") if v in med), default=None)
        best8 = max((ref / med[v] for v in ("onnxruntime int8", "openvino int8") if v in med), default=None)
        goal = lambda r, g: "not measured" if r is None else f"{r:.2f}x ({'met' if r >= g else 'NOT met'})"  # noqa: E731
        summary.append(f"{pair:<28} best exported fp32 {goal(best32, 1.5):<22} best int8 {goal(best8, 2.0)}")
        sys.stdout.flush()
    print("\nGoals (issue 14): exported fp32 >= 1.5x torchvision eager, int8 >= 2x")
    print("\n".join(summary))
    print(f"load average at end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
