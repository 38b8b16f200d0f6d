"""SSD's IoU-constrained random crop with its trials drawn and checked as one batch.

``torchvision.transforms.v2.RandomIoUCrop`` tries up to ``trials`` (40) crops one by one for each
sampled minimum IoU, with a dozen scalar tensor operations per trial. On small images whose objects
are much smaller than the image (``fashion-scenes``: items of 0.2-0.55 of a 128-pixel canvas) the high
IoU options (0.7, 0.9) almost never succeed, so one sample costs hundreds of trials: 8 of the 14 ms an
SSD training sample took (``benchmarks/results/det_train_speed.txt``).

:class:`BatchedRandomIoUCrop` keeps torchvision's procedure and its distribution: an option is drawn
as torchvision draws it, then all ``trials`` candidate crops of that option are drawn at once and the
first one that passes torchvision's checks, in trial order, is used; when none passes a new option is
drawn. Trials are independent and identically distributed, so the first passing trial of a drawn
batch has the distribution of the first passing trial of torchvision's loop (which draws a trial's
position only after its size passed, a draw that does not influence the size). The random stream is
consumed differently, so single samples differ from torchvision's for the same seed.
"""
from __future__ import annotations

from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.ops import box_iou
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F
from torchvision.transforms.v2._utils import get_bounding_boxes, query_size

__all__ = ["BatchedRandomIoUCrop", "first_valid_crop"]


def first_valid_crop(boxes: torch.Tensor, orig_h: int, orig_w: int, scale_r: torch.Tensor, pos_r: torch.Tensor,
                     min_scale: float, max_scale: float, min_aspect: float, max_aspect: float,
                     min_iou: float) -> dict[str, Any] | None:
    """The first of a batch of candidate crops that passes ``RandomIoUCrop``'s checks, or None.

    Parameters
    ----------
    boxes : Tensor
        (..., 4) XYXY boxes.
    orig_h, orig_w : int
        Image size.
    scale_r, pos_r : Tensor
        (T, 2) uniform [0, 1) draws per trial: width/height scale and left/top position, the two
        ``torch.rand(2)`` of torchvision's loop.
    min_scale, max_scale, min_aspect, max_aspect, min_iou : float
        ``RandomIoUCrop``'s limits and the drawn minimum IoU.

    Returns
    -------
    dict or None
        ``RandomIoUCrop``'s crop parameters (``top``, ``left``, ``height``, ``width``,
        ``is_within_crop_area``) of the first passing trial.
    """
    # the same float32 arithmetic as torchvision's scalar loop, one row per trial
    r = min_scale + (max_scale - min_scale) * scale_r
    new_w = (orig_w * r[:, 0]).long()
    new_h = (orig_h * r[:, 1]).long()
    aspect = new_w.double() / new_h.double()  # Python's int / int
    ok = (aspect >= min_aspect) & (aspect <= max_aspect)
    left = ((orig_w - new_w) * pos_r[:, 0]).long()
    top = ((orig_h - new_h) * pos_r[:, 1]).long()
    right, bottom = left + new_w, top + new_h
    ok &= (left != right) & (top != bottom)
    flat = boxes.reshape(-1, 4)
    cx = 0.5 * (flat[:, 0] + flat[:, 2])
    cy = 0.5 * (flat[:, 1] + flat[:, 3])
    # (T, G): which boxes have their center strictly inside each trial's crop
    within = ((left[:, None] < cx) & (cx < right[:, None]) & (top[:, None] < cy) & (cy < bottom[:, None]))
    ok &= within.any(dim=1)
    crops = torch.stack([left, top, right, bottom], 1).to(flat.dtype)
    iou = box_iou(flat, crops).T  # (T, G)
    best = torch.where(within, iou, torch.full_like(iou, -1.0)).amax(dim=1) if flat.shape[0] else \
        torch.full((crops.shape[0],), -1.0)
    ok &= best >= min_iou
    hits = ok.nonzero()
    if hits.numel() == 0:
        return None
    t = int(hits[0, 0])
    return dict(top=int(top[t]), left=int(left[t]), height=int(new_h[t]), width=int(new_w[t]),
                is_within_crop_area=within[t].reshape(boxes.shape[:-1]))


class BatchedRandomIoUCrop(v2.RandomIoUCrop):
    """``v2.RandomIoUCrop`` (same arguments, same crop distribution) with each option's trials batched.

    See the module docstring for why the distribution is the same. Crops are applied by
    ``RandomIoUCrop.transform`` itself.
    """

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        orig_h, orig_w = query_size(flat_inputs)
        bboxes = get_bounding_boxes(flat_inputs)
        xyxy = F.convert_bounding_box_format(bboxes.as_subclass(torch.Tensor), bboxes.format,
                                             tv_tensors.BoundingBoxFormat.XYXY)
        while True:
            idx = int(torch.randint(low=0, high=len(self.options), size=(1,)))
            min_iou = self.options[idx]
            if min_iou >= 1.0:  # torchvision's "leave as is" option
                return dict()
            params = first_valid_crop(xyxy, orig_h, orig_w, torch.rand(self.trials, 2), torch.rand(self.trials, 2),
                                      self.min_scale, self.max_scale, self.min_aspect_ratio, self.max_aspect_ratio,
                                      min_iou)
            if params is not None:
                return params
