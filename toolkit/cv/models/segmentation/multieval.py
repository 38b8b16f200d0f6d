"""GluonCV's ``MultiEvalModel``: multi-scale, flipped, sliding-window evaluation of a segmentation model."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..._blocks import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["MultiEvalModel"]


class MultiEvalModel:
    """Score maps of a segmentation model summed over scales, with horizontal flips.

    GluonCV's algorithm: for each scale the image's long side is resized to
    ``ceil(base_size * scale)``; when that fits in ``crop_size`` the image is
    padded (bottom/right, with normalised black) and scored whole, otherwise
    scored in ``crop_size`` windows at stride ``2/3 * crop_size``, overlaps
    averaged. Each window's score is ``exp(logits(x) + flip(logits(flip(x))))``
    (GluonCV's ``flip_inference``; accumulated in float64, so it does not
    overflow); each scale's score map is resized to the input's size and added.

    Parameters
    ----------
    module : SegBaseModel
        The model (put in eval mode here).
    nclass : int
        Number of classes.
    flip : bool
        Add the horizontally flipped image's scores.
    scales : sequence of float
        GluonCV's test scales (its default ``0.5 ... 1.75``).
    base_size, crop_size : int, optional
        Default: the model's.
    mean, std : sequence of float
        Normalisation of the input (pads are ``-mean/std``, black).
    batch_pixels : int
        Windows of one scale (and their flips) go through the model stacked, as
        many per call as fit in this many input pixels (at least one): GluonCV
        scores them one by one, which at small crops leaves most of a CPU's time
        in per-call overhead. Eval-mode models score each window the same either way.
    """

    def __init__(self, module: nn.Module, nclass: int, flip: bool = True,
                 scales: Sequence[float] = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75), base_size: int | None = None,
                 crop_size: int | None = None, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, batch_pixels: int = 1 << 20) -> None:
        if not scales:
            raise ValueError("scales must hold at least one scale")
        if batch_pixels < 1:
            raise ValueError(f"batch_pixels must be positive, got {batch_pixels}")
        self.module = module
        self.nclass = int(nclass)
        self.flip = bool(flip)
        self.scales = [float(s) for s in scales]
        self.base_size = int(base_size or getattr(module, "base_size", 520))
        self.crop_size = int(crop_size or getattr(module, "crop_size", 480))
        self.align_corners = bool(getattr(module, "align_corners", True))
        self.pad_value = [-m / s for m, s in zip(mean, std)]
        self.batch_pixels = int(batch_pixels)

    def _resize(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=self.align_corners)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        ph, pw = max(self.crop_size - x.shape[2], 0), max(self.crop_size - x.shape[3], 0)
        if ph == 0 and pw == 0:
            return x
        return torch.cat([F.pad(x[:, c:c + 1], (0, pw, 0, ph), value=v) for c, v in enumerate(self.pad_value)], 1)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        out = self.module(x)
        return (out[0] if isinstance(out, (tuple, list)) else out).double()

    def flip_inference(self, x: torch.Tensor) -> torch.Tensor:
        """``exp(logits(x) [+ flip(logits(flip(x)))])``, float64, for a stack of equal-size windows."""
        copies = 2 if self.flip else 1
        per_call = max(1, self.batch_pixels // (copies * x.shape[2] * x.shape[3]))
        outs = []
        for chunk in x.split(per_call):
            if self.flip:
                both = self._logits(torch.cat([chunk, chunk.flip(3)]))
                outs.append(both[:len(chunk)] + both[len(chunk):].flip(3))
            else:
                outs.append(self._logits(chunk))
        return torch.cat(outs).exp()

    @torch.no_grad()
    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """Scores (N, nclass, H, W), float64, for a normalised batch (N, 3, H, W); argmax over dim 1 predicts."""
        if not isinstance(image, torch.Tensor) or image.dim() != 4:
            raise ValueError(f"MultiEvalModel takes a normalised (N, 3, H, W) batch, got "
                             f"{getattr(image, 'shape', type(image).__name__)}")
        self.module.eval()
        n, _, h, w = image.shape
        crop, stride = self.crop_size, int(self.crop_size * 2.0 / 3.0)
        scores = image.new_zeros((n, self.nclass, h, w), dtype=torch.float64)
        for scale in self.scales:
            long_size = int(math.ceil(self.base_size * scale))
            if h > w:
                height, width = long_size, int(1.0 * w * long_size / h + 0.5)
                short_size = width
            else:
                height, width = int(1.0 * h * long_size / w + 0.5), long_size
                short_size = height
            cur = self._resize(image, height, width)
            if long_size <= crop:
                out = self.flip_inference(self._pad(cur))[:, :, :height, :width]
            else:
                padded = self._pad(cur) if short_size < crop else cur
                ph, pw = padded.shape[2:]
                out = padded.new_zeros((n, self.nclass, ph, pw), dtype=torch.float64)
                count = padded.new_zeros((n, 1, ph, pw), dtype=torch.float64)
                boxes = [(ih * stride, iw * stride, min(ih * stride + crop, ph), min(iw * stride + crop, pw))
                         for ih in range(int(math.ceil((ph - crop) / stride)) + 1)
                         for iw in range(int(math.ceil((pw - crop) / stride)) + 1)]
                # every window padded to crop x crop: one stack, window-major (n images per window)
                wins = self.flip_inference(torch.cat([self._pad(padded[:, :, h0:h1, w0:w1])
                                                      for h0, w0, h1, w1 in boxes]))
                for (h0, w0, h1, w1), win in zip(boxes, wins.split(n)):
                    out[:, :, h0:h1, w0:w1] += win[:, :, :h1 - h0, :w1 - w0]
                    count[:, :, h0:h1, w0:w1] += 1
                out = (out / count)[:, :, :height, :width]
            scores += self._resize(out, h, w)
        return scores
