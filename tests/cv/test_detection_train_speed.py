"""The faster SSD training step computes what the slower one did.

* Batched anchor matching (``SSDTargetGenerator()``) gives the per-image loop's targets
  (``batched=False``) exactly, and so the same loss.
* ``BatchedRandomIoUCrop`` picks, from the same candidate draws, the crop torchvision's
  ``RandomIoUCrop`` loop picks, and its crops have the same distribution.
"""
from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors
from torchvision.ops import box_iou
from torchvision.transforms import v2

from toolkit.cv.models.ssd import SSDMultiBoxLoss, SSDTargetGenerator, _pairwise_iou, ssd_anchors
from toolkit.cv.presets._iou_crop import BatchedRandomIoUCrop, first_valid_crop


def _anchors() -> torch.Tensor:
    # the ssd_128 layout: 16x16 .. 1x1 maps, 1536 anchors
    ratios = [[1, 2, 0.5]] + [[1, 2, 0.5, 3, 1 / 3]] * 3 + [[1, 2, 0.5]] * 2
    return ssd_anchors([(16, 16), (8, 8), (4, 4), (2, 2), (1, 1), (1, 1)], [20, 36, 52, 68, 90, 110, 128], ratios,
                       [8, 16, 32, 64, 128, 128]).unsqueeze(0)


def _random_labels(gen: torch.Generator, batch: int, m: int, duplicates: bool) -> torch.Tensor:
    xy = torch.rand(batch, m, 2, generator=gen) * 110
    wh = torch.rand(batch, m, 2, generator=gen) * 70 - 6  # some degenerate (negative / zero size) boxes
    cls = torch.randint(-1, 10, (batch, m, 1), generator=gen).float()  # -1: padding rows
    lab = torch.cat([xy, xy + wh, cls, torch.zeros(batch, m, 1)], -1)
    if duplicates and m > 1:  # identical boxes share their best anchor: the later one must keep it
        lab[:, -1, :4] = lab[:, 0, :4]
        lab[:, -1, 4] = 3.0
        lab[:, 0, 4] = 7.0
    return lab


def test_pairwise_iou_is_box_iou():
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(50, 4, generator=gen) * 100
    a[:, 2:] += a[:, :2]
    b = torch.rand(7, 4, generator=gen) * 100
    b[:, 2:] += b[:, :2]
    assert torch.equal(_pairwise_iou(a, b), box_iou(a, b))


@pytest.mark.parametrize("seed", range(3))
def test_batched_targets_equal_per_image_targets(seed):
    gen = torch.Generator().manual_seed(seed)
    anchors = _anchors()
    for trial in range(15):  # few: with the suite's 2 threads on a shared machine each call is slow
        batch, m = int(torch.randint(1, 9, (1,), generator=gen)), int(torch.randint(1, 9, (1,), generator=gen))
        labels = _random_labels(gen, batch, m, duplicates=trial % 2 == 0)
        want = SSDTargetGenerator(batched=False)(anchors, labels)
        got = SSDTargetGenerator()(anchors, labels)
        assert torch.equal(got[0], want[0]), (seed, trial)
        assert torch.equal(got[1], want[1]), (seed, trial)
        assert (got[0] > 0).any() or not ((labels[..., 4] >= 0) & (labels[..., 2] > labels[..., 0])
                                          & (labels[..., 3] > labels[..., 1])).any()


def test_shared_best_anchor_goes_to_the_later_box():
    anchors = _anchors()
    box = [30.0, 30.0, 70.0, 70.0]
    labels = torch.tensor([[box + [2.0, 0.0], box + [5.0, 0.0]]])
    for gen in (SSDTargetGenerator(), SSDTargetGenerator(batched=False)):
        cls_t, _ = gen(anchors, labels)
        best = int(box_iou(torch.tensor([box]), torchvision_corners(anchors)).argmax())
        assert int(cls_t[0, best]) == 6  # class 5 + 1: the later row


def torchvision_corners(anchors: torch.Tensor) -> torch.Tensor:
    import torchvision

    return torchvision.ops.box_convert(anchors.reshape(-1, 4), "cxcywh", "xyxy")


def test_batched_targets_without_boxes():
    anchors = _anchors()
    for labels in (torch.full((3, 4, 6), -1.0), torch.zeros(2, 0, 6)):
        for gen in (SSDTargetGenerator(), SSDTargetGenerator(batched=False)):
            cls_t, box_t = gen(anchors, labels)
            assert cls_t.shape == (labels.shape[0], 1536) and not cls_t.any() and not box_t.any()


