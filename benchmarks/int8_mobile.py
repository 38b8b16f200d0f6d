"""int8 on MobileNetV3 graphs: the old static recipe vs the uint8-friendly one (issue 14).

On a CPU without VNNI (AVX2 AMD EPYC) ``toolkit quantize``'s static QDQ recipe made LR-ASPP-MobileNetV3
*slower* than fp32 on onnxruntime and OpenVINO (``benchmarks/results/detseg_speed.txt``). onnxruntime's
profile showed why: the int8 convolutions were ~1.9x faster than fp32 ones (pointwise; depthwise about
even), but every ``HardSigmoid`` (from ``HardSwish = x * HardSigmoid(x)`` and the squeeze-excite gates)
and every squeeze-excite ``ReduceMean`` has no uint8 kernel, so each ran in float between a
``DequantizeLinear`` and a ``QuantizeLinear``, in NHWC, where ``ReduceMean`` over H and W is 7x slower
than in NCHW. ``quantize(..., graph_rewrites=True)`` (now the default) rewrites them into exact
equivalents with uint8 kernels first, and keeps the final full-size ``Resize`` (whose 21 x 512 x 512
output the old recipe quantized and dequantized again) in float (:mod:`toolkit.deploy._int8_rewrite`).

For each model (random weights, nothing downloaded) this prints, timed side by side and interleaved
(forward, then reversed order, in turn; medians), batch 1, same thread count everywhere:

* ``torchvision eager``: torchvision's model of the same architecture;
* ``onnxruntime fp32/int8 old/int8 new`` and ``openvino fp32/int8 old/int8 new``: our ``toolkit
  export`` graph, quantized with ``graph_rewrites=False`` (old) and ``True`` (new), same calibration
  (2 photos from scikit-image, naive min/max, the weight scheme ``auto`` picks for this CPU);

the onnxruntime per-op-type profile of the three exported graphs (where the time goes), and how far
each int8 graph is from fp32 on a photo (mean |int8 - fp32| / mean |fp32| of the output, and the
share of pixels whose class equals fp32's, for segmentation).

    OMP_WAIT_POLICY=PASSIVE nice -n 5 python benchmarks/int8_mobile.py --rounds 7 \\
        | tee benchmarks/results/int8_mobile.txt
"""
from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from detseg_speed import PAIRS, eager_call, exported_runner, interleaved, torchvision_model  # noqa: E402

MODELS = ("lraspp_mobilenet_v3", "ssdlite320_mobilenet_v3")
RUNTIMES = ("onnxruntime", "openvino")
GRAPHS = ("fp32", "int8 old", "int8 new")


def export(pair: str, size: int, work: Path, calib: Path, threads: int, timeout: int) -> dict[str, Path]:
    """fp32 export (in a child process, as detseg_speed does) and the two int8 graphs."""
    from toolkit.deploy import quantize

    prefix = work / pair
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "detseg_speed.py"), "--child-export", pair,
                           str(size), str(prefix)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    if done.returncode != 0:
        raise RuntimeError(f"export of {pair} failed: {done.stderr.strip().splitlines()[-1:]}")
    paths = {"fp32": prefix}
    for graph, rewrites in (("int8 old", False), ("int8 new", True)):
        report = quantize(prefix, calib=str(calib), num_calib_batches=2, batch_size=1, calib_mode="naive",
                          num_threads=threads, latency_repeats=1, out=work / f"{pair}-{graph.replace(' ', '-')}",
                          graph_rewrites=rewrites)
        paths[graph] = Path(report["out"])
        if rewrites:
            print(f"graph rewrites: {report['graph_rewrites']}; float output nodes: {report['float_output_nodes']}")
    return paths


