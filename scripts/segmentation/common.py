"""Shared by ``scripts/segmentation/train.py`` and ``eval.py``: datasets, model building, evaluation loops."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from toolkit.cv.metrics import SegmentationMetric  # noqa: E402
from toolkit.cv.models.segmentation import MultiEvalModel, get_segmentation_model  # noqa: E402
from toolkit.cv.models.segmentation.factory import normalize_dataset  # noqa: E402
from toolkit.cv.presets.segmentation import (segmentation_testval, segmentation_train,  # noqa: E402
                                             segmentation_val)

#: ``--dataset`` values (GluonCV's names, plus the offline set).
DATASETS = ("pascal_voc", "pascal_aug", "ade20k", "citys", "coco", "fashion-scenes")
#: GluonCV's test scales.
MS_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)


def build_dataset(name: str, split: str, data_dir: str | None, scenes_kwargs: dict[str, Any] | None = None):
    """The untransformed dataset ``name`` (``split`` in GluonCV's names: train / val)."""
    from toolkit.cv.data import segmentation as seg

    if name == "pascal_voc":
        return seg.VOCSegmentation(data_dir, split)
    if name == "pascal_aug":
        return seg.VOCAugSegmentation(data_dir, split)
    if name == "ade20k":
        return seg.ADE20KSegmentation(data_dir, split)
    if name == "citys":
        return seg.CitySegmentation(data_dir, split)
    if name == "coco":
        return seg.COCOSegmentation(data_dir, split, min_mask_pixels=1000 if split == "train" else 0)
    if name == "fashion-scenes":
        return seg.FashionScenesSegmentation(split, root=data_dir, **(scenes_kwargs or {}))
    raise SystemExit(f"unknown --dataset {name!r}; use one of {', '.join(DATASETS)}")


class Subset(Dataset):
    def __init__(self, data, n: int | None):
        self.data, self.n = data, len(data) if not n else min(n, len(data))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        if i >= self.n:
            raise IndexError(i)
        return self.data[i]


class Mapped(Dataset):
    """Picklable ``(image, mask) -> preset(image, mask)``."""

    def __init__(self, data, fn):
        self.data, self.fn = data, fn

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i):
        return self.fn(*self.data[i])


def presets(args, num_class: int):
    train = segmentation_train(args.base_size, args.crop_size, num_class)
    val = segmentation_val(args.crop_size, num_class)
    testval = segmentation_testval(num_class)
    return train, val, testval


def build_model(args, num_class: int, classes, norm_layer=None):
    kwargs = json.loads(getattr(args, "model_kwargs", "{}") or "{}")
    kwargs.update(classes=num_class, base_size=args.base_size, crop_size=args.crop_size, class_names=list(classes))
    if args.model != "lraspp":
        kwargs["aux"] = bool(args.aux)
    if norm_layer is not None:
        kwargs["norm_layer"] = norm_layer
    try:
        model = get_segmentation_model(args.model, normalize_dataset(args.dataset), args.backbone, **kwargs)
    except (ValueError, TypeError) as err:
        raise SystemExit(f"cannot build --model {args.model} --backbone {args.backbone}: {err}") from err
    model.metadata["dataset"] = args.dataset
    return model


def model_name(args) -> str:
    return f"{args.model}_{args.backbone}_{args.dataset}".lower()


@torch.no_grad()
def evaluate_batches(model, loader, num_class: int, device, progress=None) -> tuple[float, float]:
    """Single-scale evaluation of ready batches: ``(pixAcc, mIoU)`` in percent."""
    metric = SegmentationMetric(num_class)
    model.eval()
    for x, y in (progress(loader) if progress else loader):
        out = model(x.to(device))
        metric.update(y, out.float().cpu())
    # every process evaluates the whole set (small next to training): no reduction
    pix, miou = metric.get()
    return 100.0 * pix, 100.0 * miou


@torch.no_grad()
def evaluate_multiscale(model, dataset, num_class: int, device, scales, flip: bool, progress=None
                        ) -> tuple[float, float]:
    """GluonCV's ``testval`` evaluation (whole images, :class:`MultiEvalModel`): ``(pixAcc, mIoU)`` in percent."""
    evaluator = MultiEvalModel(model, num_class, flip=flip, scales=scales)
    metric = SegmentationMetric(num_class)
    loader = DataLoader(dataset, batch_size=1, shuffle=False)
    for x, y in (progress(loader) if progress else loader):
        scores = evaluator(x.to(device))
        metric.update(y, scores.argmax(1).cpu())
    # every process evaluates the whole set (small next to training): no reduction
    pix, miou = metric.get()
    return 100.0 * pix, 100.0 * miou
