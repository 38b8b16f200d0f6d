"""Detection presets (SSD, YOLOv3, Faster R-CNN) and batchify: shapes, box geometry, empty targets."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from toolkit.cv.data.detection import detection_batchify, make_target
from toolkit.cv.presets.rcnn import FasterRCNNDefaultTrainTransform, FasterRCNNDefaultValTransform
from toolkit.cv.presets.ssd import SSDDefaultTrainTransform, SSDDefaultValTransform
from toolkit.cv.presets.yolo import Letterbox, YOLO3DefaultTrainTransform, YOLO3DefaultValTransform

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def _sample(h=60, w=80, n=4, seed=0, masks=True):
    g = torch.Generator().manual_seed(seed)
    img = tv_tensors.Image(torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g))
    boxes, m = [], np.zeros((n, h, w), np.uint8)
    for k in range(n):
        x1, y1 = int(torch.randint(0, w - 20, (1,), generator=g)), int(torch.randint(0, h - 20, (1,), generator=g))
        boxes.append([x1, y1, x1 + 15, y1 + 12])
        m[k, y1:y1 + 12, x1:x1 + 15] = 1
    labels = np.arange(n)
    return img, make_target(boxes, labels, h, w, 1, difficult=labels % 2 == 1, masks=m if masks else None)


def _unnormalise(x):
    return (x * STD + MEAN) * 255


@pytest.mark.parametrize("preset", [SSDDefaultTrainTransform(64, 48), YOLO3DefaultTrainTransform(64, 48),
                                    YOLO3DefaultTrainTransform(64, 48, letterbox=True)])
def test_train_presets_keep_boxes_and_flags_together(preset):
    torch.manual_seed(0)
    seen = 0
    for seed in range(25):
        img, target = _sample(seed=seed)
        x, y = preset(img, target)
        assert x.dtype == torch.float32 and x.shape == (3, 48, 64) and type(x) is torch.Tensor
        assert y.dtype == torch.float32 and y.ndim == 2 and y.shape[1] == 6
        assert (y[:, 0] >= 0).all() and (y[:, 2] <= 64).all() and (y[:, 1] >= 0).all() and (y[:, 3] <= 48).all()
        assert (y[:, 2] > y[:, 0]).all() and (y[:, 3] > y[:, 1]).all()
        # labels were 0..3 with difficult = odd label; filtering must drop both together
        assert set(y[:, 4].tolist()) <= {0, 1, 2, 3}
        assert y[:, 5].tolist() == [float(c % 2) for c in y[:, 4].tolist()]
        seen += len(y)
    assert seen > 25  # augmentation keeps most objects


def test_val_presets_scale_boxes_exactly():
    img, target = _sample(h=60, w=80)
    for preset in (SSDDefaultValTransform(40, 30), YOLO3DefaultValTransform(40, 30)):
        x, y = preset(img, target)
        assert x.shape == (3, 30, 40)
        np.testing.assert_allclose(y[:, :4].numpy(), target["boxes"].numpy() / 2, atol=1e-5)
        assert y[:, 4].tolist() == [0, 1, 2, 3] and y[:, 5].tolist() == [0, 1, 0, 1]
    # normalisation: un-normalising gives the resized pixels back
    x, _ = SSDDefaultValTransform(80, 60)(img, target)
    np.testing.assert_allclose(_unnormalise(x).numpy(), img.float().numpy(), atol=0.01)


def test_letterbox_keeps_aspect_and_pads():
    img, target = _sample(h=40, w=80)
    x, y = YOLO3DefaultValTransform(64, 64, letterbox=True)(img, target)
    assert x.shape == (3, 64, 64)
    # 80x40 -> 64x32, centred: 16 rows of padding above and below
    exp = target["boxes"].numpy() * 0.8 + np.array([0, 16, 0, 16])
    np.testing.assert_allclose(y[:, :4].numpy(), exp, atol=1e-4)
    pad = _unnormalise(x)[:, :16]
    np.testing.assert_allclose(pad.numpy(), 114, atol=0.01)
    t = Letterbox((64, 64))(img, target)[1]
    assert t["masks"].shape == (4, 64, 64) and t["masks"][:, :16].sum() == 0


def test_rcnn_shorter_side_and_max_size():
    img, target = _sample(h=60, w=80)
    x, y = FasterRCNNDefaultValTransform(short=30, max_size=100)(img, target)
    assert x.shape == (3, 30, 40)
    np.testing.assert_allclose(y[:, :4].numpy(), target["boxes"].numpy() / 2, atol=1e-4)
    x, y = FasterRCNNDefaultValTransform(short=90, max_size=100)(img, target)
    assert x.shape == (3, 75, 100)  # longer side capped
    torch.manual_seed(0)
    shapes = {FasterRCNNDefaultTrainTransform(short=(30, 36), max_size=200)(img, target)[0].shape[1]
              for _ in range(20)}
    assert shapes <= set(range(30, 37)) and len(shapes) > 1
    with pytest.raises(ValueError, match="short"):
        FasterRCNNDefaultTrainTransform(short=(1, 2, 3))
    with pytest.raises(ValueError, match="max_size"):
        FasterRCNNDefaultValTransform(short=600, max_size=100)


def test_flip_mirrors_boxes():
    img, target = _sample(h=40, w=50, n=1, masks=False)
    preset = FasterRCNNDefaultTrainTransform(short=40, max_size=100, flip_p=1.0)
    x, y = preset(img, target)
    b = target["boxes"][0].tolist()
    assert y[0, :4].tolist() == [50 - b[2], b[1], 50 - b[0], b[3]]
    np.testing.assert_allclose(_unnormalise(x).numpy(), img.flip(-1).float().numpy(), atol=0.01)


@pytest.mark.parametrize("preset", [SSDDefaultTrainTransform(32, 32), YOLO3DefaultTrainTransform(32, 32),
                                    FasterRCNNDefaultTrainTransform(32, 64), SSDDefaultValTransform(32, 32)])
def test_images_without_objects(preset):
    img = tv_tensors.Image(torch.zeros(3, 20, 30, dtype=torch.uint8))
    x, y = preset(img, make_target(np.zeros((0, 4)), [], 20, 30))
    assert y.shape == (0, 6) and x.shape[0] == 3
    with pytest.raises(ValueError, match="H, W > 0"):
        preset(tv_tensors.Image(torch.zeros(3, 0, 30, dtype=torch.uint8)), make_target(np.zeros((0, 4)), [], 0, 30))
    with pytest.raises(TypeError, match="target dict"):
        preset(img, np.zeros((0, 6)))


def test_presets_pickle_and_batchify_with_loader():
    preset = pickle.loads(pickle.dumps(SSDDefaultTrainTransform(32, 32)))
    samples = [preset(*_sample(seed=s, n=1 + s % 3)) for s in range(4)]
    samples.append(preset(tv_tensors.Image(torch.zeros(3, 20, 20, dtype=torch.uint8)),
                          make_target(np.zeros((0, 4)), [], 20, 20)))
    x, y = detection_batchify()(samples)
    assert x.shape == (5, 3, 32, 32) and y.shape[0] == 5 and y.shape[2] == 6 and (y[4] == -1).all()
    rc = FasterRCNNDefaultValTransform(short=30, max_size=100)
    a = rc(*_sample(h=60, w=80))
    b = rc(*_sample(h=80, w=60))
    imgs, labels, sizes = pickle.loads(pickle.dumps(detection_batchify(pad_images=True, size_divisible=32)))([a, b])
    assert imgs.shape == (2, 3, 64, 64) and sizes.tolist() == [[30, 40], [40, 30]]
    assert torch.equal(imgs[0, :, :30, :40], a[0]) and (imgs[0, :, 30:] == 0).all()
    assert labels.shape == (2, 4, 6)


def test_mixup_detection_weights_flow_to_labels():
    from toolkit.cv.data import MixupDetection

    a = (tv_tensors.Image(torch.full((3, 20, 30), 100, dtype=torch.uint8)),
         make_target([[1, 1, 10, 10]], [2], 20, 30, image_id=7))
    b = (tv_tensors.Image(torch.full((3, 24, 16), 200, dtype=torch.uint8)),
         make_target([[0, 0, 8, 8], [4, 4, 12, 20]], [0, 1], 24, 16, image_id=8, difficult=[False, True]))
    np.random.seed(1)
    mix = MixupDetection([a, b], lambda: 0.25)
    img, t = mix[0]
    assert img.shape == (3, 24, 30) and tuple(t["boxes"].canvas_size) == (24, 30)
    other = 1 if t["labels"][1:].tolist() == [0, 1] else 0
    assert other == 1  # seeded draw picked b
    assert img[0, 0, 0] == 175 and img[0, 22, 5] == 150 and img[0, 5, 20] == 25  # overlap, b only, a only
    assert t["mixup_weight"].tolist() == [0.25, 0.75, 0.75] and t["difficult"].tolist() == [False, False, True]
    x, y = SSDDefaultValTransform(30, 24)(img, t)
    assert y.shape == (3, 7) and y[:, 6].tolist() == [0.25, 0.75, 0.75] and y[:, 5].tolist() == [0, 0, 1]
    _, y2 = SSDDefaultTrainTransform(32, 32)(img, t)  # boxes dropped by the crop take their weights along
    assert y2.shape[1] == 7 and set(y2[:, 6].tolist()) <= {0.25, 0.75}
    _, labels = detection_batchify()([(x, y), (x, y[:1])])
    assert labels.shape == (2, 3, 7) and (labels[1, 1:] == -1).all()
    mix.set_mixup(None)
    img, t = mix[1]
    assert torch.equal(img, b[0]) and t["mixup_weight"].tolist() == [1, 1]


@pytest.mark.parametrize("cls", [SSDDefaultTrainTransform, YOLO3DefaultTrainTransform])
def test_train_preset_defaults_are_gluoncv_augmentation(cls):
    from torchvision.transforms import v2

    from toolkit.cv.presets._iou_crop import BatchedRandomIoUCrop

    full = cls(64, 64)
    assert isinstance(full.crop, BatchedRandomIoUCrop)
    assert [type(t) for t in full.before.transforms] == [v2.RandomPhotometricDistort, v2.RandomZoomOut]
    assert full.before.transforms[1].side_range == (1.0, 4.0)  # GluonCV's expand up to 4x
    assert [type(t) for t in full.after.transforms[:2]] == [v2.Resize, v2.RandomHorizontalFlip]


@pytest.mark.parametrize("cls", [SSDDefaultTrainTransform, YOLO3DefaultTrainTransform])
def test_train_preset_steps_can_be_left_out(cls):
    # --no-color-distort / --no-iou-crop / --expand-ratio 1 of train_ssd.py and train_yolo3.py: resize + flip only
    from torchvision.transforms import v2

    light = cls(64, 64, expand_ratio=1.0, color_distort=False, iou_crop=False)
    assert light.before is None and light.crop is None
    zoom = cls(64, 64, expand_ratio=2.0, color_distort=False)
    assert [type(t) for t in zoom.before.transforms] == [v2.RandomZoomOut]
    assert zoom.before.transforms[0].side_range == (1.0, 2.0)
    image = torch.arange(3 * 32 * 48, dtype=torch.float32).reshape(3, 32, 48).to(torch.uint8)
    target = {"boxes": tv_tensors.BoundingBoxes([[4, 4, 20, 28]], format="XYXY", canvas_size=(32, 48)),
              "labels": torch.tensor([2])}
    torch.manual_seed(0)
    out, label = light(tv_tensors.Image(image), target)
    assert out.shape == (3, 64, 64) and label.shape == (1, 6) and int(label[0, 4]) == 2
    x1, y1, x2, y2 = label[0, :4].tolist()  # resized 48x32 -> 64x64, possibly flipped
    assert (y1, y2) == pytest.approx((8.0, 56.0)) and abs((x2 - x1) - 16 * 64 / 48) <= 0.5


@pytest.mark.parametrize("cls,val", [(SSDDefaultTrainTransform, SSDDefaultValTransform),
                                     (YOLO3DefaultTrainTransform, YOLO3DefaultValTransform)])
def test_light_train_preset_is_the_val_preset_up_to_a_flip(cls, val):
    """With the three random steps off only the flip is random: every output is the evaluation preset's
    (pixels and boxes) or its mirror image, and both occur."""
    light = cls(64, 48, expand_ratio=1.0, color_distort=False, iou_crop=False)
    img, target = _sample(h=60, w=80, masks=False)
    ref_x, ref_y = val(64, 48)(img, target)
    mirrored = ref_y.clone()
    mirrored[:, 0], mirrored[:, 2] = 64 - ref_y[:, 2], 64 - ref_y[:, 0]
    torch.manual_seed(0)
    flips = []
    for _ in range(16):
        x, y = light(img, target)
        flipped = not torch.equal(x, ref_x)
        torch.testing.assert_close(x, ref_x.flip(-1) if flipped else ref_x)
        torch.testing.assert_close(y, mirrored if flipped else ref_y)
        flips.append(flipped)
    assert 0 < sum(flips) < 16
