"""Detection model zoo: output contract, training outputs and losses, reset_class, hybridize, converters."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from toolkit.cv.models.detection import fixed_detections
from toolkit.cv.models.ssd import SSDMultiBoxLoss, SSDTargetGenerator
from toolkit.cv.models.yolo import YOLOV3Loss, YOLOV3TargetGenerator
from toolkit.zoo import get_model, list_models

torch.set_num_threads(2)

DETECTORS = [
    "ssd_300_vgg16_atrous_voc", "ssd_300_vgg16_atrous_coco", "ssd_512_resnet50_v1_voc", "ssd_512_resnet50_v1_coco",
    "ssd_512_mobilenet1.0_voc", "ssd_512_mobilenet1.0_coco", "ssd_128_mobilenet0.25_voc", "ssd_128_mobilenet0.25_coco",
    "ssdlite320_mobilenet_v3_large",
    "yolo3_darknet53_voc", "yolo3_darknet53_coco", "yolo3_mobilenet1.0_voc", "yolo3_mobilenet1.0_coco",
    "yolo3_mobilenet0.25_voc", "yolo3_mobilenet0.25_coco", "faster_rcnn_mobilenet0.25_voc", "faster_rcnn_mobilenet0.25_coco",
    "faster_rcnn_resnet50_v1b_voc", "faster_rcnn_resnet50_v1b_coco", "faster_rcnn_fpn_resnet50_v1b_coco",
    "faster_rcnn_fpn_resnet50_v1b_voc", "fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_mobilenet_v3_large_320_fpn",
]
# the light ones run on every test run; the others (VGG-16, ResNet-50, Darknet-53 bodies) are marked slow
LIGHT = {"ssd_512_mobilenet1.0_voc", "ssd_128_mobilenet0.25_voc", "ssdlite320_mobilenet_v3_large", "yolo3_mobilenet1.0_voc",
         "fasterrcnn_mobilenet_v3_large_320_fpn", "faster_rcnn_mobilenet0.25_voc"}


def _labels(batch: int = 2) -> torch.Tensor:
    """GluonCV labels padded with -1: two boxes in image 0, none in image 1."""
    lab = torch.full((batch, 3, 6), -1.0)
    lab[0, 0] = torch.tensor([4.0, 6.0, 40.0, 50.0, 1.0, 0.0])
    lab[0, 1] = torch.tensor([30.0, 20.0, 60.0, 62.0, 0.0, 0.0])
    return lab


def _check_contract(out, batch: int, num_class: int) -> None:
    ids, scores, boxes = out
    assert ids.shape[0] == scores.shape[0] == boxes.shape[0] == batch
    k = ids.shape[1]
    assert ids.shape == (batch, k, 1) and scores.shape == (batch, k, 1) and boxes.shape == (batch, k, 4)
    assert ids.dtype == scores.dtype == boxes.dtype == torch.float32
    valid = ids[..., 0] >= 0
    # padding is -1 everywhere, together; real rows have a class, a score in (0, 1] and ordered corners
    assert torch.equal(valid, scores[..., 0] >= 0)
    assert bool((boxes[~valid] == -1).all()) and bool((ids[~valid] == -1).all())
    assert bool((ids[valid] < num_class).all()) and bool((ids[valid] == ids[valid].round()).all())
    assert bool((scores[valid] <= 1).all())
    assert bool((boxes[valid][:, 2:] >= boxes[valid][:, :2]).all())
    for b in range(batch):  # best first, real rows before padding
        n = int(valid[b].sum())
        assert bool(valid[b, :n].all())
        if n > 1:
            assert bool((scores[b, 1:n, 0] <= scores[b, :n - 1, 0]).all())


def test_detectors_registered():
    names = set(list_models(task="detection"))
    assert set(DETECTORS) <= names
    assert "darknet53" in list_models(task="classification") and "vgg16" in list_models(task="classification")


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n in LIGHT else pytest.mark.slow) for n in DETECTORS])
def test_output_contract(name):
    torch.manual_seed(0)
    net = get_model(name).eval()
    size = 300 if "vgg16" in name else 96
    with torch.no_grad():
        out = net(torch.randn(2, 3, size, size))
    _check_contract(out, 2, net.num_class)
    assert net.metadata["task"] == "detection" and net.metadata["classes"] == list(net.classes)
    expected = 80 if name.endswith("_coco") else 20 if name.endswith("_voc") else None
    if expected:
        assert net.num_class == expected


def test_ssd_anchors_match_gluoncv_counts():
    # SSD-300: 38^2*4 + 19^2*6 + 10^2*6 + 5^2*6 + 3^2*4 + 1*4 = 8732 anchors, the paper's number
    net = get_model("ssd_300_vgg16_atrous_voc", classes=["a"]).train()
    cls, box, anchors = net(torch.randn(1, 3, 300, 300))
    assert cls.shape == (1, 8732, 2) and box.shape == (1, 8732, 4) and anchors.shape == (1, 8732, 4)
    # first anchor: center (4, 4) (step 8, offset 0.5), size 30 at ratio 1; second sqrt(30 * 60)
    torch.testing.assert_close(anchors[0, 0], torch.tensor([4.0, 4.0, 30.0, 30.0]))
    torch.testing.assert_close(anchors[0, 1, 2:], torch.tensor([1800.0 ** 0.5] * 2))


def test_ssd_anchor_centers_stay_on_small_inputs():
    # below 512 px the extra blocks reach 1x1 maps early: their anchors belong at the image center, not at
    # (step/2, step/2) = (128, 128) or (256, 256) for a 128-px input
    for name, kw in (("ssd_512_mobilenet1.0_voc", {"backbone": "mobilenet0.25", "data_shape": 128}),
                     ("ssd_128_mobilenet0.25_voc", {})):
        net = get_model(name, classes=["a"], **kw).train()
        anchors = net(torch.randn(2, 3, 128, 128))[2][0]  # 2 images: BN on the 1x1 maps
        assert float(anchors[:, :2].min()) > 0 and float(anchors[:, :2].max()) < 128
        assert bool((anchors[-4:, :2] == 64.0).all())
    # 512 px keeps GluonCV's steps; the small-input SSD has a 16x16 first map at 128 px (4 anchors each)
    assert get_model("ssd_512_mobilenet1.0_voc", classes=["a"]).steps == [16, 32, 64, 128, 256, 512]
    assert net.steps == [8, 16, 32, 64, 128, 128] and net.sizes[0] == pytest.approx(0.16 * 128)
    torch.testing.assert_close(anchors[0], torch.tensor([4.0, 4.0, 20.48, 20.48]))
    with pytest.raises(ValueError, match="base_strides"):
        get_model("ssd_512_mobilenet1.0_voc", backbone="mobilenet0.25", classes=["a"], base_strides=(8, 32))


def _small_ssd(**kw):
    return get_model("ssd_512_mobilenet1.0_voc", backbone="mobilenet0.25", classes=["cat", "dog", "bird"], **kw)


def _small_yolo(**kw):
    return get_model("yolo3_mobilenet1.0_voc", backbone="mobilenet0.25", classes=["cat", "dog", "bird"], **kw)


def test_ssd_training_outputs_targets_and_loss():
    torch.manual_seed(0)
    net = _small_ssd().train()
    x = torch.randn(2, 3, 64, 64)
    cls, box, anchors = net(x)
    n = anchors.shape[1]
    assert cls.shape == (2, n, 4) and box.shape == (2, n, 4) and anchors.shape == (1, n, 4)
    cls_t, box_t = SSDTargetGenerator()(anchors, _labels())
    assert cls_t.shape == (2, n) and box_t.shape == (2, n, 4)
    # image 0: both boxes matched (at least their best anchors), with class + 1; image 1 all background
    assert set(cls_t[0].unique().tolist()) == {0, 1, 2} and int(cls_t[1].abs().sum()) == 0
    total, cls_loss, box_loss = SSDMultiBoxLoss()(cls, box, cls_t, box_t)
    assert total.shape == (2,) and bool(torch.isfinite(total).all()) and float(total[0].detach()) > 0
    assert float(total[1].detach()) == 0  # no positives in image 1, so no mined negatives either (3:1)
    total.sum().backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)


def test_ssd_hard_negative_mining_ratio():
    # one positive, 10 negatives of growing loss: exactly the 3 hardest negatives count
    cls = torch.zeros(1, 11, 2)
    cls[0, 1:, 1] = torch.arange(10, dtype=torch.float32)  # negatives predicting foreground ever harder
    cls_t = torch.zeros(1, 11, dtype=torch.long)
    cls_t[0, 0] = 1
    _, cls_loss, _ = SSDMultiBoxLoss()(cls, torch.zeros(1, 11, 4), cls_t, torch.zeros(1, 11, 4))
    ce = torch.nn.functional.cross_entropy(cls[0], cls_t[0], reduction="none")
    torch.testing.assert_close(cls_loss[0], ce[0] + ce[-3:].sum())


def test_yolo_training_outputs_targets_and_loss():
    torch.manual_seed(0)
    net = _small_yolo().train()
    out = net(torch.randn(2, 3, 64, 64))
    n = out.objness.shape[1]
    assert n == (2 * 2 + 4 * 4 + 8 * 8) * 3
    assert out.cls_preds.shape == (2, n, 3) and out.bboxes.shape == (2, n, 4) and out.anchors.shape == (1, n, 5)
    targets = YOLOV3TargetGenerator(3)(out, _labels(), (64, 64))
    obj_t, center_t, scale_t, weight_t, class_t, class_mask = targets
    assert int((obj_t[0] == 1).sum()) == 2 and int((obj_t[1] == 1).sum()) == 0
    pos = obj_t[0, :, 0] == 1
    assert bool(((center_t[0][pos] >= 0) & (center_t[0][pos] < 1)).all())
    assert sorted(class_t[0][pos].argmax(-1).tolist()) == [0, 1]
    losses = YOLOV3Loss()(out, *targets)
    assert all(loss.shape == (2,) and bool(torch.isfinite(loss).all()) for loss in losses)
    assert float(losses[1][1].detach()) == 0 and float(losses[3][1].detach()) == 0  # no box/class terms without objects
    sum(loss.sum() for loss in losses).backward()


def test_yolo_target_ignores_good_predictions():
    net = _small_yolo().train()
    out = net(torch.randn(1, 3, 64, 64))
    # pretend one decoded prediction overlaps the ground truth almost exactly: it is ignored, not negative
    lab = torch.tensor([[[8.0, 8.0, 40.0, 40.0, 2.0, 0.0]]])
    bboxes = out.bboxes.detach().clone()
    bboxes[0, 0] = torch.tensor([8.5, 8.0, 40.0, 40.0])
    obj_t = YOLOV3TargetGenerator(3)(out._replace(bboxes=bboxes), lab, (64, 64))[0]
    assert float(obj_t[0, 0, 0]) in (-1.0, 1.0)
    assert int((obj_t == -1).sum()) >= 1 or float(obj_t[0, 0, 0]) == 1.0


def test_rcnn_training_losses_and_empty_image():
    torch.manual_seed(0)
    net = get_model("faster_rcnn_fpn_resnet50_v1b_voc", backbone="resnet18_v1b", classes=["a", "b"]).train()
    losses = net(torch.randn(2, 3, 64, 64), _labels())
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}
    sum(losses.values()).backward()
    assert all(bool(torch.isfinite(v)) for v in losses.values())
    empty = net(torch.randn(1, 3, 64, 64), torch.full((1, 1, 6), -1.0))
    assert all(bool(torch.isfinite(v)) for v in empty.values())
    with pytest.raises(ValueError, match="needs labels"):
        net(torch.randn(1, 3, 64, 64))


def test_rcnn_anchor_and_sampling_arguments():
    """Small-image settings reach torchvision's modules: anchor sizes (and the RPN head's width), proposal
    counts, R-CNN sampling; a wrong number of anchor levels is named."""
    net = get_model("faster_rcnn_resnet50_v1b_voc", backbone="mobilenet0.25", classes=["a", "b"],
                    anchor_sizes=[[16, 32, 64]], rpn_train=(500, 100), rpn_test=[400, 50], rcnn_num_samples=32,
                    rcnn_pos_ratio=0.5)
    assert net.rpn.anchor_generator.sizes == ((16, 32, 64),)
    assert net.rpn.head.cls_logits.out_channels == 9  # 3 sizes x 3 ratios
    assert net.rpn._pre_nms_top_n == {"training": 500, "testing": 400}
    assert net.rpn._post_nms_top_n == {"training": 100, "testing": 50}
    assert net.roi_heads.fg_bg_sampler.batch_size_per_image == 32
    assert net.roi_heads.fg_bg_sampler.positive_fraction == 0.5
    net.train()
    losses = net(torch.randn(2, 3, 128, 128), _labels())
    assert all(bool(torch.isfinite(v)) for v in losses.values())
    fpn = get_model("faster_rcnn_fpn_resnet50_v1b_voc", backbone="resnet18_v1b", classes=["a"],
                    anchor_sizes=[[8], [16], [32], [64], [128]], rcnn_num_samples=64)
    assert fpn.rpn.anchor_generator.sizes == ((8,), (16,), (32,), (64,), (128,))
    assert fpn.roi_heads.fg_bg_sampler.batch_size_per_image == 64
    with pytest.raises(ValueError, match="anchor levels"):
        get_model("faster_rcnn_fpn_resnet50_v1b_voc", backbone="resnet18_v1b", anchor_sizes=[[8], [16]])
    with pytest.raises(ValueError, match="one anchor level"):
        get_model("faster_rcnn_resnet50_v1b_voc", backbone="mobilenet0.25", anchor_sizes=[[16], [32]])


def test_no_objects_trains_and_predicts_nothing():
    torch.manual_seed(0)
    empty = torch.full((2, 2, 6), -1.0)
    x = torch.zeros(2, 3, 64, 64)
    ssd = _small_ssd().train()
    cls, box, anchors = ssd(x)
    loss = SSDMultiBoxLoss()(cls, box, *SSDTargetGenerator()(anchors, empty))[0]
    assert bool(torch.isfinite(loss).all())
    loss.sum().backward()
    yolo = _small_yolo().train()
    out = yolo(x)
    losses = YOLOV3Loss()(out, *YOLOV3TargetGenerator(3)(out, empty, (64, 64)))
    assert all(bool(torch.isfinite(v).all()) for v in losses)
    sum(v.sum() for v in losses).backward()
    # a detector confident that nothing is there returns only padding (GluonCV's "[]")
    with torch.no_grad():
        for p in ssd.class_predictors:
            p.weight.zero_()
            p.bias.copy_(torch.tensor([20.0, 0.0, 0.0, 0.0]).repeat(p.bias.numel() // 4))
        for p in yolo.yolo_outputs:
            p.weight.zero_()
            p.bias.fill_(-20.0)
        for net in (ssd.eval(), yolo.eval()):
            ids, scores, boxes = net(x)
            assert bool((ids == -1).all()) and bool((scores == -1).all()) and bool((boxes == -1).all())


def test_reset_class_reuses_named_rows():
    torch.manual_seed(0)
    for build in (_small_ssd, _small_yolo):
        net = build().train()
        x = torch.randn(2, 3, 64, 64)
        before = net(x)
        net.reset_class(["dog", "fish"], reuse_weights={"dog": "dog"})
        assert net.classes == ("dog", "fish") and net.num_class == 2
        after = net(x)
        if isinstance(before, tuple) and len(before) == 3:  # SSD: background + dog kept, fish new
            torch.testing.assert_close(after[0][..., :2], before[0][..., [0, 2]])
            torch.testing.assert_close(after[1], before[1])
        else:  # YOLOv3: box/objectness rows kept, dog kept
            torch.testing.assert_close(after.objness, before.objness)
            torch.testing.assert_close(after.cls_preds[..., 0], before.cls_preds[..., 1])
            assert after.cls_preds.shape[-1] == 2
        net.eval()
        with torch.no_grad():
            _check_contract(net(x), 2, 2)
    lite = get_model("ssdlite320_mobilenet_v3_large", classes=["a", "b", "c"]).train()
    x = torch.randn(2, 3, 96, 96)
    before = lite(x)[0]
    lite.reset_class(["c", "a", "new"], reuse_weights=["a", "c"])
    after = lite(x)[0]
    assert after.shape[-1] == 4
    torch.testing.assert_close(after[..., [0, 1, 2]], before[..., [0, 3, 1]])  # background, c, a kept
    net = get_model("faster_rcnn_fpn_resnet50_v1b_voc", backbone="resnet18_v1b", classes=["a", "b", "c"])
    old = net.roi_heads.box_predictor.bbox_pred.weight.detach().clone()
    net.reset_class(["c", "z"], reuse_weights=["c"])
    new = net.roi_heads.box_predictor.bbox_pred.weight
    assert new.shape[0] == 12
    torch.testing.assert_close(new[4:8], old[12:16])  # class c's 4 rows
    torch.testing.assert_close(new[:4], old[:4])  # background
    with pytest.raises(ValueError, match="not an old class"):
        net.reset_class(["q"], reuse_weights={"q": "nothing"})
    with pytest.raises(ValueError, match="duplicate"):
        net.reset_class(["q", "q"])


def test_backbone_argument_takes_any_zoo_classifier():
    for backbone in ("resnet18_v1b", "mobilenetv2_0.25", "resnet18_v2"):
        net = get_model("ssd_512_mobilenet1.0_voc", backbone=backbone).eval()
        with torch.no_grad():
            _check_contract(net(torch.randn(1, 3, 64, 64)), 1, 20)
    with pytest.raises(ValueError, match="unknown model name"):
        get_model("yolo3_darknet53_voc", backbone="no_such_net")
    with pytest.raises(ValueError, match="cannot take features"):
        get_model("ssd_512_mobilenet1.0_voc", backbone=nn.Linear(3, 3))


def test_bad_input_is_named():
    net = _small_ssd().eval()
    with pytest.raises(ValueError, match="input channel"):
        net(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match="labels must be"):
        SSDTargetGenerator()(torch.zeros(1, 10, 4), torch.zeros(2, 5))
    with pytest.raises(TypeError, match="classes"):
        get_model("ssd_512_mobilenet1.0_voc", classes="cat")


def test_fixed_detections_equals_torchvision_per_image_nms():
    torch.manual_seed(0)
    b, n, c = 3, 300, 4
    xy = torch.rand(b, n, 2) * 200
    boxes = torch.cat([xy, xy + torch.rand(b, n, 2) * 80 + 5], -1)
    scores = torch.rand(b, n, c)
    scores[2] = 0.1  # nothing above the threshold in image 2
    ids, sc, bb = fixed_detections(boxes, scores, 0.3, 0.5, -1, 40, per_class_topk=100)
    for i in range(b):
        keep_boxes, keep_scores, keep_labels = [], [], []
        for k in range(c):
            s = scores[i, :, k]
            m = s > 0.3
            top = torch.topk(s[m], min(100, int(m.sum())))
            keep_boxes.append(boxes[i][m][top.indices])
            keep_scores.append(top.values)
            keep_labels.append(torch.full_like(top.values, k))
        kb, ks, kl = torch.cat(keep_boxes), torch.cat(keep_scores), torch.cat(keep_labels)
        keep = torchvision.ops.batched_nms(kb, ks, kl, 0.5)[:40]
        m = len(keep)
        torch.testing.assert_close(sc[i, :m, 0], ks[keep])
        torch.testing.assert_close(ids[i, :m, 0], kl[keep])
        torch.testing.assert_close(bb[i, :m], kb[keep])
        assert bool((ids[i, m:] == -1).all())
    assert int((ids[2] >= 0).sum()) == 0


@pytest.mark.slow
@pytest.mark.parametrize("build", [_small_ssd, _small_yolo])
def test_hybridize_equals_eager(build):
    torch.manual_seed(0)
    net = build().eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = net(x)
        net.hybridize(autotune=False)
        out = net(x)
        assert net.graph is not None
        more = net(torch.cat([x, x.flip(0)]))  # another batch size: same graph (batch axis dynamic)
    for a, b in zip(ref, out):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    for a, b in zip(ref, more):
        torch.testing.assert_close(b[:2], a, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(b[2:], a.flip(0), atol=1e-4, rtol=1e-4)


def _nontrivial(model: nn.Module) -> nn.Module:
    """Kaiming-initialised convolutions and random norm statistics: torchvision's own random init makes
    its MobileNetV3 features vanish (std ~1e-14), which would compare nothing but ties."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.dim() == 4:
                p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / p[0].numel()) ** 0.5)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    return model


