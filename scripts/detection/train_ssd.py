#!/usr/bin/env python
"""Train SSD (GluonCV's ``train_ssd.py`` flags)::

    python scripts/detection/train_ssd.py --network mobilenet1.0 --data-shape 512 --dataset voc --lr 0.001

See :mod:`_det_common` for the run folder's layout. Loss: :class:`~toolkit.cv.models.ssd.SSDMultiBoxLoss`
on targets from :class:`~toolkit.cv.models.ssd.SSDTargetGenerator` (matched on the model's anchors).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _det_common import augmentation_kwargs  # noqa: E402
from _det_common import main as _main  # noqa: E402

DEFAULTS = {"network": "vgg16_atrous", "data_shape": 300, "batch_size": 32, "epochs": 240, "lr": 0.001,
            "lr_decay_epoch": "160,200"}


def presets(args):
    from toolkit.cv.data.detection import detection_batchify
    from toolkit.cv.presets.ssd import SSDDefaultTrainTransform, SSDDefaultValTransform

    s = args.data_shape
    train = SSDDefaultTrainTransform(s, s, **augmentation_kwargs(args))
    return train, SSDDefaultValTransform(s, s), detection_batchify()


def loss_fn(model, x, labels, batch, args, epoch):
    from toolkit.cv.models.ssd import SSDMultiBoxLoss, SSDTargetGenerator

    cls_preds, box_preds, anchors = model(x)
    cls_t, box_t = SSDTargetGenerator()(anchors, labels)
    total, cls_loss, box_loss = SSDMultiBoxLoss()(cls_preds, box_preds, cls_t, box_t)
    return total.sum(), {"ce_loss": float(cls_loss.detach().sum()), "smoothl1_loss": float(box_loss.detach().sum())}


def main(argv=None):
    return _main("ssd", DEFAULTS, presets, loss_fn, argv)


if __name__ == "__main__":
    main()
