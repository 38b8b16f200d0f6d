"""SSD presets (GluonCV's ``SSDDefaultTrainTransform`` / ``SSDDefaultValTransform``) on transforms v2.

Training: photometric distortion, random expand (zoom out onto a canvas filled
with the mean pixel, up to 4x), IoU-constrained random crop, resize to the
network's input, horizontal flip; evaluation: resize. Both return
``(float32 normalised image (3, height, width), label float32 (N, 6))`` with
GluonCV's label layout; SSD anchor matching runs batched in the model's code.
"""
from __future__ import annotations

from collections.abc import Sequence

from torchvision.transforms import v2

from ._detection import IMAGENET_MEAN, IMAGENET_STD, DetectionPreset, check_size, random_steps

__all__ = ["SSDDefaultTrainTransform", "SSDDefaultValTransform"]


class SSDDefaultTrainTransform(DetectionPreset):
    """SSD training augmentation.

    Parameters
    ----------
    width, height : int
        Network input size (e.g. 300, 300).
    mean, std : sequence of float
        Normalisation of pixels in [0, 1] (ImageNet's by default, as GluonCV).
    expand_ratio : float, default 4.0
        Largest canvas side relative to the image for the random expand (1 turns it off).
    color_distort : bool, default True
        The photometric distortion (GluonCV's default).
    iou_crop : bool, default True
        The IoU-constrained random crop (GluonCV's default).

    Notes
    -----
    All steps on is GluonCV's training augmentation. Short from-scratch schedules learn much faster
    with less of it: on ``fashion-scenes`` (SSD-128, MobileNet 0.25, 300 steps) resize + flip reached
    a 200-image VOC07 mAP several times that of the full set of steps
    (``docs/training_attempts/2026-12-03/ssd_128_probes``).
    """

    def __init__(self, width: int, height: int, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, expand_ratio: float = 4.0, color_distort: bool = True,
                 iou_crop: bool = True) -> None:
        self.width, self.height = check_size(width, height)
        before, crop = random_steps(mean, expand_ratio, color_distort, iou_crop)
        after = [v2.Resize((height, width), antialias=True), v2.RandomHorizontalFlip(0.5)]
        super().__init__(before, crop, after, mean, std)


class SSDDefaultValTransform(DetectionPreset):
    """SSD evaluation: resize to ``(height, width)`` and normalise.

    Parameters
    ----------
    width, height : int
        Network input size.
    mean, std : sequence of float
        Normalisation.
    """

    def __init__(self, width: int, height: int, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD) -> None:
        self.width, self.height = check_size(width, height)
        super().__init__([], None, [v2.Resize((height, width), antialias=True)], mean, std)
