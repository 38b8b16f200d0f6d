"""Faster R-CNN's batched eval path (exportable) against torchvision's per-image RPN/RoIHeads, and hybridize."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from toolkit.zoo import get_model

torch.set_num_threads(2)

SMALL = {
    "c4": ("faster_rcnn_resnet50_v1b_voc", {"backbone": "resnet18_v1b", "rpn_test": (120, 24)}),
    "fpn": ("faster_rcnn_fpn_resnet50_v1b_voc", {"backbone": "resnet18_v1b", "rpn_test": (150, 60)}),
}


def _small(kind: str) -> nn.Module:
    """A small C4 or FPN detector, Kaiming convolutions and spread BatchNorm statistics (distinct scores)."""
    name, kw = SMALL[kind]
    torch.manual_seed(0)
    net = get_model(name, classes=["a", "b", "c"], post_nms=25, **kw)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for pname, p in net.named_parameters():
            if pname.endswith("weight") and p.dim() == 4:
                p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / p[0].numel()) ** 0.5)
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) * 1.5 + 0.5)
        net.roi_heads.box_predictor.cls_score.weight.normal_(0, 0.05, generator=gen)
    return net.eval()


def _images(n: int = 2, size=(96, 128)) -> torch.Tensor:
    gen = torch.Generator().manual_seed(3)
    return nn.functional.interpolate(torch.rand(n, 3, 8, 8, generator=gen), size=size, mode="bicubic")


def _rows(out, i: int) -> torch.Tensor:
    """Image ``i``'s real detections as ``[score, id, box]`` rows in a canonical order (ties may swap)."""
    ids, scores, boxes = out
    keep = ids[i, :, 0] >= 0
    rows = torch.cat([scores[i, keep], ids[i, keep], boxes[i, keep]], 1)
    for col in reversed(range(rows.shape[1])):  # lexicographic sort, score first
        rows = rows[torch.sort(rows[:, col], stable=True, descending=col == 0).indices]
    return rows


@pytest.mark.parametrize("kind", ["c4", "fpn"])
def test_batched_eval_equals_torchvision(kind):
    net = _small(kind)
    x = _images()
    with torch.no_grad():
        ours, ref = net(x), net.torchvision_eval(x)
        sizes = torch.tensor([[96, 128], [80, 100]])  # a padded batch: clip to each image's own size
        ours_p, ref_p = net(x, image_sizes=sizes), net.torchvision_eval(x, image_sizes=sizes)
    for a, b in ((ours, ref), (ours_p, ref_p)):
        assert a[0].shape == (2, 25, 1) and a[2].shape == (2, 25, 4)
        for i in range(2):
            got, want = _rows(a, i), _rows(b, i)
            assert want.shape[0] >= 3
            torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-5)
        assert bool((a[2][a[0][..., 0] < 0] == -1).all())
    assert float(ours_p[2][1, :, 2].max()) <= 100 and float(ours_p[2][1, :, 3].max()) <= 80


def test_no_detections_is_all_padding():
    net = _small("c4")
    net.roi_heads.score_thresh = 1.0  # scores are at most 1: nothing passes
    with torch.no_grad():
        ids, scores, boxes = net(_images())
    assert bool((ids == -1).all()) and bool((scores == -1).all()) and bool((boxes == -1).all())


def test_export_metadata_comes_from_the_roi_heads():
    from toolkit.cv.deploy import prepare_detection_export

    net = _small("fpn")
    meta = prepare_detection_export(net).metadata["detection"]
    assert (meta["nms_thresh"], meta["score_thresh"], meta["post_nms"]) == (0.5, 0.05, 25)
    net.nms_thresh, net.post_nms = 0.4, 10  # settable like SSD/YOLO's attributes
    assert (net.roi_heads.nms_thresh, net.roi_heads.detections_per_img) == (0.4, 10)


@pytest.mark.slow
def test_hybridize_equals_eager():
    net = _small("c4")
    x = _images()
    with torch.no_grad():
        ref = net(x)
        net.hybridize(autotune=False)
        out = net(x)
        assert net.graph is not None
        one = net(x[1:])  # another batch size
    for i in range(2):  # the captured graph rounds differently (boxes ~2e-3 px apart)
        torch.testing.assert_close(_rows(out, i), _rows(ref, i), atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(_rows(one, 0), _rows(ref, 1), atol=1e-3, rtol=1e-4)
    # each image's true size inside a padded batch (scripts/detection/eval.py): no graph takes it (it bounds
    # the RoI pooling by tensor values), so the call runs eagerly instead of failing to capture
    sizes = torch.tensor([[96, 128], [80, 100]])
    with torch.no_grad():
        padded = net(x, image_sizes=sizes)
        net.hybridize(active=False)
        want = net(x, image_sizes=sizes)
    for i in range(2):
        torch.testing.assert_close(_rows(padded, i), _rows(want, i))


@pytest.mark.parametrize("kind", ["c4", "fpn"])
def test_proposals_equal_torchvision_rpn(kind):
    """The batched proposal NMS (a grouped_nms group per image and level) keeps torchvision's proposals
    exactly, in torchvision's order (one NMS over offset-shifted boxes differed by rounding)."""
    from torchvision.models.detection.image_list import ImageList

    net = _small(kind)
    x = _images()
    with torch.no_grad():
        feats = net.feature_maps(x)
        upper = x.new_tensor([x.shape[-1], x.shape[-2]] * 2).view(1, 1, 4)
        boxes, valid = net._proposals(x, feats, upper)
        ref, _ = net.rpn(ImageList(x, [tuple(x.shape[-2:])] * 2), feats)
    for i in range(2):
        n = int(valid[i].sum())
        assert n == ref[i].shape[0] >= 5 and bool(valid[i, :n].all())
        assert torch.equal(boxes[i, :n], ref[i])
