#!/usr/bin/env python
"""Train YOLOv3 (GluonCV's ``train_yolo3.py`` flags)::

    python scripts/detection/train_yolo3.py --network darknet53 --data-shape 416 --dataset voc --lr 0.001

``--mixup``: each batch is blended with itself reversed (ratio drawn from Beta(1.5, 1.5)), the boxes of
both images kept with their blend weight as objectness target (GluonCV's detection mixup), switched off
for the last ``--no-mixup-epochs``. ``--label-smooth`` smooths the class targets. ``--expand-ratio 1
--no-color-distort --no-iou-crop`` leave resize and flip of GluonCV's augmentation (as in ``train_ssd.py``).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _det_common import augmentation_kwargs  # noqa: E402
from _det_common import main as _main  # noqa: E402

DEFAULTS = {"network": "darknet53", "data_shape": 416, "batch_size": 64, "epochs": 200, "lr": 0.001,
            "lr_decay_epoch": "160,180"}


def presets(args):
    from toolkit.cv.data.detection import detection_batchify
    from toolkit.cv.presets.yolo import YOLO3DefaultTrainTransform, YOLO3DefaultValTransform

    s = args.data_shape
    train = YOLO3DefaultTrainTransform(s, s, **augmentation_kwargs(args))
    return train, YOLO3DefaultValTransform(s, s), detection_batchify()


def _mixup(x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    lam = float(np.random.beta(1.5, 1.5))
    mixed = lam * x + (1 - lam) * x.flip(0)
    a = torch.cat([labels[..., :6], torch.full_like(labels[..., :1], lam)], -1)
    b = torch.cat([labels.flip(0)[..., :6], torch.full_like(labels[..., :1], 1 - lam)], -1)
    return mixed, torch.cat([a, b], 1)


def loss_fn(model, x, labels, batch, args, epoch):
    from toolkit.cv.models.yolo import YOLOV3Loss, YOLOV3TargetGenerator

    if args.mixup and epoch < args.epochs - args.no_mixup_epochs:
        x, labels = _mixup(x, labels)
    out = model(x)
    net = model.module if hasattr(model, "module") else model
    targets = YOLOV3TargetGenerator(net.num_class, label_smooth=args.label_smooth)(out, labels, tuple(x.shape[-2:]))
    obj, center, scale, cls = YOLOV3Loss()(out, *targets)
    b = x.shape[0]
    total = (obj + center + scale + cls).sum() / b
    return total, {"obj_loss": float(obj.detach().sum()) / b, "center_loss": float(center.detach().sum()) / b,
                   "scale_loss": float(scale.detach().sum()) / b, "cls_loss": float(cls.detach().sum()) / b}


def main(argv=None):
    return _main("yolo3", DEFAULTS, presets, loss_fn, argv)


if __name__ == "__main__":
    main()
