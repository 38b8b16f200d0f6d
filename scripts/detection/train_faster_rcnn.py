#!/usr/bin/env python
"""Train Faster R-CNN (GluonCV's ``train_faster_rcnn.py`` flags)::

    python scripts/detection/train_faster_rcnn.py --network resnet50_v1b --dataset voc --lr 0.01 --batch-size 2
    python scripts/detection/train_faster_rcnn.py --network resnet50_v1b --use-fpn --dataset coco

Images keep their aspect ratio (shorter side ``--short``, longer at most ``--max-size``) and are padded
into a batch; RPN and R-CNN sampling, targets and losses run inside the model (torchvision's).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _det_common import main as _main  # noqa: E402

DEFAULTS = {"network": "resnet50_v1b", "batch_size": 2, "epochs": 20, "lr": 0.01, "lr_decay_epoch": "14,20"}


def presets(args):
    from toolkit.cv.data.detection import detection_batchify
    from toolkit.cv.presets.rcnn import FasterRCNNDefaultTrainTransform, FasterRCNNDefaultValTransform

    return (FasterRCNNDefaultTrainTransform(args.short, args.max_size),
            FasterRCNNDefaultValTransform(args.short, args.max_size),
            detection_batchify(pad_images=True, size_divisible=32))


def loss_fn(model, x, labels, batch, args, epoch):
    losses = model(x, labels, image_sizes=batch[2])
    total = sum(losses.values())
    names = {"loss_objectness": "rpn_conf", "loss_rpn_box_reg": "rpn_smoothl1", "loss_classifier": "rcnn_ce",
             "loss_box_reg": "rcnn_smoothl1"}
    return total, {names.get(k, k): float(v.detach()) for k, v in losses.items()}


def main(argv=None):
    return _main("faster_rcnn", DEFAULTS, presets, loss_fn, argv)


if __name__ == "__main__":
    main()
