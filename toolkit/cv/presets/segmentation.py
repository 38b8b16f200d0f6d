"""Transform presets for semantic segmentation (GluonCV's ``SegmentationDataset`` transforms), on ``transforms.v2``.

Each preset takes ``(image, mask)`` as the datasets of
:mod:`toolkit.cv.data.segmentation` return them (uint8 ``tv_tensors.Image``
(3, H, W), ``tv_tensors.Mask`` (H, W) with 255 ignored), transforms both
jointly (images bilinear, masks nearest) and returns ``(float32 normalised
image (3, h, w), int64 target (h, w))`` with ignored pixels -1
(:func:`toolkit.cv.data.segmentation.mask_to_target`).

* :func:`segmentation_train` (GluonCV's ``_sync_transform``): random long side
  in ``[int(0.5 * base_size), int(2.0 * base_size)]`` (aspect kept), pad
  bottom/right up to ``crop_size`` (image 0, mask 255 ignored; GluonCV padded
  the mask with 0, background, which the issue asks to ignore instead), random
  ``crop_size`` crop, horizontal flip (p 0.5), Gaussian blur (p 0.5, sigma in
  [0.1, 1]; GluonCV: PIL radius in [0, 1)). An image smaller than the crop is
  therefore padded, never an error.
* :func:`segmentation_val` (``_val_sync_transform``): short side to
  ``crop_size``, centre crop ``crop_size``.
* :func:`segmentation_testval` (``testval`` mode): the whole image, normalised only.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from ..data.segmentation import IGNORE_LABEL, mask_to_target
from .classification import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["PadBottomRight", "RandomScaleLongSide", "ResizeShortSide", "SegmentationPreset",
           "segmentation_testval", "segmentation_train", "segmentation_val"]


def _size(flat_inputs: list[Any]) -> tuple[int, int]:
    return tuple(v2.query_size(flat_inputs))  # type: ignore[return-value]


def _resize(t: v2.Transform, inpt: Any, size: list[int]) -> Any:
    # Masks: "nearest-exact" samples pixel centres as the bilinear image resize does (plain "nearest",
    # v2's default for masks, is shifted by half a pixel, which misaligns masks by one pixel when shrinking).
    mode = v2.InterpolationMode.NEAREST_EXACT if isinstance(inpt, tv_tensors.Mask) else v2.InterpolationMode.BILINEAR
    return t._call_kernel(TF.resize, inpt, size=size, interpolation=mode, antialias=True)


class RandomScaleLongSide(v2.Transform):
    """Resize so the long side is a random integer in ``[low, high]``, keeping the aspect ratio (GluonCV's rounding)."""

    def __init__(self, low: int, high: int) -> None:
        super().__init__()
        if not 0 < low <= high:
            raise ValueError(f"need 0 < low <= high, got {low}, {high}")
        self.low, self.high = int(low), int(high)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        h, w = _size(flat_inputs)
        long_size = int(torch.randint(self.low, self.high + 1, ()).item())
        if h > w:
            oh, ow = long_size, int(1.0 * w * long_size / h + 0.5)
        else:
            oh, ow = int(1.0 * h * long_size / w + 0.5), long_size
        return {"size": [max(oh, 1), max(ow, 1)]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return _resize(self, inpt, params["size"])


class ResizeShortSide(v2.Transform):
    """Resize so the short side is ``size`` (GluonCV's val rounding: the long side truncated)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = int(size)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        h, w = _size(flat_inputs)
        if w > h:
            return {"size": [self.size, int(1.0 * w * self.size / h)]}
        return {"size": [int(1.0 * h * self.size / w), self.size]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return _resize(self, inpt, params["size"])


class PadBottomRight(v2.Transform):
    """Pad bottom and right up to ``size`` (images with 0, masks with the ignore label)."""

    def __init__(self, size: int, fill_image: float = 0, fill_mask: int = IGNORE_LABEL) -> None:
        super().__init__()
        self.size = int(size)
        self.fill = {tv_tensors.Image: fill_image, tv_tensors.Mask: fill_mask}

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        h, w = _size(flat_inputs)
        return {"padding": [0, 0, max(self.size - w, 0), max(self.size - h, 0)]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not any(params["padding"]):
            return inpt
        fill = self.fill.get(type(inpt), 0)
        return self._call_kernel(TF.pad, inpt, padding=params["padding"], fill=fill, padding_mode="constant")


def _as_tensor(x: Any) -> torch.Tensor:
    """A tensor from a tensor, a PIL image ((C,) H, W) or an array."""
    if isinstance(x, torch.Tensor):
        return x
    if hasattr(x, "mode") and hasattr(x, "size"):  # PIL image
        return TF.pil_to_tensor(x)
    return torch.as_tensor(x)


class SegmentationPreset:
    """``(image, mask) -> (normalised float image, int64 target with -1 ignored)`` around a joint v2 pipeline.

    Checks first that image and mask are of the same size (a clear ``ValueError``
    naming both sizes instead of an error deep inside the transforms), and, with
    ``num_class``, that the mask holds only classes and the ignore label.
    """

    def __init__(self, joint: v2.Transform, num_class: int | None = None,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        self.joint = joint
        self.num_class = num_class
        self.finish = v2.Compose([v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
                                  v2.Normalize(list(mean), list(std))])

    def __call__(self, image: Any, mask: Any) -> tuple[torch.Tensor, torch.Tensor]:
        image = tv_tensors.Image(_as_tensor(image))
        mask = _as_tensor(mask)
        mask = tv_tensors.Mask(mask[0] if mask.dim() == 3 and mask.shape[0] == 1 else mask)
        if tuple(image.shape[-2:]) != tuple(mask.shape[-2:]):
            raise ValueError(f"mask of size {tuple(mask.shape[-2:])} (H, W) does not match its image of size "
                             f"{tuple(image.shape[-2:])}")
        if self.num_class is not None:
            mask_to_target(mask, self.num_class)  # raises for values outside the classes
        image, mask = self.joint(image, mask)
        image = self.finish(image)
        return image.as_subclass(torch.Tensor), mask_to_target(mask)


def segmentation_train(base_size: int = 520, crop_size: int = 480, num_class: int | None = None, blur: bool = True,
                       mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> SegmentationPreset:
    """GluonCV's training transform (see the module notes)."""
    steps: list[v2.Transform] = [
        RandomScaleLongSide(int(base_size * 0.5), int(base_size * 2.0)),
        PadBottomRight(crop_size),
        v2.RandomCrop(crop_size),
        v2.RandomHorizontalFlip(),
    ]
    if blur:
        steps.append(v2.RandomApply([v2.GaussianBlur(5, sigma=(0.1, 1.0))], p=0.5))
    return SegmentationPreset(v2.Compose(steps), num_class, mean, std)


def segmentation_val(crop_size: int = 480, num_class: int | None = None, mean: Sequence[float] = IMAGENET_MEAN,
                     std: Sequence[float] = IMAGENET_STD) -> SegmentationPreset:
    """GluonCV's validation transform: short side to ``crop_size``, centre crop."""
    return SegmentationPreset(v2.Compose([ResizeShortSide(crop_size), v2.CenterCrop(crop_size)]), num_class, mean, std)


def segmentation_testval(num_class: int | None = None, mean: Sequence[float] = IMAGENET_MEAN,
                         std: Sequence[float] = IMAGENET_STD) -> SegmentationPreset:
    """The whole image, normalised (GluonCV's ``testval`` mode, for :class:`MultiEvalModel`)."""
    return SegmentationPreset(v2.Identity(), num_class, mean, std)
