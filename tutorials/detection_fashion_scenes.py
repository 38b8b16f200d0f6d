"""Train, evaluate and draw an object detector on the offline ``fashion-scenes`` set.

The whole loop in plain PyTorch with the toolkit's pieces:

1. the dataset (``toolkit.cv.data.FashionScenes``: Fashion-MNIST items pasted on textured canvases, built
   once from Debian's ``dataset-fashion-mnist`` files into COCO format under ``$TOOLKIT_DATA``);
2. the SSD presets (``toolkit.cv.presets.ssd``: photometric distortion, zoom out, IoU crop, flip) and
   ``detection_batchify`` (labels padded with -1);
3. a zoo SSD (``ssd_512_mobilenet1.0_voc`` re-headed for the 10 classes, any zoo classifier as backbone);
4. its target generator and loss (anchor matching, 3:1 hard negative mining);
5. VOC07 mAP@0.5 and COCO mAP@[.5:.95] (``toolkit.cv.metrics``);
6. detections drawn with ``toolkit.cv.utils.plot_bbox``.

Run from the repository root::

    python tutorials/detection_fashion_scenes.py            # the full set, 20 epochs (hours on a shared CPU)
    python tutorials/detection_fashion_scenes.py --tiny     # a minute (what the tests run)

For every option (resume, DDP, schedules, YOLOv3, Faster R-CNN) use ``scripts/detection/train_*.py``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from toolkit.cv.data import FashionScenes, build_fashion_scenes  # noqa: E402
from toolkit.cv.data.detection import detection_batchify  # noqa: E402
from toolkit.cv.metrics.detection import COCODetectionMetric, VOC07MApMetric  # noqa: E402
from toolkit.cv.models.ssd import SSDMultiBoxLoss, SSDTargetGenerator  # noqa: E402
from toolkit.cv.presets.ssd import SSDDefaultTrainTransform, SSDDefaultValTransform  # noqa: E402
from toolkit.cv.utils import plot_bbox  # noqa: E402
from toolkit.zoo import get_model  # noqa: E402


def evaluate(model, loader, val_set, size: int) -> dict[str, float]:
    voc = VOC07MApMetric(iou_thresh=0.5, class_names=list(val_set.classes))
    coco = COCODetectionMetric(val_set, data_shape=size)  # boxes scaled back to each image's own size
    model.eval()
    with torch.inference_mode():
        for x, labels in loader:
            ids, scores, boxes = model(x)  # GluonCV's (B, 100, 1), (B, 100, 1), (B, 100, 4), -1 padded
            voc.update(boxes, ids, scores, labels[..., :4], labels[..., 4], labels[..., 5])
            coco.update(boxes, ids, scores)
    return {"voc07_map": 100 * voc.get()[1][-1], "coco_map": 100 * coco.get()[1][0]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", default=os.environ.get("TOOLKIT_TUTORIAL_TINY") == "1",
                   help="a tiny set (24 canvases), 64-pixel inputs and 2 epochs (also: TOOLKIT_TUTORIAL_TINY=1)")
    p.add_argument("--workdir", default="tutorial_detection", help="where the plot (and the tiny set) go")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--backbone", default="mobilenet0.25", help="any zoo classifier")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)

    # 1. data: the tiny run builds its own small set; the full one uses $TOOLKIT_DATA/fashion_scenes
    root = build_fashion_scenes(work / "scenes", num_train=16, num_val=8, num_workers=1) if args.tiny else None
    train_set, val_set = FashionScenes("train", root), FashionScenes("val", root)
    size = 64 if args.tiny else 128
    epochs = args.epochs or (2 if args.tiny else 20)

    # 2. presets and batches
    train_loader = DataLoader(train_set.transform(SSDDefaultTrainTransform(size, size)), batch_size=8,
                              shuffle=True, drop_last=True, collate_fn=detection_batchify())
    val_loader = DataLoader(val_set.transform(SSDDefaultValTransform(size, size)), batch_size=8,
                            collate_fn=detection_batchify())

    # 3. the model, re-headed for the set's classes
    model = get_model("ssd_512_mobilenet1.0_voc", backbone=args.backbone)
    model.reset_class(list(train_set.classes))

    # 4. training
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    targets, criterion = SSDTargetGenerator(), SSDMultiBoxLoss()
    losses = []
    for epoch in range(epochs):
        model.train()
        for x, labels in train_loader:
            cls_preds, box_preds, anchors = model(x)
            loss = criterion(cls_preds, box_preds, *targets(anchors, labels))[0].sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        print(f"epoch {epoch + 1}/{epochs}: loss {sum(losses[-len(train_loader):]) / len(train_loader):.3f}")

    # 5. evaluation
    result = evaluate(model, val_loader, val_set, size)
    print(f"VOC07 mAP@0.5 {result['voc07_map']:.2f}, COCO mAP@[.5:.95] {result['coco_map']:.2f}")

    # 6. draw the detections of the first validation image
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image, _ = val_set[0]
    x, _ = SSDDefaultValTransform(size, size)(*val_set[0])
    model.eval()
    with torch.inference_mode():
        ids, scores, boxes = model(x[None])
    scale = torch.tensor([image.shape[2] / size, image.shape[1] / size] * 2)
    ax = plot_bbox(image, boxes[0] * scale, scores[0], ids[0], thresh=0.3, class_names=list(val_set.classes))
    out = work / "detections.png"
    ax.figure.savefig(out)
    plt.close(ax.figure)
    print(f"detections drawn in {out}")
    return {**result, "losses": losses, "plot": str(out)}


if __name__ == "__main__":
    main()
