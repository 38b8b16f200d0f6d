#!/usr/bin/env python
"""Evaluate a trained detector (GluonCV's ``eval_ssd.py`` / ``eval_yolo.py`` / ``eval_faster_rcnn.py`` in one)::

    python scripts/detection/eval.py --network mobilenet1.0 --algorithm ssd --data-shape 512 \\
        --dataset fashion-scenes --pretrained params/ssd_mobilenet1.0_fashion-scenes/ssd_512_mobilenet1.0_voc.safetensors

Prints and returns VOC07 mAP@0.5 and, for COCO-format sets, COCO mAP@[.5:.95] (pycocotools), in percent.
The builder arguments (classes, backbone, YOLOv3 filters) are read from the training run's ``metrics.json`` next to the
weights when present.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _det_common as common  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Evaluate a zoo detector.")
    a = p.add_argument
    a("--algorithm", required=True, choices=["ssd", "yolo3", "faster_rcnn"])
    a("--network", required=True)
    a("--data-shape", type=int, default=512)
    a("--short", type=int, default=600)
    a("--max-size", type=int, default=1000)
    a("--use-fpn", action="store_true")
    a("--dataset", default="voc", choices=common.DATASETS)
    a("--dataset-root", default=None)
    a("--pretrained", required=True, help="safetensors file written by a training script")
    a("--batch-size", type=int, default=8)
    a("--num-workers", "-j", type=int, default=0)
    a("--max-val-samples", type=int, default=None)
    a("--num-threads", type=int, default=None)
    a("--hybridize", action="store_true", help="run the model hybridized (captured graph; on CPU the inference race "
      "also holds OpenVINO where it is installed)")
    return p


def main(argv=None) -> dict[str, float]:
    args = build_parser().parse_args(argv)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    weights = Path(args.pretrained)
    if not weights.is_file():
        raise SystemExit(f"--pretrained {weights}: no such file")
    args.max_train_samples = 1
    args.pretrained_base = "false"
    args.syncbn = False
    _, val_set = common.load_datasets(args)
    meta = weights.parent / "metrics.json"
    kwargs = json.loads(meta.read_text()).get("kwargs", {}) if meta.is_file() else {}
    args.filters = ",".join(str(f) for f in kwargs.get("filters", []))  # train_yolo3.py --filters
    from toolkit.zoo import load_weights

    extra = {k: v for k, v in kwargs.items() if k in ("anchor_sizes", "rpn_test")}  # the run's builder arguments
    model, _ = common.build_model(args, args.algorithm, kwargs.get("classes", list(val_set.classes)), extra)
    load_weights(model, weights)
    if args.hybridize:
        model.hybridize()
    family_presets = {"ssd": "train_ssd", "yolo3": "train_yolo3", "faster_rcnn": "train_faster_rcnn"}[args.algorithm]
    module = __import__(family_presets)
    _, val_tf, batchify = module.presets(args)
    loader = DataLoader(common._Transformed(val_set, val_tf), batch_size=args.batch_size, shuffle=False,
                        num_workers=args.num_workers, collate_fn=batchify)
    start = time.perf_counter()
    result = common.evaluate(model, loader, model.classes, val_set, args.algorithm, args)
    seconds = time.perf_counter() - start
    path = f", hybridized path {model.graph_memory_format}" if args.hybridize else ""
    print(f"evaluated {len(val_set)} images in {seconds:.1f} s{path}", file=sys.stderr)
    print(json.dumps({k: round(v, 2) for k, v in result.items()}))
    return result


if __name__ == "__main__":
    main()
