"""SSD training step on fashion-scenes: the old per-sample path vs the new one (issue 12).

One training step of ``scripts/detection/train_ssd.py`` (``ssd_128_mobilenet0.25``, batch 16, one
thread, the training preset with ``expand_ratio``), split into stages:

* ``data``: reading the batch's images and boxes from the dataset;
* ``augment``: ``SSDDefaultTrainTransform`` on each sample, then the batch collation;
* ``forward``, ``targets`` (anchor matching), ``loss`` (hard negative mining 3:1 + smooth L1),
  ``backward``, ``optimizer`` (SGD, momentum).

``old`` is the path before issue 12: torchvision's ``RandomIoUCrop`` (one crop trial at a time) and
``SSDTargetGenerator(batched=False)`` (a Python loop over the images); ``new`` is
``BatchedRandomIoUCrop`` (all trials of an IoU option at once) and the batched matching. Both compute
the same targets and loss and draw crops from the same distribution
(``tests/cv/test_detection_train_speed.py``). Each round times one old and one new step on the same
batch indices (the order alternates between rounds, so the load of a shared machine hits both alike);
the numbers are medians over the rounds, and ``ratio`` is old / new.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=$PWD python benchmarks/det_train_speed.py [--rounds 20]``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torchvision.transforms import v2  # noqa: E402

from _timing import cpu, load_text  # noqa: E402

STAGES = ("data", "augment", "forward", "targets", "loss", "backward", "optimizer")


def build(args):
    from toolkit.cv.data import FashionScenes
    from toolkit.cv.data.detection import detection_batchify
    from toolkit.cv.models.ssd import SSDMultiBoxLoss, SSDTargetGenerator
    from toolkit.cv.presets.ssd import SSDDefaultTrainTransform
    from toolkit.zoo import get_model

    data = FashionScenes("train")
    new_tf = SSDDefaultTrainTransform(args.data_shape, args.data_shape, expand_ratio=args.expand_ratio)
    old_tf = SSDDefaultTrainTransform(args.data_shape, args.data_shape, expand_ratio=args.expand_ratio)
    old_tf.crop = v2.RandomIoUCrop()  # torchvision's one-trial-at-a-time loop, what the preset used before
    torch.manual_seed(0)
    model = get_model(f"ssd_{args.data_shape}_{args.network}_voc", classes=list(data.classes),
                      data_shape=args.data_shape)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)  # small lr: the weights barely move
    paths = {"old": (old_tf, SSDTargetGenerator(batched=False)), "new": (new_tf, SSDTargetGenerator())}
    return data, detection_batchify(), model, opt, SSDMultiBoxLoss(), paths


def step(data, batchify, model, opt, loss_fn, tf, targets, indices) -> dict[str, float]:
    """One timed training step; seconds per stage."""
    t = [time.perf_counter()]
    raw = [data[i] for i in indices]
    t.append(time.perf_counter())
    batch = batchify([tf(*r) for r in raw])
    x, labels = batch[0], batch[1]
    t.append(time.perf_counter())
    cls_preds, box_preds, anchors = model(x)
    t.append(time.perf_counter())
    cls_t, box_t = targets(anchors, labels)
    t.append(time.perf_counter())
    loss = loss_fn(cls_preds, box_preds, cls_t, box_t)[0].sum()
    t.append(time.perf_counter())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    t.append(time.perf_counter())
    opt.step()
    t.append(time.perf_counter())
    return {s: b - a for s, a, b in zip(STAGES, t, t[1:])}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--network", default="mobilenet0.25")
    p.add_argument("--data-shape", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--expand-ratio", type=float, default=1.5)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model_name, isa = cpu()
    print(f"# CPU: {model_name} ({', '.join(isa) or 'no AVX2'}); torch {torch.__version__}, {args.threads} thread(s)")
    print(f"# load average at start: {load_text()}")
    print(f"# ssd_{args.data_shape}_{args.network}, batch {args.batch_size}, expand_ratio {args.expand_ratio}, "
          f"{args.rounds} interleaved rounds after {args.warmup} warm-up")
    data, batchify, model, opt, loss_fn, paths = build(args)
    times: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    for r in range(args.warmup + args.rounds):
        indices = [(r * args.batch_size + i) % len(data) for i in range(args.batch_size)]
        for name in (("old", "new") if r % 2 == 0 else ("new", "old")):
            out = step(data, batchify, model, opt, loss_fn, *paths[name], indices)
            if r >= args.warmup:
                times[name].append(out)
    print(f"# load average at end: {load_text()}")
    print(f"{'stage (median ms)':20s} {'old':>9s} {'new':>9s} {'old/new':>8s}")
    for s in STAGES:
        old = statistics.median(t[s] for t in times["old"])
        new = statistics.median(t[s] for t in times["new"])
        print(f"{s:20s} {1e3 * old:9.1f} {1e3 * new:9.1f} {old / new:8.2f}")
    tot = {k: statistics.median(sum(t.values()) for t in v) for k, v in times.items()}
    print(f"{'step':20s} {1e3 * tot['old']:9.1f} {1e3 * tot['new']:9.1f} {tot['old'] / tot['new']:8.2f}")
    print(f"ratio old/new step time (median of {args.rounds} interleaved rounds): {tot['old'] / tot['new']:.2f}x")


if __name__ == "__main__":
    main()
