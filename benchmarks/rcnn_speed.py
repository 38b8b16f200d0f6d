"""Faster R-CNN MobileNetV3-Large FPN inference speed: our eager / hybridized / exported paths vs torchvision.

Batch-1 inference at SxS (default 512), random weights (nothing downloaded), the same thread count
everywhere, variants interleaved (forward, then reversed, in turn) and the median per variant:

* ``torchvision eager``: ``torchvision.models.detection.fasterrcnn_mobilenet_v3_large_fpn`` called as a
  user calls it (its transform resizes SxS to SxS);
* ``ours torchvision_eval``: our model's modules through torchvision's per-image RPN / ``RoIHeads``
  (:meth:`~toolkit.cv.models.rcnn.FasterRCNN.torchvision_eval`, the reference our tests compare to);
* ``ours eager`` / ``ours hybridized``: our batched, fixed-shape eval path (hybridize: captured graph);
* with ``--base REV``: the same two with the proposal NMS ``_padded_nms`` of git revision ``REV``
  (the function's source read with ``git show``; nothing else of that revision is used);
* with ``--onnx PREFIX ...``: onnxruntime fp32 sessions of graphs written by ``toolkit export``
  (e.g. one from before and one from after a change, timed side by side).

The first lines check that the eager variants of ours give the same detections (the NMS change must
not change them). Ratios are ``torchvision eager / variant`` (above 1: faster).

    OMP_WAIT_POLICY=PASSIVE nice -n 5 python benchmarks/rcnn_speed.py --rounds 7 --base 20828ad \\
        | tee benchmarks/results/rcnn_speed.txt
"""
from __future__ import annotations

import argparse
import ast
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOOLKIT_AUTOTUNE_LAZY", "0")  # steady state: hybridize() tunes in the first call
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import torch  # noqa: E402

from _timing import cpu, load_text  # noqa: E402


def base_padded_nms(rev: str) -> Callable[..., Any]:
    """``_padded_nms`` as it was at git revision ``rev`` (its source only, run against today's imports)."""
    import torchvision.ops

    from toolkit.cv.models import rcnn

    text = subprocess.run(["git", "show", f"{rev}:toolkit/cv/models/rcnn.py"], cwd=REPO, check=True,
                          capture_output=True, text=True).stdout
    node = next(n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef) and n.name == "_padded_nms")
    namespace = {**vars(rcnn), "nms": torchvision.ops.nms}
    exec(compile(ast.Module([node], []), f"{rev}:rcnn.py", "exec"), namespace)  # noqa: S102
    return namespace["_padded_nms"]


