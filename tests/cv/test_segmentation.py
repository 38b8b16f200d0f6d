"""Segmentation: models, loss, multi-scale evaluation, metric, presets, datasets, palettes, bad input."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import tv_tensors

from toolkit.cv.data import DatasetFormatError, MissingDatasetError
from toolkit.cv.data.segmentation import (ADE20KSegmentation, CitySegmentation, COCOSegmentation,
                                          FashionScenesSegmentation, VOCAugSegmentation, VOCSegmentation,
                                          mask_to_target, read_mask, target_to_mask)
from toolkit.cv.metrics import SegmentationMetric
from toolkit.cv.models.segmentation import MixSoftmaxCrossEntropyLoss, MultiEvalModel, get_segmentation_model
from toolkit.cv.presets.segmentation import segmentation_testval, segmentation_train, segmentation_val
from toolkit.cv.utils import get_color_pallete, overlay_mask, plot_mask
from toolkit.zoo import get_model, list_models

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _seg_fixtures as fx  # noqa: E402


# --------------------------------------------------------------------------- models
def test_zoo_names():
    names = set(list_models(task="segmentation"))
    for n in ("fcn_resnet50_voc", "fcn_resnet101_voc", "fcn_resnet101_coco", "fcn_resnet50_ade", "psp_resnet50_ade",
              "psp_resnet101_voc", "psp_resnet101_coco", "deeplab_resnet50_ade", "deeplab_resnet101_voc",
              "deeplab_resnet101_coco", "lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large"):
        assert n in names


def test_registered_defaults_on_meta_device():
    with torch.device("meta"):
        net = get_model("psp_resnet101_coco")
        ade = get_model("deeplab_resnet50_ade", aux=False)
    assert net.nclass == 21 and net.metadata["backbone"] == "resnet101_v1s" and net.auxlayer is not None
    assert isinstance(net.conv1, torch.nn.Sequential)  # v1s deep stem
    assert ade.nclass == 150 and ade.auxlayer is None
    assert net.metadata["task"] == "segmentation" and net.metadata["name"] == "psp_resnet101_coco"


@pytest.mark.parametrize("family,backbone", [("fcn", "resnet18_v1s"), ("psp", "resnet18_v1s"),
                                             ("deeplab", "resnet18_v1s"), ("lraspp", "mobilenetv3_large"),
                                             ("deeplab", "mobilenetv3_large")])
def test_output_layouts(family, backbone):
    torch.manual_seed(0)
    aux = family != "lraspp"
    net = get_segmentation_model(family, "fashion-scenes", backbone, aux=aux, crop_size=32)
    x = torch.randn(2, 3, 40, 36)
    net.train()
    out = net(x)
    if aux:
        assert isinstance(out, tuple) and len(out) == 2
        assert out[0].shape == out[1].shape == (2, 11, 40, 36)
        assert not torch.equal(out[0], out[1])
    else:
        assert out.shape == (2, 11, 40, 36)
    net.eval()
    with torch.no_grad():
        y = net(x)
    assert isinstance(y, torch.Tensor) and y.shape == (2, 11, 40, 36)
    # a dilated backbone keeps stride 8 (ResNet) / 16 (MobileNetV3): stage outputs are that much smaller
    if family != "lraspp" and backbone.startswith("resnet"):
        c3, c4 = net.base_forward(x)
        assert c4.shape[-2:] == (5, 5) and c3.shape[-2:] == (5, 5)


def test_mobilenet_norm_momentum():
    """torchvision's BatchNorm momentum 0.01 by default; norm_momentum= sets the backbone's (not the head's)."""

    def momenta(model):
        return {m.momentum for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)}

    assert momenta(get_model("lraspp_mobilenet_v3_large")) == {0.01}
    assert momenta(get_model("lraspp_mobilenet_v3_large", norm_momentum=0.1)) == {0.1}
    assert momenta(get_model("deeplabv3_mobilenet_v3_large", norm_momentum=0.2)) == {0.2}
    with pytest.raises(ValueError, match="norm_momentum"):
        get_model("lraspp_mobilenet_v3_large", norm_momentum=0.0)


