#!/usr/bin/env python
"""Evaluate a segmentation model (GluonCV's ``scripts/segmentation/test.py``).

``--mode testval`` (default): whole images through :class:`MultiEvalModel`,
single scale by default, ``--ms`` for GluonCV's scales with flips
(``--test-scales``); ``--mode val``: centre crops of ``--crop-size``, batched.
``--eval`` prints and writes pixAcc/mIoU (percent); without it (GluonCV's
default), predictions are saved as palette PNGs into ``--outdir``::

    python scripts/segmentation/eval.py --model fcn --backbone resnet18_v1s --dataset fashion-scenes \\
        --weights runs/fcn18/fcn_resnet18_v1s_fashion-scenes.safetensors --base-size 128 --crop-size 112 --eval --ms
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.segmentation.common import (  # noqa: E402
    DATASETS,
    MS_SCALES,
    Mapped,
    Subset,
    build_dataset,
    build_model,
    evaluate_batches,
    evaluate_multiscale,
    presets,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Evaluate a segmentation model.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a = p.add_argument
    a("--model", default="fcn", choices=["fcn", "psp", "deeplab", "lraspp"])
    a("--backbone", default="resnet50")
    a("--model-kwargs", default="{}")
    a("--dataset", default="pascal_voc", choices=DATASETS)
    a("--data-dir", default=None)
    a("--scenes-kwargs", default="{}")
    a("--split", default="val")
    a("--mode", default="testval", choices=["testval", "val"])
    a("--aux", action="store_true", help="the weights hold an auxiliary head")
    a("--base-size", type=int, default=520)
    a("--crop-size", type=int, default=480)
    a("--weights", default=None, help="safetensors weights (train.py's output)")
    a("--resume", default=None, help="a train.py checkpoint instead of --weights (GluonCV's flag)")
    a("--eval", action="store_true", help="compute pixAcc/mIoU (else save predictions to --outdir)")
    a("--ms", action="store_true", help="multi-scale + flip testing (GluonCV's MultiEvalModel scales)")
    a("--test-scales", default=",".join(str(s) for s in MS_SCALES))
    a("--no-flip", action="store_true")
    a("--batch-size", type=int, default=16, help="--mode val batches")
    a("--max-val-samples", type=int, default=None)
    a("--outdir", default="outdir", help="where predictions go without --eval")
    a("--metrics-out", default=None, help="write the metrics as JSON here")
    a("--num-threads", type=int, default=None)
    a("--device", default="auto")
    a("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    raw = build_dataset(args.dataset, args.split, args.data_dir, json.loads(args.scenes_kwargs))
    classes, num_class = raw.classes, raw.num_class
    raw = Subset(raw, args.max_val_samples)
    model = build_model(args, num_class, classes)
    if args.weights:
        from toolkit.zoo import load_weights

        load_weights(model, args.weights)
    elif args.resume:
        sys.path.insert(0, str(ROOT))
        from scripts.common import load_checkpoint

        load_checkpoint(args.resume, model, restore_rng=False)
    else:
        raise SystemExit("give --weights FILE or --resume CHECKPOINT")
    model = model.to(device).eval()
    _, val_tf, testval_tf = presets(args, num_class)
    scales = [float(s) for s in args.test_scales.split(",") if s.strip()] if args.ms else [1.0]
    flip = args.ms and not args.no_flip
    from tqdm import tqdm

    progress = (lambda it: tqdm(it, file=sys.stderr, leave=False)) if not args.no_progress else None  # noqa: E731
    if args.eval:
        if args.mode == "val":
            loader = DataLoader(Mapped(raw, val_tf), batch_size=args.batch_size, shuffle=False)
            pix, miou = evaluate_batches(model, loader, num_class, device, progress)
        else:
            pix, miou = evaluate_multiscale(model, Mapped(raw, testval_tf), num_class, device, scales, flip, progress)
        result = {"pixAcc": round(pix, 2), "mIoU": round(miou, 2), "mode": args.mode, "scales": scales, "flip": flip,
                  "images": len(raw), "dataset": args.dataset}
        print(json.dumps(result))
        if args.metrics_out:
            Path(args.metrics_out).write_text(json.dumps(result, indent=2) + "\n")
        return result
    from toolkit.cv.models.segmentation import MultiEvalModel
    from toolkit.cv.utils import get_color_pallete

    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    evaluator = MultiEvalModel(model, num_class, flip=flip, scales=scales)
    palette = "ade20k" if args.dataset == "ade20k" else "citys" if args.dataset == "citys" else "pascal_voc"
    data = Mapped(raw, testval_tf)
    for i in range(len(data)):
        x, _ = data[i]
        pred = evaluator(x[None].to(device)).argmax(1)[0].cpu()
        get_color_pallete(pred.numpy(), palette).save(out / f"{i:06d}.png")
    print(f"wrote {len(data)} predictions to {out}")
    return {"outdir": str(out), "images": len(data)}


if __name__ == "__main__":
    main()