def models(size: int):
    import torchvision

    from toolkit.zoo import get_model

    torch.manual_seed(0)
    tv = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_fpn(
        weights=None, weights_backbone=None, num_classes=91, min_size=size, max_size=size).eval()
    torch.manual_seed(0)
    ours = get_model("fasterrcnn_mobilenet_v3_large_fpn", data_shape=(size, size)).eval()
    return tv, ours


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--base", default=None, help="git revision whose _padded_nms is timed as 'base NMS' rows")
    ap.add_argument("--no-hybrid", action="store_true", help="skip the hybridized variants")
    ap.add_argument("--onnx", nargs="*", default=[], help="exported prefixes to time with onnxruntime fp32")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from toolkit.cv.models import rcnn

    model, name = cpu()
    print(f"rcnn_speed {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; CPU: {model} ({', '.join(name)}), "
          f"{os.cpu_count()} cores; torch {torch.__version__}; {args.threads} threads, batch 1, "
          f"{args.size}x{args.size}, median of {args.rounds} interleaved rounds")
    print(f"load average at start: {load_text()}")
    x = torch.rand(1, 3, args.size, args.size)
    tv, ours = models(args.size)
    new_nms = rcnn._padded_nms
    old_nms = base_padded_nms(args.base) if args.base else None

    def call(fn: Callable[[], Any], nms: Callable[..., Any] | None = None) -> Callable[[], Any]:
        def run():
            if nms is not None:
                rcnn._padded_nms = nms
            try:
                with torch.inference_mode():
                    return fn()
            finally:
                rcnn._padded_nms = new_nms
        return run

    fns: dict[str, Callable[[], Any]] = {
        "torchvision eager": call(lambda: tv([x[0]])),
        "ours torchvision_eval": call(lambda: ours.torchvision_eval(x)),
        "ours eager": call(lambda: ours(x)),
    }
    if old_nms is not None:
        fns["ours eager (base NMS)"] = call(lambda: ours(x), old_nms)
    # same detections: our batched path (new and base NMS) against torchvision's per-image path
    ref = fns["ours torchvision_eval"]()
    for key in [k for k in fns if k.startswith("ours eager")]:
        got = fns[key]()
        same = all(torch.equal(a, b) for a, b in zip(got, ref))
        close = all(torch.allclose(a, b, atol=1e-4) for a, b in zip(got, ref))
        print(f"{key} vs ours torchvision_eval: identical={same} allclose(1e-4)={close} "
              f"detections={int((got[0] >= 0).sum())}")
    # the proposals (random weights leave few or no final detections): ours against torchvision's RPN
    from torchvision.models.detection.image_list import ImageList

    with torch.inference_mode():
        feats = ours.feature_maps(x)
        ref_props = ours.rpn(ImageList(x, [tuple(x.shape[-2:])]), feats)[0][0]
        upper = x.new_tensor([args.size] * 4).view(1, 1, 4)
        for key, nms in (("new", new_nms), ("base", old_nms)):
            if nms is None:
                continue
            rcnn._padded_nms = nms
            boxes, valid = ours._proposals(x, feats, upper)
            rcnn._padded_nms = new_nms
            n = int(valid[0].sum())
            print(f"proposals ({key} NMS): {n} vs torchvision RPN's {ref_props.shape[0]}, identical="
                  f"{n == ref_props.shape[0] and torch.equal(boxes[0, :n], ref_props)}")
    if not args.no_hybrid:
        for key, nms in (("ours hybridized", None), ("ours hybridized (base NMS)", old_nms)):
            if key.endswith("(base NMS)") and nms is None:
                continue
            hyb = _hybrid_copy(ours, args.size)  # the base NMS (if any) is patched in during the capture
            tic = time.perf_counter()
            fn = call(lambda h=hyb: h(x), nms)
            got = fn()  # capture (and autotuning) here, outside the timings
            close = all(torch.allclose(a, b, atol=1e-3) for a, b in zip(got, ref))
            print(f"{key}: first call {time.perf_counter() - tic:.1f} s; allclose(1e-3) to torchvision_eval={close}")
            fns[key] = fn
    for prefix in args.onnx:
        from toolkit.deploy import load

        sess = load(prefix, num_threads=args.threads)
        xn = x.numpy()
        fns[f"onnxruntime fp32 {Path(prefix).name}"] = lambda s=sess: s(xn)

    times: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for _ in range(args.warmup):
        for k in names:
            fns[k]()
    for r in range(args.rounds):
        for k in (names if r % 2 == 0 else names[::-1]):
            tic = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - tic)
    base = statistics.median(times["torchvision eager"])
    print(f"{'variant':44s} {'ms':>8s}  vs torchvision  (min..max ms)")
    for k in names:
        med = statistics.median(times[k])
        print(f"{k:44s} {med * 1e3:8.1f}  {base / med:13.2f}x  ({min(times[k]) * 1e3:.0f}..{max(times[k]) * 1e3:.0f})")
    print(f"load average at end: {load_text()}")


def _hybrid_copy(ours: torch.nn.Module, size: int) -> torch.nn.Module:
    """A hybridized twin of ``ours`` (same weights), so ``ours`` itself stays eager."""
    torch.manual_seed(0)
    twin = models(size)[1]
    twin.load_state_dict(ours.state_dict())
    return twin.hybridize()


if __name__ == "__main__":
    main()
