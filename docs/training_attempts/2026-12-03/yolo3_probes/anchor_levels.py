"""Which of GluonCV's nine YOLOv3 anchors (416-px pixels; 0-2 stride 8, 3-5 stride 16, 6-8 stride 32) is the best
shape for each fashion-scenes val box at 128 px (the rule ``YOLOV3TargetGenerator`` assigns boxes by).

Usage: ``PYTHONPATH=. python anchor_levels.py [instances_val.json]``. Output of 2026-12-03:
3489 boxes, sides 8-70 px (median 35 x 39); best anchor counts {3: 1081, 2: 878, 4: 852, 1: 645, 0: 33}
(none at stride 32); best shape IoU 5/50/95 % quantiles 0.52 / 0.67 / 0.88.
"""
from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

import torch
from torchvision.ops import box_iou

from toolkit.cv.models.yolo import YOLO_ANCHORS

path = sys.argv[1] if len(sys.argv) > 1 else Path.home() / ".toolkit/datasets/fashion_scenes/annotations/instances_val.json"
boxes = json.loads(Path(path).read_text())["annotations"]
wh = torch.tensor([b["bbox"][2:] for b in boxes], dtype=torch.float32)
print(len(wh), "boxes; w, h quantiles 0/10/50/90/100 %",
      torch.quantile(wh, torch.tensor([0, .1, .5, .9, 1.]), dim=0).T.tolist())
anchors = torch.tensor(sum(YOLO_ANCHORS, []), dtype=torch.float32).reshape(-1, 2)
best = box_iou(torch.cat([-wh / 2, wh / 2], 1), torch.cat([-anchors / 2, anchors / 2], 1)).max(1)
print("best anchor counts", dict(collections.Counter(best.indices.tolist())))
print("best shape IoU 5/50/95 %", torch.quantile(best.values, torch.tensor([.05, .5, .95])).tolist())