def ort_profile(path: Path, x: np.ndarray, threads: int, runs: int = 3) -> list[tuple[str, float, int]]:
    """(op type, ms per run, nodes) from onnxruntime's profiler, depthwise QLinearConv/Conv apart."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "prof")
        options.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        options.log_severity_level = 3
        sess = ort.InferenceSession(str(path.with_suffix(".onnx")), options, providers=["CPUExecutionProvider"])
        kinds = {}
        for n in onnx.load(options.optimized_model_filepath).graph.node:
            group = next((a.i for a in n.attribute if a.name == "group"), 1)
            kinds[n.name] = n.op_type + (" (depthwise)" if group > 1 else "")
        name = sess.get_inputs()[0].name
        for _ in range(runs + 1):  # the first run's events are dropped below with the others' average
            sess.run(None, {name: x})
        events = json.loads(Path(sess.end_profiling()).read_text())
    total: collections.Counter = collections.Counter()
    count: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            kind = kinds.get(e["name"][: -len("_kernel_time")], e["args"]["op_name"])
            total[kind] += e["dur"]
            count[kind] += 1
    return [(k, v / (runs + 1) / 1e3, count[k] // (runs + 1)) for k, v in total.most_common()]


def int8_error(paths: dict[str, Path], photo: Path, task: str) -> dict[str, str]:
    from toolkit.deploy import load
    from toolkit.deploy.preprocess import ImagePreprocessing, preprocess_image

    fp32 = load(paths["fp32"])
    if task != "segmentation":
        return {}
    meta = fp32.metadata
    x = np.stack([preprocess_image(photo, ImagePreprocessing.from_metadata(meta), meta["inputs"][0]["shape"][1:])])
    ref = np.asarray(fp32(x))
    out = {}
    for graph in GRAPHS[1:]:
        got = np.asarray(load(paths[graph])(x))
        out[graph] = (f"mean |int8 - fp32| / mean |fp32| {np.abs(got - ref).mean() / np.abs(ref).mean():.4f}, "
                      f"class map equal on {(got.argmax(1) == ref.argmax(1)).mean() * 100:.2f}% of pixels")
    return out


def bench(pair: str, size: int, work: Path, calib: Path, args: argparse.Namespace) -> None:
    ours, _, tv_name, _, task = PAIRS[pair](size)
    print(f"\n== {pair} at {size}x{size} (ours {ours} vs torchvision {tv_name})")
    tic = time.perf_counter()
    paths = export(pair, size, work, calib, args.threads, args.export_timeout)
    print(f"export + 2 quantizations {time.perf_counter() - tic:.0f} s")
    x = torch.rand(1, 3, size, size)
    xn = x.numpy()
    fns: dict[str, Callable[[], Any]] = {"torchvision eager": eager_call(torchvision_model(pair, size), x, task, True)}
    notes = []
    for runtime in RUNTIMES:
        for graph in GRAPHS:
            try:
                runner = exported_runner(runtime, paths[graph], args.threads)
                runner(xn)
                fns[f"{runtime} {graph}"] = lambda runner=runner: runner(xn)
            except Exception as err:  # noqa: BLE001 - a runtime refusing a graph is reported, not timed
                notes.append(f"{runtime} {graph} refused the graph: {type(err).__name__}: {str(err)[:200]}")
    times = interleaved(fns, args.rounds, args.warmup)
    base = times["torchvision eager"]
    print(f"{'variant':24s} {'ms':>9s} {'vs torchvision':>15s} {'vs own fp32':>12s}")
    for key, sec in times.items():
        runtime = key.split()[0]
        own = times.get(f"{runtime} fp32")
        vs_fp32 = f"{own / sec:11.2f}x" if own and key != "torchvision eager" else f"{'':12s}"
        print(f"{key:24s} {sec * 1e3:9.1f} {base / sec:14.2f}x {vs_fp32}")
    for note in notes:
        print("note:", note)
    for graph, text in int8_error(paths, calib / "astronaut.png", task).items():
        print(f"{graph}: {text} (astronaut.png, a calibration photo; random weights)")
    if not args.no_profile:
        print("onnxruntime profile, ms per run by op type (nodes), one graph at a time (not interleaved):")
        profiles = {g: ort_profile(paths[g], xn, args.threads) for g in GRAPHS}
        for graph, rows in profiles.items():
            print(f"  {graph:9s} " + ", ".join(f"{k} {ms:.1f} ({n})" for k, ms, n in rows[:9]))


def main(argv: list[str] | None = None) -> int:
    from deploy import calibration_folder

    from toolkit.deploy.cpu import cpu_info, u8s8_saturates

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=MODELS[0], help=f"comma-separated subset of {list(MODELS)}")
    p.add_argument("--size", type=int, default=512, help="input size of LR-ASPP (SSDlite runs at 320)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--export-timeout", type=int, default=1200)
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--workdir", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    import onnxruntime
    import openvino
    import torchvision

    info = cpu_info()
    print(f"int8_mobile {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; CPU: {info['cpu']} "
          f"({'/'.join(info['isa'] + info['proc_flags'])}), {os.cpu_count()} cores; "
          f"u8s8 saturates: {u8s8_saturates()}")
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, onnxruntime {onnxruntime.__version__}, "
          f"openvino {openvino.__version__}; {args.threads} threads everywhere, batch 1, median of {args.rounds} "
          f"interleaved rounds; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    print("load average (1, 5, 15 min) at start: {:.2f}, {:.2f}, {:.2f} (a shared machine: other jobs ran "
          "alongside; interleaving spreads their load over all variants)".format(*os.getloadavg()))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        calib = calibration_folder(work)
        for pair in args.models.split(","):
            if pair not in MODELS:
                p.error(f"unknown model {pair!r}; choose from {list(MODELS)}")
            bench(pair, 320 if pair.startswith("ssdlite") else args.size, work, calib, args)
    print("load average at end: {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