def test_bad_backbone_and_aux():
    with pytest.raises(ValueError, match="ResNet v1b-family"):
        get_model("fcn_resnet50_voc", backbone="mobilenetv2_1.0")
    with pytest.raises(ValueError, match="no auxiliary head"):
        get_model("lraspp_mobilenet_v3_large", aux=True)
    with pytest.raises(ValueError, match="disagree"):
        get_model("lraspp_mobilenet_v3_large", nclass=3, classes=4)


def test_hybridize_matches_eager():
    torch.manual_seed(0)
    net = get_segmentation_model("fcn", "voc", "resnet18_v1s", aux=True, classes=5).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        want = net(x)
        net.hybridize(autotune=False)
        got = net(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- loss
def test_loss_ignores_and_weights_aux():
    torch.manual_seed(0)
    main, aux = torch.randn(2, 4, 6, 5), torch.randn(2, 4, 6, 5)
    label = torch.randint(0, 4, (2, 6, 5))
    label[0, :2] = -1
    keep = label >= 0
    ce = lambda p: -(F.log_softmax(p, 1).gather(1, label.clamp(min=0)[:, None])[:, 0][keep]).mean()  # noqa: E731
    loss = MixSoftmaxCrossEntropyLoss(aux=True, aux_weight=0.5)
    torch.testing.assert_close(loss((main, aux), label), ce(main) + 0.5 * ce(aux))
    torch.testing.assert_close(MixSoftmaxCrossEntropyLoss(aux=False)(main, label), ce(main))
    with pytest.raises(ValueError, match=r"labels \[7\] are outside the 4 classes"):
        loss(main, torch.full((2, 6, 5), 7))
    with pytest.raises(ValueError, match="same N, H, W"):
        loss(main, label[:, :3])


# --------------------------------------------------------------------------- multi-scale evaluation
class _Pointwise(torch.nn.Module):
    """A 1x1 convolution: its scores of a window equal the window of its scores, so tiling changes nothing."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 1)
        self.base_size, self.crop_size, self.align_corners = 24, 16, True

    def forward(self, x):
        return self.conv(x)


def test_multieval_matches_direct_computation():
    torch.manual_seed(0)
    net = _Pointwise().eval()
    x = torch.randn(1, 3, 20, 30)
    ev = MultiEvalModel(net, 4, flip=True, scales=(0.5, 1.0, 1.5))
    got = ev(x)
    want = torch.zeros(1, 4, 20, 30, dtype=torch.float64)
    with torch.no_grad():
        for s in (0.5, 1.0, 1.5):
            long = int(np.ceil(24 * s))
            h, w = int(20 * long / 30 + 0.5), long
            r = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=True)
            score = (net(r) + net(r.flip(3)).flip(3)).double().exp()  # pointwise: flip-symmetric, 2x logits
            want += F.interpolate(score, size=(20, 30), mode="bilinear", align_corners=True)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-8)
    assert ev(x).argmax(1).shape == (1, 20, 30)


def test_multieval_stacked_windows_match_one_by_one():
    """Windows scored in stacks give GluonCV's one-window-per-call scores (a real conv net, two images)."""
    torch.manual_seed(0)
    net = get_segmentation_model("fcn", "fashion-scenes", "resnet18_v1s", aux=True, base_size=40,
                                 crop_size=24).eval()
    x = torch.randn(2, 3, 30, 40)
    one = MultiEvalModel(net, 11, flip=True, scales=(0.5, 1.0, 1.5), batch_pixels=1)(x)
    stacked = MultiEvalModel(net, 11, flip=True, scales=(0.5, 1.0, 1.5))(x)
    torch.testing.assert_close(stacked.log(), one.log(), rtol=0, atol=1e-4)
    alone = MultiEvalModel(net, 11, flip=True, scales=(0.5, 1.0, 1.5))(x[1:])  # no mixing across images
    torch.testing.assert_close(stacked[1:].log(), alone.log(), rtol=0, atol=1e-4)


def test_multieval_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one scale"):
        MultiEvalModel(_Pointwise(), 4, scales=())
    with pytest.raises(ValueError, match="batch_pixels must be positive"):
        MultiEvalModel(_Pointwise(), 4, batch_pixels=0)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        MultiEvalModel(_Pointwise(), 4)(torch.randn(3, 8, 8))


# --------------------------------------------------------------------------- metric
def _gluoncv_reference(labels: np.ndarray, logits: np.ndarray, nclass: int) -> tuple[float, float]:
    """GluonCV's formulas, histogram by histogram, written out for the check."""
    predict = np.argmax(logits, 1) + 1
    target = labels.astype(np.int64) + 1
    correct, labeled = np.sum((predict == target) * (target > 0)), np.sum(target > 0)
    predict = predict * (target > 0)
    inter = predict * (predict == target)
    a_inter, _ = np.histogram(inter, bins=nclass, range=(1, nclass))
    a_pred, _ = np.histogram(predict, bins=nclass, range=(1, nclass))
    a_lab, _ = np.histogram(target, bins=nclass, range=(1, nclass))
    union = a_pred + a_lab - a_inter
    return correct / (np.spacing(1) + labeled), float(np.mean(a_inter / (np.spacing(1) + union)))


def test_metric_matches_gluoncv_formulas():
    rng = np.random.default_rng(0)
    metric = SegmentationMetric(5)
    all_l, all_p = [], []
    for _ in range(3):
        labels = rng.integers(-1, 4, (2, 7, 6))  # class 4 never labelled: counts as IoU 0 unless predicted
        logits = rng.normal(size=(2, 5, 7, 6)).astype(np.float32)
        metric.update(torch.from_numpy(labels), torch.from_numpy(logits))
        all_l.append(labels)
        all_p.append(logits)
    pix, miou = metric.get()
    ref_pix, ref_miou = _gluoncv_reference(np.concatenate(all_l), np.concatenate(all_p), 5)
    assert pix == pytest.approx(ref_pix) and miou == pytest.approx(ref_miou)
    # numpy and GluonCV's per-device lists give the same
    m2 = SegmentationMetric(5)
    m2.update([a for a in all_l], [p for p in all_p])
    assert m2.get() == pytest.approx((pix, miou))
    metric.reset()
    assert metric.get() == (0.0, 0.0)


def test_metric_mean_over_all_classes():
    m = SegmentationMetric(3)
    labels = torch.tensor([[[0, 0, 1, -1]]])
    logits = F.one_hot(torch.tensor([[[0, 0, 1, 2]]]), 3).permute(0, 3, 1, 2).float()
    m.update(labels, logits)
    pix, miou = m.get()
    assert pix == pytest.approx(1.0)  # the ignored pixel's wrong prediction is not counted
    assert miou == pytest.approx(2 / 3)  # class 2 is absent: IoU 0, still averaged (GluonCV)


def test_metric_bad_input():
    m = SegmentationMetric(3)
    with pytest.raises(ValueError, match=r"labels \[3, 255\] are outside the 3 classes"):
        m.update(torch.tensor([[[0, 3, 255]]]), torch.zeros(1, 3, 1, 3))
    with pytest.raises(ValueError, match="differ in size"):
        m.update(torch.zeros(1, 2, 3, dtype=torch.long), torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="nclass=3"):
        m.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 4, 2, 2))
    with pytest.raises(TypeError, match="torch.Tensor or numpy"):
        m.update(torch.zeros(1, 1, 1), "x")


