"""Faster R-CNN presets (GluonCV's ``FasterRCNNDefaultTrainTransform`` / ``...ValTransform``) on transforms v2.

Images keep their aspect ratio: the shorter side is resized to ``short``
(training: drawn uniformly from ``[short[0], short[1]]`` when a pair is given)
unless the longer side would exceed ``max_size``, in which case the longer
side is ``max_size``. Training adds a horizontal flip. Outputs have varying
sizes: batch them with ``detection_batchify(pad_images=True)``, which pads
images and returns their true sizes. RPN/RCNN sampling runs in the model's code.
"""
from __future__ import annotations

from collections.abc import Sequence

from torchvision.transforms import v2

from ._detection import IMAGENET_MEAN, IMAGENET_STD, DetectionPreset

__all__ = ["FasterRCNNDefaultTrainTransform", "FasterRCNNDefaultValTransform"]


def _check(short: int | Sequence[int], max_size: int) -> list[int]:
    sizes = [short] if isinstance(short, int) else list(short)
    if len(sizes) not in (1, 2) or not all(isinstance(s, int) and s > 0 for s in sizes):
        raise ValueError(f"short must be a positive int or a (low, high) pair, got {short!r}")
    if not isinstance(max_size, int) or max_size <= max(sizes):
        raise ValueError(f"max_size must be an int > short (torchvision's rule), got {max_size!r}")
    return list(range(sizes[0], sizes[-1] + 1))


class FasterRCNNDefaultTrainTransform(DetectionPreset):
    """Faster R-CNN training transform: random shorter-side resize within ``max_size``, flip, normalise.

    Parameters
    ----------
    short : int or (int, int), default 600
        Shorter side, or a range to draw it from.
    max_size : int, default 1000
        Cap on the longer side.
    mean, std : sequence of float
        Normalisation.
    flip_p : float, default 0.5
        Horizontal flip probability.
    """

    def __init__(self, short: int | Sequence[int] = 600, max_size: int = 1000, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, flip_p: float = 0.5) -> None:
        self.short, self.max_size = short, max_size
        sizes = _check(short, max_size)
        after = [v2.RandomShortestSize(sizes, max_size=max_size, antialias=True), v2.RandomHorizontalFlip(flip_p)]
        super().__init__([], None, after, mean, std)


class FasterRCNNDefaultValTransform(DetectionPreset):
    """Faster R-CNN evaluation transform: shorter side ``short`` within ``max_size``, normalise.

    Parameters
    ----------
    short : int, default 600
        Shorter side.
    max_size : int, default 1000
        Cap on the longer side.
    mean, std : sequence of float
        Normalisation.
    """

    def __init__(self, short: int = 600, max_size: int = 1000, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD) -> None:
        self.short, self.max_size = short, max_size
        if not isinstance(short, int):
            raise ValueError(f"short must be an int for evaluation, got {short!r}")
        _check(short, max_size)
        super().__init__([], None, [v2.Resize(short, max_size=max_size, antialias=True)], mean, std)
