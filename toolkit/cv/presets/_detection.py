"""Pieces shared by the detection presets (SSD, YOLOv3, R-CNN).

A preset is called as ``preset(image, target)`` on a detection item (see
:mod:`toolkit.cv.data.detection`) and returns ``(image, label)``: a float32
normalised tensor (3, h, w) and a float32 tensor (N, 6) in GluonCV's layout
``[x1, y1, x2, y2, class_id, difficult]``, boxes in the output image's pixels.
The augmentation is ``torchvision.transforms.v2``'s, which moves boxes and
masks with the pixels.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from toolkit.cv.data.detection import to_gluoncv_label

from ._iou_crop import BatchedRandomIoUCrop
from .classification import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["DetectionPreset", "Letterbox", "box_labels", "random_steps", "IMAGENET_MEAN", "IMAGENET_STD"]


def box_labels(inputs: Any) -> tuple[torch.Tensor, ...]:
    """``labels_getter`` for ``v2.SanitizeBoundingBoxes``: the per-box tensors of a target.

    Labels, difficult flags and mixup weights are dropped together with the boxes they
    belong to (masks are filtered by torchvision itself). A module-level
    function, so presets pickle into DataLoader workers.
    """
    target = inputs[1] if isinstance(inputs, (tuple, list)) and len(inputs) > 1 else inputs
    if not isinstance(target, dict):
        raise TypeError("detection presets expect (image, target dict) samples")
    return tuple(target[k] for k in ("labels", "difficult", "mixup_weight") if k in target)


def random_steps(mean: Sequence[float], expand_ratio: float = 4.0, color_distort: bool = True,
                 iou_crop: bool = True) -> tuple[list[v2.Transform], Any | None]:
    """The random steps before the resize shared by the SSD and YOLOv3 training presets.

    GluonCV's ``SSDDefaultTrainTransform`` and ``YOLO3DefaultTrainTransform`` run the same chain
    (photometric distortion, zoom-out onto a mean-pixel canvas, IoU-constrained crop); each step can be
    left out here because short from-scratch runs learn much faster without them
    (``docs/training_attempts/2026-12-03/ssd_128_probes``).

    Parameters
    ----------
    mean : sequence of float
        Normalisation mean (pixels in [0, 1]); the zoom-out canvas is filled with it.
    expand_ratio : float, default 4.0
        Largest canvas side relative to the image for the random zoom-out (1 or less turns it off).
    color_distort : bool, default True
        The photometric distortion.
    iou_crop : bool, default True
        The IoU-constrained random crop.

    Returns
    -------
    (list of v2 transforms, crop or None)
        The ``before`` steps and the ``crop`` of :class:`DetectionPreset`.
    """
    before: list[v2.Transform] = [v2.RandomPhotometricDistort(p=0.5)] if color_distort else []
    if expand_ratio > 1.0:
        before.append(v2.RandomZoomOut(fill={tv_tensors.Image: mean_fill(mean), "others": 0},
                                       side_range=(1.0, float(expand_ratio)), p=0.5))
    return before, BatchedRandomIoUCrop() if iou_crop else None


class Letterbox(v2.Transform):
    """Resize keeping the aspect ratio so the image fits ``size``, then pad to exactly ``size``.

    Boxes and masks follow the image. Written here because
    ``torchvision.transforms.v2`` has no letterbox transform. The image is
    centred; padding uses ``fill`` (masks are padded with 0).

    Parameters
    ----------
    size : (int, int)
        Output (height, width).
    fill : int or sequence, default 114
        Padding value of the image (uint8 scale; YOLO's grey).
    """

    def __init__(self, size: int | Sequence[int], fill: float | Sequence[float] = 114) -> None:
        super().__init__()
        self.size = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.fill = fill

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        h, w = v2.query_size(flat_inputs)
        oh, ow = self.size
        scale = min(oh / h, ow / w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        top, left = (oh - nh) // 2, (ow - nw) // 2
        return {"resize": [nh, nw], "padding": [left, top, ow - nw - left, oh - nh - top]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not isinstance(inpt, (tv_tensors.Image, tv_tensors.BoundingBoxes, tv_tensors.Mask)):
            return inpt
        out = self._call_kernel(F.resize, inpt, size=params["resize"], antialias=True)
        fill = 0 if isinstance(inpt, tv_tensors.Mask) else self.fill
        return self._call_kernel(F.pad, out, padding=params["padding"], fill=fill)


class DetectionPreset:
    """Run ``transforms`` on ``(image, target)``, then convert to ``(normalised image, GluonCV label)``.

    ``crop`` (an IoU crop) runs only for samples that have boxes: an IoU
    constraint means nothing without boxes, and torchvision's crop needs some.

    Parameters
    ----------
    before, after : list of v2 transforms
        Geometric/photometric steps before and after the crop.
    crop : v2 transform, optional
        The IoU crop.
    mean, std : sequence of float
        Normalisation (of pixels scaled to [0, 1]).
    """

    def __init__(self, before: list, crop: Any | None, after: list,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        self.before = v2.Compose(before) if before else None
        self.crop = crop
        self.after = v2.Compose([*after, v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(labels_getter=box_labels)])
        self.finish = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, image: Any, target: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(target, dict) or "boxes" not in target:
            raise TypeError("a detection preset is called as preset(image, target) with a target dict holding "
                            f"'boxes' and 'labels', got {type(target).__name__}")
        if isinstance(image, torch.Tensor) and not isinstance(image, tv_tensors.Image):
            image = tv_tensors.Image(image)
        if image.ndim != 3 or image.shape[0] != 3 or image.shape[1] == 0 or image.shape[2] == 0:
            raise ValueError(f"a detection preset needs a (3, H, W) image with H, W > 0, got {tuple(image.shape)}")
        target = dict(target)
        target.setdefault("difficult", torch.zeros(len(target["labels"]), dtype=torch.bool))
        sample = (image, target)
        if self.before is not None:
            sample = self.before(*sample)
        if self.crop is not None and len(sample[1]["boxes"]):
            sample = self.crop(*sample)
        image, target = self.after(*sample)
        return self.finish(image).as_subclass(torch.Tensor), torch.from_numpy(to_gluoncv_label(target))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(before={self.before}, crop={self.crop}, after={self.after})"


def check_size(width: int, height: int) -> tuple[int, int]:
    if not all(isinstance(v, int) and v > 0 for v in (width, height)):
        raise ValueError(f"width and height must be positive ints, got {width!r}, {height!r}")
    return width, height


def mean_fill(mean: Sequence[float]) -> list[float]:
    """The mean pixel on the uint8 scale (GluonCV fills expanded canvases with it)."""
    return [round(m * 255) for m in mean]