def _smooth_images(n: int, size: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(3)
    low = torch.rand(n, 3, 8, 8, generator=gen)
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bicubic").clamp(0, 1)


def _same_detections(ours, theirs: list[dict]) -> None:
    ids, scores, boxes = ours
    for i, det in enumerate(theirs):
        n = det["boxes"].shape[0]
        assert n > 0 and int((ids[i] >= 0).sum()) == n
        torch.testing.assert_close(scores[i, :n, 0], det["scores"], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ids[i, :n, 0] + 1, det["labels"].float())
        torch.testing.assert_close(boxes[i, :n], det["boxes"], atol=1e-3, rtol=1e-4)


def test_from_torchvision_ssdlite():
    from toolkit.cv.convert import from_torchvision

    torch.manual_seed(0)
    tv = _nontrivial(torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None))
    tv.eval()
    net = from_torchvision(tv.state_dict(), "ssdlite320_mobilenet_v3_large").eval()
    assert net.num_class == 90
    x = _smooth_images(2, 320)
    xn = (x - 0.5) / 0.5  # torchvision's normalisation for this model
    with torch.no_grad():
        images, _ = tv.transform(list(x))
        feats = list(tv.backbone(images.tensors).values())
        head = tv.head(feats)
        ours_feats = net.feature_maps(xn)
        ours_head = net.head(ours_feats)
        torch.testing.assert_close(ours_head["cls_logits"], head["cls_logits"], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(ours_head["bbox_regression"], head["bbox_regression"], atol=1e-4, rtol=1e-4)
        anchors = tv.anchor_generator(images, feats)[0]
        ours_anchors = torchvision.ops.box_convert(net.anchors(ours_feats, xn)[0], "cxcywh", "xyxy")
        torch.testing.assert_close(ours_anchors, anchors, atol=1e-3, rtol=1e-5)
        _same_detections(net(xn), tv(list(x)))


def test_from_torchvision_faster_rcnn_mobilenet_fpn():
    from toolkit.cv.convert import from_torchvision

    torch.manual_seed(0)
    tv = _nontrivial(torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None))
    with torch.no_grad():
        tv.roi_heads.box_predictor.cls_score.weight.normal_(0, 0.1)
    tv.eval()
    net = from_torchvision(tv.state_dict(), "fasterrcnn_mobilenet_v3_large_320_fpn").eval()
    x = _smooth_images(2, 320)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    with torch.no_grad():
        images, _ = tv.transform(list(x))
        theirs = tv.backbone(images.tensors)
        ours = net.feature_maps((x - mean) / std)
        for k in theirs:
            torch.testing.assert_close(ours[k], theirs[k], atol=1e-4, rtol=1e-4)
        _same_detections(net((x - mean) / std), tv(list(x)))