def test_loss_on_batched_targets_equals_per_image_loss():
    gen = torch.Generator().manual_seed(5)
    anchors = _anchors()
    labels = _random_labels(gen, 6, 5, duplicates=True)
    cls_preds = torch.randn(6, 1536, 11, generator=gen)
    box_preds = torch.randn(6, 1536, 4, generator=gen)
    loss = SSDMultiBoxLoss()
    want = loss(cls_preds, box_preds, *SSDTargetGenerator(batched=False)(anchors, labels))
    got = loss(cls_preds, box_preds, *SSDTargetGenerator()(anchors, labels))
    for g, w in zip(got, want):
        assert torch.equal(g, w)


# ------------------------------------------------------------------------------------------- IoU crop
def _loop_crop(boxes, orig_h, orig_w, scale_r, pos_r, min_iou, lo=0.3, hi=1.0, amin=0.5, amax=2.0):
    """torchvision's ``RandomIoUCrop.make_params`` trial loop for one option, fed the given draws."""
    for t in range(scale_r.shape[0]):
        r = lo + (hi - lo) * scale_r[t]
        new_w, new_h = int(orig_w * r[0]), int(orig_h * r[1])
        if not (amin <= new_w / new_h <= amax):
            continue
        r = pos_r[t]
        left, top = int((orig_w - new_w) * r[0]), int((orig_h - new_h) * r[1])
        right, bottom = left + new_w, top + new_h
        if left == right or top == bottom:
            continue
        cx = 0.5 * (boxes[..., 0] + boxes[..., 2])
        cy = 0.5 * (boxes[..., 1] + boxes[..., 3])
        within = (left < cx) & (cx < right) & (top < cy) & (cy < bottom)
        if not within.any():
            continue
        ious = box_iou(boxes[within], torch.tensor([[left, top, right, bottom]], dtype=boxes.dtype))
        if ious.max() < min_iou:
            continue
        return dict(top=top, left=left, height=new_h, width=new_w, is_within_crop_area=within)
    return None


def test_first_valid_crop_is_torchvisions_choice():
    gen = torch.Generator().manual_seed(1)
    found = 0
    for trial in range(300):
        n = int(torch.randint(1, 7, (1,), generator=gen))
        xy = torch.rand(n, 2, generator=gen) * 140
        boxes = torch.cat([xy, xy + 10 + torch.rand(n, 2, generator=gen) * 80], 1)
        h, w = int(torch.randint(100, 260, (1,), generator=gen)), int(torch.randint(100, 260, (1,), generator=gen))
        trials = int(torch.randint(1, 41, (1,), generator=gen))
        scale_r, pos_r = torch.rand(trials, 2, generator=gen), torch.rand(trials, 2, generator=gen)
        min_iou = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9][trial % 6]
        want = _loop_crop(boxes, h, w, scale_r, pos_r, min_iou)
        got = first_valid_crop(boxes, h, w, scale_r, pos_r, 0.3, 1.0, 0.5, 2.0, min_iou)
        assert (got is None) == (want is None), trial
        if want is not None:
            found += 1
            assert {k: got[k] for k in ("top", "left", "height", "width")} == \
                {k: want[k] for k in ("top", "left", "height", "width")}, trial
            assert torch.equal(got["is_within_crop_area"], want["is_within_crop_area"])
    assert 30 < found < 300  # both outcomes were exercised


def test_batched_iou_crop_has_torchvisions_distribution():
    # a fashion-scenes-like canvas: small items on a 128-pixel image, where high IoU options rarely succeed
    image = tv_tensors.Image(torch.zeros(3, 128, 128, dtype=torch.uint8))
    boxes = tv_tensors.BoundingBoxes([[10, 12, 40, 50], [60, 70, 115, 120], [80, 5, 110, 30]], format="XYXY",
                                     canvas_size=(128, 128))
    stats = {}
    for name, crop in (("torchvision", v2.RandomIoUCrop()), ("batched", BatchedRandomIoUCrop())):
        torch.manual_seed(0)
        areas, kept = [], 0
        for _ in range(400):
            out_image, _ = crop(image, {"boxes": boxes})
            a = out_image.shape[-1] * out_image.shape[-2] / 128 ** 2
            kept += a == 1.0
            areas.append(a)
        areas_t = torch.tensor(areas)
        stats[name] = (float(areas_t.mean()), float(areas_t.std()) / 20, kept / 400)
    (m1, se1, k1), (m2, se2, k2) = stats["torchvision"], stats["batched"]
    assert abs(m1 - m2) < 4 * (se1 ** 2 + se2 ** 2) ** 0.5, stats
    # the "leave as is" option is drawn 1/7 of the time (plus rare full-size crops)
    assert abs(k1 - k2) < 0.08, stats