# --------------------------------------------------------------------------- ignore label and presets
def test_ignore_conversion_round_trip():
    mask = torch.tensor([[0, 255, 3]], dtype=torch.uint8)
    t = mask_to_target(mask, 4)
    assert t.dtype == torch.int64 and t.tolist() == [[0, -1, 3]]
    assert target_to_mask(t).tolist() == mask.tolist()
    with pytest.raises(ValueError, match=r"\[4\] are outside the 4 classes"):
        mask_to_target(torch.tensor([[4]]), 4)


def _pair(h: int, w: int, num_class: int = 4, seed: int = 0):
    img, mask = fx.shapes_image_and_mask(np.random.default_rng(seed), h, w, num_class)
    return tv_tensors.Image(torch.from_numpy(img).permute(2, 0, 1).contiguous()), tv_tensors.Mask(
        torch.from_numpy(mask.astype(np.int64)))


def test_train_preset_shapes_and_joint_transform():
    torch.manual_seed(0)
    image, mask = _pair(48, 40)
    preset = segmentation_train(base_size=40, crop_size=32, num_class=4, blur=False)
    hits = []
    for _ in range(8):
        x, t = preset(image, mask)
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and t.shape == (32, 32) and t.dtype == torch.int64
        # the mask followed the image (scale, crop, flip): the colour of each labelled pixel tells its class
        # (fixture colours: class 1 has red 230, classes 0 and 3 red 20 and 40); only boundary pixels,
        # blended by the bilinear resize, may disagree
        red = x[0] * 0.229 + 0.485
        labelled = t >= 0
        hits.append(torch.cat([red[labelled & (t == 1)] > 0.6, red[labelled & ((t == 0) | (t == 3))] < 0.4]))
    assert torch.cat(hits).float().mean() > 0.97


