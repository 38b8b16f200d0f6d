"""Train, evaluate and draw a semantic segmentation model on the offline fashion-scenes set.

The whole loop in plain PyTorch with the toolkit's pieces:

1. the set: Fashion-MNIST items on textured canvases, written once in COCO
   format by ``toolkit.cv.data.build_fashion_scenes`` (from Debian's
   ``dataset-fashion-mnist``; nothing is downloaded) and read as per-pixel class
   masks by ``FashionScenesSegmentation`` (background 0, the ten classes 1-10);
2. GluonCV's joint image+mask presets (``toolkit.cv.presets.segmentation``:
   random scale, pad with the ignore label, crop, flip; ignored pixels become -1);
3. a zoo model: LR-ASPP on MobileNetV3-Large (``--model fcn`` for FCN on a
   dilated ResNet-18 v1s with its auxiliary head);
4. ``MixSoftmaxCrossEntropyLoss`` with the poly learning-rate schedule, one JSON line per epoch;
5. pixAcc / mIoU (``toolkit.cv.metrics.SegmentationMetric``), single-scale and
   multi-scale with flips (``MultiEvalModel``);
6. a picture: the prediction overlaid on a validation image (``toolkit.cv.utils.plot_mask``).

Run from the repository root::

    python tutorials/segmentation_fashion_scenes.py           # 2000 canvases, 20 epochs (hours on a shared CPU)
    python tutorials/segmentation_fashion_scenes.py --tiny    # a minute (what the tests run)

For every option (resume, DDP, multi-scale evaluation of saved weights) use
``scripts/segmentation/train.py`` and ``eval.py``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.common import JSONLinesLogger, LRSchedule  # noqa: E402
from toolkit.cv.data import FashionScenesSegmentation, build_fashion_scenes  # noqa: E402
from toolkit.cv.metrics import SegmentationMetric  # noqa: E402
from toolkit.cv.models.segmentation import MixSoftmaxCrossEntropyLoss, MultiEvalModel  # noqa: E402
from toolkit.cv.presets.segmentation import segmentation_testval, segmentation_train  # noqa: E402
from toolkit.cv.utils import plot_mask  # noqa: E402
from toolkit.zoo import get_model  # noqa: E402


class Joint(torch.utils.data.Dataset):
    """Apply a joint ``(image, mask)`` preset to a dataset's items."""

    def __init__(self, data, preset):
        self.data, self.preset = data, preset

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        return self.preset(*self.data[i])


def evaluate(model, data, num_class: int, scales=(1.0,), flip: bool = False) -> tuple[float, float]:
    """pixAcc and mIoU in percent over whole validation images."""
    evaluator = MultiEvalModel(model, num_class, flip=flip, scales=scales)
    metric = SegmentationMetric(num_class)
    for i in range(len(data)):
        x, y = data[i]
        metric.update(y[None], evaluator(x[None]).argmax(1))
    pix, miou = metric.get()
    return 100 * pix, 100 * miou


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", default=os.environ.get("TOOLKIT_TUTORIAL_TINY") == "1",
                   help="a few dozen small canvases and 2 epochs (also: TOOLKIT_TUTORIAL_TINY=1)")
    p.add_argument("--model", default="lraspp", choices=["lraspp", "fcn"])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--out", default="tutorial_output", help="folder for the log and the picture")
    args = p.parse_args()
    torch.manual_seed(0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # 1. the offline set (built once; later runs reuse it)
    size, epochs, batch = 128, args.epochs, 16
    build = {"num_train": 2000, "num_val": 200, "image_size": size}
    if args.tiny:
        size, epochs, batch = 48, 2, 8
        build = {"num_train": 32, "num_val": 4, "image_size": size}
    folder = build_fashion_scenes(**build)
    train_set, val_set = FashionScenesSegmentation("train", root=folder), FashionScenesSegmentation("val", root=folder)
    num_class = train_set.num_class
    print(f"{train_set}\n{val_set}\nclasses: {train_set.classes}")

    # 2. joint presets: GluonCV's base/crop sizes scaled to the canvases
    crop = size - size // 8
    train_loader = DataLoader(Joint(train_set, segmentation_train(base_size=size, crop_size=crop, num_class=num_class)),
                              batch_size=batch, shuffle=True, drop_last=True)
    val_data = Joint(val_set, segmentation_testval(num_class))

    # 3. the model
    if args.model == "lraspp":
        model = get_model("lraspp_mobilenet_v3_large", classes=num_class, base_size=size, crop_size=crop)
    else:
        model = get_model("fcn_resnet50_voc", backbone="resnet18_v1s", classes=num_class, aux=True, base_size=size,
                          crop_size=crop)
    model.metadata["classes"] = list(train_set.classes)

    # 4. loss, optimiser, poly schedule; one JSON line per epoch
    criterion = MixSoftmaxCrossEntropyLoss(aux=model.aux, aux_weight=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, LRSchedule("poly", epochs * len(train_loader), power=0.9))
    log_path = out / "log.jsonl"
    log_path.unlink(missing_ok=True)
    with JSONLinesLogger(log_path) as log:
        for epoch in range(epochs):
            model.train()
            tic, total, seen = time.time(), 0.0, 0
            for x, y in train_loader:
                loss = criterion(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
                total += float(loss.detach()) * len(y)
                seen += len(y)
            pix, miou = evaluate(model, val_data, num_class)
            rec = log.log(kind="epoch", epoch=epoch, loss=total / seen, val_pixAcc=pix, val_mIoU=miou,
                          epoch_time_s=time.time() - tic)
            log.info(f"epoch {epoch + 1}/{epochs}: loss {rec['loss']:.3f}, val pixAcc {pix:.2f}%, mIoU {miou:.2f}%")

    # 5. multi-scale + flip evaluation (GluonCV's MultiEvalModel)
    ms = evaluate(model, val_data, num_class, scales=(0.75, 1.0, 1.25), flip=True)
    print(f"multi-scale + flip: pixAcc {ms[0]:.2f}%, mIoU {ms[1]:.2f}%")

    # 6. the picture: the prediction over the first validation canvas
    image, _ = val_set[0]
    x, _ = val_data[0]
    model.eval()
    with torch.no_grad():
        pred = model(x[None]).argmax(1)[0]
    plot_mask(image, pred, out / "overlay.png", title=f"{args.model} prediction", classes=list(train_set.classes))
    print(f"overlay: {out / 'overlay.png'}")
    print(json.dumps({"pixAcc": round(pix, 2), "mIoU": round(miou, 2), "ms_pixAcc": round(ms[0], 2),
                      "ms_mIoU": round(ms[1], 2)}))


if __name__ == "__main__":
    main()