def test_from_torchvision_detection_rejects_other_checkpoints():
    from toolkit.cv.convert import from_torchvision
    from toolkit.zoo import WeightsError

    sd = torchvision.models.mobilenet_v3_large(weights=None).state_dict()
    with pytest.raises(WeightsError, match="not a torchvision ssdlite320_mobilenet_v3_large checkpoint"):
        from_torchvision(sd, "ssdlite320_mobilenet_v3_large")


@pytest.mark.slow
def test_vgg_and_darknet_join_the_classification_zoo():
    from toolkit.cv.models.darknet import DarknetV3
    from toolkit.cv.models.detection import BackboneFeatures

    # VGG-16 (with/without BN) holds exactly torchvision's parameters
    for ours, theirs in (("vgg16", "vgg16"), ("vgg16_bn", "vgg16_bn"), ("vgg11", "vgg11")):
        with torch.device("meta"):
            a = sum(p.numel() for p in get_model(ours).parameters())
            b = sum(p.numel() for p in getattr(torchvision.models, theirs)(weights=None).parameters())
        assert a == b, ours
    # Darknet-53: 52 convolutions + the classifier; stride 8/16/32 stages end at features 14, 23, 28
    net = get_model("darknet53", classes=10)
    assert sum(isinstance(m, nn.Conv2d) for m in net.modules()) == 52
    feats = BackboneFeatures(net, strides=(8, 16, 32))
    assert feats.channels == [256, 512, 1024] and [len(s) for s in feats.stages] == [15, 9, 5]
    small = DarknetV3((1, 1, 1, 1, 1), (8, 16, 32, 64, 128), classes=5).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        eager = small(x)
        assert eager.shape == (2, 5)
        small.hybridize(autotune=False)
        torch.testing.assert_close(small(x), eager, atol=1e-5, rtol=1e-5)