def test_image_smaller_than_crop_is_padded_with_ignore():
    torch.manual_seed(0)
    image, mask = _pair(12, 10)
    x, t = segmentation_train(base_size=8, crop_size=24, num_class=4, blur=False)(image, mask)
    assert x.shape == (3, 24, 24) and t.shape == (24, 24)
    assert (t == -1).sum() >= 24 * 24 - 16 * 16  # the long side is at most 2 * base_size = 16
    pad_rgb = x[:, t == -1]
    black = torch.tensor([-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225])[:, None]
    torch.testing.assert_close(pad_rgb, black.expand_as(pad_rgb))
    xv, tv = segmentation_val(crop_size=24)(image, mask)  # val resizes the short side up instead
    assert xv.shape == (3, 24, 24) and bool((tv >= 0).all())


def test_val_and_testval_presets():
    image, mask = _pair(30, 50)
    x, t = segmentation_val(crop_size=20)(image, mask)
    assert x.shape == (3, 20, 20) and t.shape == (20, 20)
    x, t = segmentation_testval()(image, mask)
    assert x.shape == (3, 30, 50)
    assert torch.equal(t, mask.as_subclass(torch.Tensor))


def test_blur_leaves_mask_alone():
    from torchvision.transforms import v2

    image, mask = _pair(20, 20)
    _, m = v2.GaussianBlur(5, sigma=1.0)(image, mask)
    assert torch.equal(m, mask)


def test_preset_bad_input():
    image, mask = _pair(20, 24)
    with pytest.raises(ValueError, match=r"mask of size \(20, 23\).*image of size \(20, 24\)"):
        segmentation_train(16, 16)(image, tv_tensors.Mask(mask[:, :23]))
    bad = mask.clone()
    bad[0, 0] = 9
    with pytest.raises(ValueError, match=r"\[9\] are outside the 4 classes"):
        segmentation_val(16, num_class=4)(image, bad)
    ok = mask.clone()
    ok[0, 0] = 255
    _, t = segmentation_testval(num_class=4)(image, ok)
    assert t[0, 0] == -1


# --------------------------------------------------------------------------- datasets
def test_voc(tmp_path):
    fx.make_voc(tmp_path, n=4)
    ds = VOCSegmentation(tmp_path, "train")
    assert len(ds) == 2 and ds.num_class == 21 and ds.classes[15] == "person"
    image, mask = ds[0]
    assert isinstance(image, tv_tensors.Image) and image.dtype == torch.uint8 and image.shape == (3, 36, 44)
    assert isinstance(mask, tv_tensors.Mask) and mask.dtype == torch.int64 and mask.shape == (36, 44)
    assert bool((mask[0] == 255).all()) and int(mask[1:].max()) < 21
    ds = VOCSegmentation(tmp_path, "val", transform=segmentation_val(24, num_class=21))
    x, t = ds[0]
    assert x.shape == (3, 24, 24) and t.min() >= -1


