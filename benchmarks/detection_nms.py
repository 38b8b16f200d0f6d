"""Exported detector NMS: one ONNX NonMaxSuppression per (image, class) group vs one over all candidates.

``fixed_detections`` (the eval tail of every detector) used to suppress all (image, class) groups
with one ``torchvision.ops.nms`` call over boxes shifted apart per group; its ONNX lowering is one
``NonMaxSuppression`` over every candidate (SSDlite320: 90 classes x 300 = 27,000), quadratic in all
of them. It now calls ``toolkit::grouped_nms``, exported as one ``NonMaxSuppression`` whose
batch/class axes are the groups. This script exports our ``ssdlite320_mobilenet_v3_large`` both ways
(the old way by swapping ``_boxes._suppress`` for the old code, kept here) and times batch-1
inference, interleaved (A, B, ..., then reversed, in turn), medians over the rounds, 2 threads:

* ``torchvision eager``: ``torchvision.models.detection.ssdlite320_mobilenet_v3_large`` (random
  weights, transform fixed to SxS);
* ``ours eager``: our model in PyTorch (its NMS is ``batched_nms`` through the op);
* ``onnxruntime fp32`` and ``openvino fp32`` of the per-group graph and of the single-NMS graph.

Random weights (nothing is downloaded) put nearly every class score above the thresholds, so all
27,000 candidates reach the NMS: the worst case, the one ``benchmarks/detseg_speed.py`` measures.
Each export runs in a fresh process and is timed there (``export_block`` with ``check=False``).

    OMP_WAIT_POLICY=PASSIVE nice -n 5 python benchmarks/detection_nms.py --sizes 320 512 \\
        | tee benchmarks/results/detection_nms.txt
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
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


def _single_nms_suppress(grid_scores, grid_boxes, top_indices, cand_boxes, cand_cls, cand_scores, score_thresh,
                         nms_thresh, max_per_class):
    """The previous captured path of ``fixed_detections``: one NMS over every candidate, groups shifted apart."""
    from torchvision.ops import nms

    batch, k = top_indices.shape
    num_classes = grid_scores.shape[2]
    image = torch.arange(batch, device=cand_scores.device).repeat_interleave(k)
    keep = torch.nonzero(cand_scores > score_thresh).squeeze(1)
    group = (image * num_classes + cand_cls).to(cand_boxes.dtype)
    span = cand_boxes.max() - cand_boxes.min() + 1
    shifted = (cand_boxes - cand_boxes.min()) + (group * span)[:, None]
    keep = keep[nms(shifted[keep].float(), cand_scores[keep].float(), nms_thresh)]
    position = torch.arange(keep.shape[0], device=cand_scores.device)
    return keep[torch.argsort(image[keep] * keep.shape[0] + position)]


def our_model(size: int) -> torch.nn.Module:
    from toolkit.zoo import get_model

    torch.manual_seed(0)
    return get_model("ssdlite320_mobilenet_v3_large", data_shape=size).eval()


def torchvision_model(size: int) -> torch.nn.Module:
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                                         num_classes=91)
    model.transform.fixed_size = (size, size)
    return model.eval()


def export_child(size: int, prefix: str, single: bool) -> None:
    """Fresh process: build, (patch), export, print ``{"export_s", "nms_nodes"}`` as JSON."""
    import onnx

    from toolkit.cv.deploy import check_nms_in_graph, prepare_export
    from toolkit.cv.models.detection import _boxes

    if single:
        _boxes._suppress = _single_nms_suppress
    model = prepare_export(our_model(size))
    tic = time.perf_counter()
    model.export(prefix, check=False)
    seconds = time.perf_counter() - tic
    check_nms_in_graph(f"{prefix}.onnx")
    nodes = [n for n in onnx.load(f"{prefix}.onnx", load_external_data=False).graph.node
             if n.op_type == "NonMaxSuppression"]
    print(json.dumps({"export_s": round(seconds, 1), "nms_nodes": len(nodes)}))


def export(size: int, prefix: Path, single: bool, timeout: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child-export", str(size), str(prefix)] + (["--single"] if single else [])
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    if done.returncode != 0:
        raise RuntimeError(f"export failed: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ort_runner(prefix: Path, threads: int, x: np.ndarray) -> Callable[[], list]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(f"{prefix}.onnx", opts, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x}
    return lambda: sess.run(None, feed)


def ov_runner(prefix: Path, threads: int, x: np.ndarray) -> Callable[[], list]:
    from toolkit.deploy.ov_core import shared_core  # one Core per process: see there

    compiled = shared_core().compile_model(f"{prefix}.onnx", "CPU", {"INFERENCE_NUM_THREADS": threads})
    request = compiled.create_infer_request()

    def run():
        result = request.infer({0: x})
        return [result[o] for o in compiled.outputs]
    return run


def eager_runner(model: torch.nn.Module, x: torch.Tensor, torchvision_api: bool) -> Callable[[], Any]:
    arg = [x[0]] if torchvision_api else x

    def run():
        with torch.inference_mode():
            return model(arg)
    return run


def cpu_line() -> str:
    model, flags = "unknown CPU", set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name") and model == "unknown CPU":
            model = line.split(":", 1)[1].strip()
        elif line.startswith("flags") and not flags:
            flags = set(line.split(":", 1)[1].split())
    isa = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    return f"{model} ({', '.join(isa) or 'no AVX2'}), {os.cpu_count()} logical CPUs"


def bench(size: int, args: argparse.Namespace, work: Path) -> None:
    import onnxruntime as ort
    import openvino as ov

    print(f"\n== ssdlite320_mobilenet_v3_large at {size}x{size}, batch 1")
    exports = {}
    for kind, single in (("per-group", False), ("single", True)):
        info = export(size, work / f"ssdlite_{size}_{kind}", single, args.export_timeout)
        exports[kind] = work / f"ssdlite_{size}_{kind}"
        print(f"export {kind:9s} NMS graph: {info['export_s']:7.1f} s, {info['nms_nodes']} NonMaxSuppression node(s)")
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, size, size, generator=gen)
    xn = x.numpy()
    ours = our_model(size)
    variants: dict[str, Callable[[], Any]] = {
        "torchvision eager": eager_runner(torchvision_model(size), x, True),
        "ours eager": eager_runner(ours, x, False),
    }
    for kind in ("per-group", "single"):
        variants[f"onnxruntime fp32, {kind} NMS"] = ort_runner(exports[kind], args.threads, xn)
        variants[f"openvino fp32, {kind} NMS"] = ov_runner(exports[kind], args.threads, xn)
    # same detections? The per-group graph against the single-NMS graph on the same runtime (same scores in,
    # so any difference is the NMS's), and each graph against eager PyTorch (whose scores differ in the last
    # bits: with random weights many scores nearly tie, so the order may differ; the sorted scores must not)
    with torch.inference_mode():
        ref = [t.numpy() for t in ours(x)]
    outs = {}
    for name, run in variants.items():
        if name != "torchvision eager":
            out = run()
            outs[name] = [t.numpy() for t in out] if isinstance(out[0], torch.Tensor) else [np.asarray(o) for o in out]
    print(f"  ours eager: {int((ref[0] >= 0).sum())} detections, {len(np.unique(ref[1][ref[1] >= 0]))} distinct scores")
    for rt in ("onnxruntime", "openvino"):
        new, old = outs[f"{rt} fp32, per-group NMS"], outs[f"{rt} fp32, single NMS"]
        same = max(float(np.abs(a - b).max()) for a, b in zip(new, old))
        print(f"  {rt}: per-group vs single-NMS graph, max |diff| of ids, scores, boxes {same:.3g}")
        for kind, out in (("per-group", new), ("single", old)):
            ordered = max(float(np.abs(a - b).max()) for a, b in zip(ref, out))
            scores = float(np.abs(np.sort(ref[1].ravel()) - np.sort(out[1].ravel())).max())
            print(f"  {rt} {kind} graph vs ours eager: max |diff| in output order {ordered:.3g}, "
                  f"of the sorted scores {scores:.3g}")
    for run in variants.values():
        for _ in range(args.warmup):
            run()
    times: dict[str, list[float]] = {k: [] for k in variants}
    order = list(variants)
    for r in range(args.rounds):
        for name in (order if r % 2 == 0 else order[::-1]):
            tic = time.perf_counter()
            variants[name]()
            times[name].append(time.perf_counter() - tic)
    base = statistics.median(times["torchvision eager"])
    print(f"{'variant':36s} {'median ms':>10s} {'vs torchvision':>15s}   per-round ms")
    for name, ts in times.items():
        med = statistics.median(ts)
        rounds = " ".join(f"{t * 1e3:.0f}" for t in ts)
        print(f"{name:36s} {med * 1e3:10.1f} {base / med:14.2f}x   {rounds}")
    for rt in ("onnxruntime", "openvino"):
        a = statistics.median(times[f"{rt} fp32, single NMS"])
        b = statistics.median(times[f"{rt} fp32, per-group NMS"])
        print(f"{rt}: per-group NMS graph {a / b:.2f}x faster than the single-NMS graph")
    del ort, ov


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[320])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--export-timeout", type=int, default=1200)
    parser.add_argument("--keep", help="folder for the exports (kept; default a temporary folder)")
    parser.add_argument("--child-export", nargs=2, metavar=("SIZE", "PREFIX"))
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_export:
        export_child(int(args.child_export[0]), args.child_export[1], args.single)
        return
    import onnxruntime
    import openvino
    import torchvision

    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"detection_nms {now}; CPU: {cpu_line()}")
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, onnxruntime {onnxruntime.__version__}, "
          f"openvino {openvino.__version__}; {args.threads} threads everywhere, median of {args.rounds} interleaved "
          f"rounds; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    print(f"load average (1, 5, 15 min) at start: {', '.join(f'{v:.2f}' for v in os.getloadavg())} "
          "(a machine shared with other jobs: absolute times are inflated, ratios are side by side)")
    with tempfile.TemporaryDirectory(prefix="detection_nms_") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for size in args.sizes:
            bench(size, args, work)
    print(f"load average at end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