def test_fixed_detections_eager_equals_captured_graph():
    """Eagerly, many candidates go through batched_nms's per-class loop; the torch.export graph (what a
    hybridized detector runs, with toolkit::grouped_nms as one node) must keep the same detections."""

    class Tail(nn.Module):
        def forward(self, boxes, scores):
            return fixed_detections(boxes, scores, 0.01, 0.45, -1, 200)

    torch.manual_seed(0)
    b, n, c = 2, 500, 12  # 12,000 candidates: above batched_nms's 4,000 switch to its loop
    xy = torch.rand(b, n, 2) * 300
    boxes = torch.cat([xy, xy + torch.rand(b, n, 2) * 60 + 5], -1)
    scores = torch.rand(b, n, c)
    eager = fixed_detections(boxes, scores, 0.01, 0.45, -1, 200)
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(Tail(), (boxes, scores), dynamic_shapes=({0: batch}, {0: batch}), strict=False)
    assert any("grouped_nms" in str(node.target) for node in program.graph.nodes)
    captured = program.module()(boxes, scores)
    for got, want in zip(eager, captured):
        torch.testing.assert_close(got, want)
    one = program.module()(boxes[1:], scores[1:])  # another batch size through the same graph
    for got, want in zip(one, eager):
        torch.testing.assert_close(got, want[1:])