def test_palette_less_png_mask_reads_the_same_ids(tmp_path):
    """Documented handling: an L-mode (palette-less) mask's values are the class ids, as a P-mode mask's indices."""
    fx.make_voc(tmp_path, n=2)
    base = tmp_path / "VOC2012" / "SegmentationClass"
    first = sorted(base.glob("*.png"))[0]
    ids = read_mask(first)
    Image.fromarray(ids.astype(np.uint8), mode="L").save(first)
    with Image.open(first) as im:
        assert im.mode == "L" and im.getpalette() is None
    assert np.array_equal(read_mask(first), ids)
    _, mask = VOCSegmentation(tmp_path, "train")[0]
    assert np.array_equal(mask.numpy(), ids)


def test_colour_mask_is_an_error(tmp_path):
    fx.make_voc(tmp_path, n=2)
    first = sorted((tmp_path / "VOC2012" / "SegmentationClass").glob("*.png"))[0]
    Image.open(first).convert("RGB").save(first)
    with pytest.raises(DatasetFormatError, match=r"is a RGB colour image.*class ids"):
        VOCSegmentation(tmp_path, "train")[0]


def test_mask_size_differs_from_image(tmp_path):
    fx.make_voc(tmp_path, n=2)
    first = sorted((tmp_path / "VOC2012" / "SegmentationClass").glob("*.png"))[0]
    Image.fromarray(read_mask(first)[:, :40].astype(np.uint8), mode="L").save(first)
    with pytest.raises(DatasetFormatError, match=r"is 40x36 \(WxH\) but its image .* is 44x36"):
        VOCSegmentation(tmp_path, "train")[0]


def test_mask_values_outside_classes(tmp_path):
    fx.make_voc(tmp_path, n=2)
    first = sorted((tmp_path / "VOC2012" / "SegmentationClass").glob("*.png"))[0]
    ids = read_mask(first)
    ids[5, 5] = 30
    Image.fromarray(ids.astype(np.uint8), mode="L").save(first)
    with pytest.raises(DatasetFormatError, match=r"values \[30\] outside the 21 classes"):
        VOCSegmentation(tmp_path, "train")[0]


def test_missing_paths_are_named(tmp_path):
    with pytest.raises(MissingDatasetError, match="SegmentationClass"):
        VOCSegmentation(tmp_path / "nowhere")
    with pytest.raises(MissingDatasetError, match="ADEChallengeData2016"):
        ADE20KSegmentation(tmp_path)
    with pytest.raises(MissingDatasetError, match="gtFine"):
        CitySegmentation(tmp_path)
    with pytest.raises(MissingDatasetError, match="instances_val2017.json"):
        COCOSegmentation(tmp_path, "val")
    with pytest.raises(MissingDatasetError, match="cls"):
        VOCAugSegmentation(tmp_path)


def test_sbd(tmp_path):
    pytest.importorskip("scipy")
    fx.make_sbd(tmp_path)
    ds = VOCAugSegmentation(tmp_path, "train")
    image, mask = ds[1]
    assert image.shape == (3, 32, 40) and mask.shape == (32, 40) and int(mask.max()) > 0


def test_ade_shifts_ids_and_ignores_other(tmp_path):
    fx.make_ade(tmp_path)
    ds = ADE20KSegmentation(tmp_path, "val")
    assert len(ds) == 2 and ds.num_class == 150
    raw = read_mask(ds.items[0][1])
    _, mask = ds[0]
    assert int(mask[0, 0]) == 149 and int(mask[1, 1]) == 0
    assert bool((mask[raw == 0] == 255).all())


