"""YOLOv3 presets (GluonCV's ``YOLO3DefaultTrainTransform`` / ``YOLO3DefaultValTransform``) on transforms v2.

Training: photometric distortion, random expand (mean-pixel canvas, up to 4x),
IoU-constrained random crop (each of the three can be left out), resize (or letterbox) to the input size,
horizontal flip; evaluation: resize (GluonCV's way) or letterbox (aspect kept,
padded with grey). Both return ``(float32 normalised image (3, height, width),
label float32 (N, 6))``; YOLOv3 targets are built batched in the model's code.
Random input sizes per batch (GluonCV's multi-scale training) come from
:class:`toolkit.data.MultiScaleSampler` with one preset per size.
"""
from __future__ import annotations

from collections.abc import Sequence

from torchvision.transforms import v2

from ._detection import IMAGENET_MEAN, IMAGENET_STD, DetectionPreset, Letterbox, check_size, random_steps

__all__ = ["YOLO3DefaultTrainTransform", "YOLO3DefaultValTransform", "Letterbox"]


def _fit(width: int, height: int, letterbox: bool) -> v2.Transform:
    return Letterbox((height, width)) if letterbox else v2.Resize((height, width), antialias=True)


class YOLO3DefaultTrainTransform(DetectionPreset):
    """YOLOv3 training augmentation.

    Parameters
    ----------
    width, height : int
        Network input size (e.g. 416, 416).
    mean, std : sequence of float
        Normalisation of pixels in [0, 1].
    letterbox : bool, default False
        Keep the aspect ratio and pad instead of stretching.
    expand_ratio : float, default 4.0
        Largest canvas side relative to the image for the random expand (1 turns it off).
    color_distort : bool, default True
        The photometric distortion (GluonCV's default).
    iou_crop : bool, default True
        The IoU-constrained random crop (GluonCV's default).

    Notes
    -----
    The same switches as :class:`~toolkit.cv.presets.ssd.SSDDefaultTrainTransform` (the steps are shared);
    all on is GluonCV's augmentation, all off leaves resize (or letterbox) and flip. Short from-scratch SSD
    runs learn much faster with the latter (``docs/training_attempts/2026-12-03/ssd_128_probes``); YOLOv3 was
    probed with it only (``docs/training_attempts/2026-12-03/yolo3_probes``).
    """

    def __init__(self, width: int, height: int, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, letterbox: bool = False, expand_ratio: float = 4.0,
                 color_distort: bool = True, iou_crop: bool = True) -> None:
        self.width, self.height = check_size(width, height)
        before, crop = random_steps(mean, expand_ratio, color_distort, iou_crop)
        after = [_fit(width, height, letterbox), v2.RandomHorizontalFlip(0.5)]
        super().__init__(before, crop, after, mean, std)


class YOLO3DefaultValTransform(DetectionPreset):
    """YOLOv3 evaluation: resize (or letterbox) to ``(height, width)`` and normalise.

    Parameters
    ----------
    width, height : int
        Network input size.
    mean, std : sequence of float
        Normalisation.
    letterbox : bool, default False
        Keep the aspect ratio and pad instead of stretching.
    """

    def __init__(self, width: int, height: int, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, letterbox: bool = False) -> None:
        self.width, self.height = check_size(width, height)
        super().__init__([], None, [_fit(width, height, letterbox)], mean, std)