def test_cityscapes_train_ids(tmp_path):
    fx.make_citys(tmp_path)
    ds = CitySegmentation(tmp_path, "val")
    _, mask = ds[0]
    assert mask[0, :4].tolist() == [0, 18, 255, 13]
    assert set(torch.unique(mask).tolist()) <= set(range(19)) | {255}


def test_coco_class_masks(tmp_path):
    fx.make_coco(tmp_path, "val", "2017")
    ds = COCOSegmentation(tmp_path, "val")  # GluonCV's VOC category list: person 15, car 7, train 19
    assert ds.num_class == 21 and len(ds) == 3
    _, mask = ds[0]
    assert int(mask[5, 5]) == 15 and int(mask[20, 20]) == 7 and int(mask[28, 30]) == 19 and int(mask[35, 2]) == 0
    # overlap of person (first) and car: the first instance keeps it
    assert int(mask[12, 14]) == 15
    ds_all = COCOSegmentation(tmp_path, "val", cat_list="all")
    assert ds_all.classes == ("background", "person", "car", "train", "toothbrush")
    assert int(ds_all[0][1][28, 30]) == 3
    assert len(COCOSegmentation(tmp_path, "val", min_mask_pixels=10_000)) == 0


def test_fashion_scenes_view(tmp_path):
    fx.make_scenes_like(tmp_path / "fashion_scenes")
    ds = FashionScenesSegmentation("val", root=tmp_path / "fashion_scenes")
    assert ds.num_class == 11 and ds.classes[0] == "background" and ds.classes[1] == "T-shirt/top"
    image, mask = ds[0]
    assert image.shape == (3, 48, 48) and 0 < int(mask.max()) < 11


# --------------------------------------------------------------------------- palettes
def test_palettes_and_overlay(tmp_path):
    img = get_color_pallete(np.array([[0, 1], [15, -1]]), "pascal_voc")
    assert img.mode == "P"
    rgb = img.convert("RGB")
    assert rgb.getpixel((1, 0)) == (128, 0, 0) and rgb.getpixel((0, 1)) == (192, 128, 128)
    assert rgb.getpixel((1, 1)) == (224, 224, 192)  # ignored
    ade = get_color_pallete(np.array([[0, -1]]), "ade20k").convert("RGB")
    assert ade.getpixel((0, 0)) == (120, 120, 120) and ade.getpixel((1, 0)) == (0, 0, 0)
    image = np.full((4, 4, 3), 100, dtype=np.uint8)
    mask = np.zeros((4, 4), dtype=np.int64)
    mask[:2] = 1
    out = overlay_mask(image, mask, alpha=0.5)
    assert out.shape == (4, 4, 3) and (out[2:] == 100).all() and tuple(out[0, 0]) == (114, 50, 50)
    with pytest.raises(ValueError, match="differ in size"):
        overlay_mask(image, mask[:3])
    with pytest.raises(ValueError, match="no palette"):
        get_color_pallete(mask, "mars")
    plot_mask(torch.from_numpy(image).permute(2, 0, 1), mask, tmp_path / "o.png", classes=["bg", "thing"])
    assert (tmp_path / "o.png").stat().st_size > 0


def test_scenes_segmentation_agrees_with_detection_view(tmp_path):
    """The real builder's set: the class mask is background 0 and label + 1 on each instance's visible pixels."""
    from toolkit.cv.data import FashionScenes, build_fashion_scenes

    folder = build_fashion_scenes(tmp_path / "fashion_scenes", num_train=4, num_val=3, image_size=48, seed=1)
    seg = FashionScenesSegmentation("val", root=folder)
    det = FashionScenes("val", root=folder, with_masks=True)
    assert len(seg) == len(det) == 3 and seg.num_class == 11
    for i in range(len(seg)):
        image, mask = seg[i]
        dimg, target = det[i]
        assert torch.equal(image, dimg)
        want = torch.zeros(mask.shape, dtype=torch.int64)
        for m, label in zip(target["masks"], target["labels"]):
            want = torch.where((want == 0) & m.bool(), int(label) + 1, want)
        assert torch.equal(mask.as_subclass(torch.Tensor), want)
