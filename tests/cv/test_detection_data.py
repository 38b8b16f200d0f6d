"""Detection data: the offline fashion-scenes set, COCO and VOC readers, GluonCV labels, batchify, bad input."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from torchvision import tv_tensors

from toolkit.cv.data import (
    VOC_CLASSES,
    COCODetection,
    DatasetFormatError,
    FashionScenes,
    ImageDecodeError,
    MissingDatasetError,
    VOCDetection,
    build_fashion_scenes,
    detection_batchify,
    to_gluoncv_label,
)
from toolkit.cv.data.scenes import SCENES_CLASSES

SMALL = dict(num_train=12, num_val=6, image_size=64, seed=3)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    return build_fashion_scenes(tmp_path_factory.mktemp("data") / "fashion_scenes", **SMALL)


# ----------------------------------------------------------------------------- fashion-scenes
def test_scenes_layout_and_version(scenes):
    meta = json.loads((scenes / "VERSION.json").read_text())
    assert meta["arguments"]["num_train"] == 12 and meta["arguments"]["image_size"] == 64
    assert meta["classes"] == list(SCENES_CLASSES) and len(SCENES_CLASSES) == 10
    for split, n in (("train", 12), ("val", 6)):
        ann = scenes / "annotations" / f"instances_{split}.json"
        assert meta["sha256"][f"annotations/instances_{split}.json"] == hashlib.sha256(ann.read_bytes()).hexdigest()
        assert len(list((scenes / split).glob("*.png"))) == n


def test_scenes_items_follow_contract(scenes):
    ds = FashionScenes("train", scenes, with_masks=True)
    assert len(ds) == 12 and ds.classes == SCENES_CLASSES
    n_objects = 0
    for i in range(len(ds)):
        img, t = ds[i]
        assert isinstance(img, tv_tensors.Image) and img.dtype == torch.uint8 and img.shape == (3, 64, 64)
        boxes, masks = t["boxes"], t["masks"]
        assert isinstance(boxes, tv_tensors.BoundingBoxes) and boxes.dtype == torch.float32
        assert tuple(boxes.canvas_size) == (64, 64)
        assert t["labels"].dtype == torch.int64 and t["difficult"].dtype == torch.bool
        assert isinstance(masks, tv_tensors.Mask) and masks.shape == (len(boxes), 64, 64)
        assert 1 <= len(boxes) <= 6
        n_objects += len(boxes)
        for box, m in zip(boxes, masks):
            ys, xs = torch.nonzero(m, as_tuple=True)
            # the box is tight around the visible (post-occlusion) mask, in pixel edges
            assert box.tolist() == [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]
        # visible masks never overlap: occluded pixels belong to the item on top
        assert masks.sum(0).max() <= 1
    assert n_objects > 12


def test_scenes_rle_matches_pycocotools_boxes(scenes):
    data = json.loads((scenes / "annotations" / "instances_val.json").read_text())
    assert {c["id"] for c in data["categories"]} == set(range(1, 11))
    for ann in data["annotations"]:
        assert ann["iscrowd"] == 0
        assert mask_utils.toBbox(ann["segmentation"]).tolist() == ann["bbox"]
        assert mask_utils.area(ann["segmentation"]) == ann["area"]


def test_scenes_deterministic_and_idempotent(scenes, tmp_path):
    again = build_fashion_scenes(tmp_path / "s", **SMALL)
    a = json.loads((scenes / "VERSION.json").read_text())
    b = json.loads((again / "VERSION.json").read_text())
    assert a["sha256"] == b["sha256"] and a["pixels_sha256"] == b["pixels_sha256"]
    stamp = (again / "VERSION.json").stat().st_mtime_ns
    build_fashion_scenes(tmp_path / "s", **SMALL)  # current: nothing rewritten
    assert (again / "VERSION.json").stat().st_mtime_ns == stamp
    other = build_fashion_scenes(tmp_path / "s", **{**SMALL, "seed": 4})  # other arguments: rebuilt
    c = json.loads((other / "VERSION.json").read_text())
    assert c["arguments"]["seed"] == 4 and c["pixels_sha256"] != a["pixels_sha256"]
    # a tampered annotation file is noticed and the set rebuilt
    ann = other / "annotations" / "instances_val.json"
    ann.write_text("{}")
    build_fashion_scenes(tmp_path / "s", **{**SMALL, "seed": 4})
    assert json.loads(ann.read_text())["annotations"]


def _build_small(root):
    build_fashion_scenes(root, **SMALL)


def test_scenes_concurrent_builds(tmp_path):
    """Two processes (DDP ranks) asking for the set at once: both get it whole, nothing is left behind."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_build_small, args=(tmp_path / "fashion_scenes",)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".fashion_scenes.lock", "fashion_scenes"]
    assert len(FashionScenes("train", tmp_path / "fashion_scenes")) == 12


def test_scenes_built_on_first_use(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLKIT_DATA", str(tmp_path))
    ds = FashionScenes("val", num_train=2, num_val=3, image_size=48, min_items=0, max_items=2)
    assert (tmp_path / "fashion_scenes" / "VERSION.json").is_file() and len(ds) == 3
    with pytest.raises(ValueError, match="split"):
        FashionScenes("test")
    with pytest.raises(ValueError, match="min_items"):
        build_fashion_scenes(tmp_path / "x", min_items=3, max_items=2)


def test_scenes_background_not_thresholdable(scenes):
    """Item pixels and background pixels overlap in every channel's range: no global threshold splits them."""
    ds = FashionScenes("train", scenes, with_masks=True)
    fg, bg = [], []
    for i in range(len(ds)):
        img, t = ds[i]
        obj = t["masks"].sum(0).bool()
        fg.append(img[:, obj].float().mean(0))
        bg.append(img[:, ~obj].float().mean(0))
    fg, bg = torch.cat(fg), torch.cat(bg)
    assert fg.min() < bg.median() < fg.max() and bg.min() < fg.median() < bg.max()


# ----------------------------------------------------------------------------- COCO fixtures
def _coco_fixture(root: Path, images: list[tuple[int, int]], anns: list[dict], categories=None) -> Path:
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "mini").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    infos = []
    for k, (w, h) in enumerate(images):
        if w and h:
            Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "mini" / f"{k}.png")
        infos.append({"id": 10 + k, "file_name": f"{k}.png", "width": w, "height": h})
    cats = categories or [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}, {"id": 5, "name": "bird"}]
    data = {"images": infos, "annotations": anns, "categories": cats}
    path = root / "annotations" / "instances_mini.json"
    path.write_text(json.dumps(data))
    return path


def _ann(i, img, cat, bbox, crowd=0, **kw):
    return {"id": i, "image_id": img, "category_id": cat, "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": crowd,
            **kw}


def test_coco_contiguous_ids_crowd_and_clipping(tmp_path):
    poly = [[2, 2, 12, 2, 12, 8, 2, 8]]
    _coco_fixture(tmp_path, [(40, 30), (20, 20), (16, 16)], [
        _ann(1, 10, 7, [2, 2, 10, 6], segmentation=poly),
        _ann(2, 10, 3, [30, 20, 20, 20], segmentation=[[30, 20, 39, 20, 39, 29]]),  # clipped to the image
        _ann(3, 10, 5, [1, 1, 5, 5], crowd=1, segmentation=poly),             # crowd
        _ann(4, 11, 3, [5, 5, 0, 4]),                                           # zero width: dropped
        _ann(5, 11, 3, [50, 50, 4, 4]),                                         # outside: dropped
    ])
    with pytest.warns(UserWarning, match="dropped 2 box"):
        ds = COCODetection(tmp_path, "mini", skip_empty=False, with_masks=True)
    assert ds.classes == ("cat", "bird", "dog")  # category id order 3, 5, 7
    assert ds.json_id_to_contiguous == {3: 0, 5: 1, 7: 2} and ds.contiguous_id_to_json[2] == 7
    assert len(ds) == 3 and ds.num_dropped == 2
    img, t = ds[0]
    assert img.shape == (3, 30, 40) and t["image_id"] == 10
    assert t["boxes"].tolist() == [[2, 2, 12, 8], [30, 20, 40, 30]]
    assert t["labels"].tolist() == [2, 0] and t["difficult"].tolist() == [False, False]
    assert t["masks"].shape == (2, 30, 40) and t["masks"][0, 4, 5] == 1 and t["masks"][0, 20, 30] == 0
    np.testing.assert_array_equal(to_gluoncv_label(t), [[2, 2, 12, 8, 2, 0], [30, 20, 40, 30, 0, 0]])
    np.testing.assert_array_equal(ds.label(0), to_gluoncv_label(t))
    # images with nothing usable: present as empty targets, or skipped
    _, t1 = ds[1]
    assert t1["boxes"].shape == (0, 4) and t1["labels"].shape == (0,) and t1["masks"].shape == (0, 20, 20)
    with pytest.warns(UserWarning):
        assert len(COCODetection(tmp_path, "instances_mini")) == 1  # skip_empty=True, GluonCV's default
    with pytest.warns(UserWarning):
        crowd = COCODetection(tmp_path, "mini", use_crowd=True, skip_empty=False)
    _, tc = crowd[0]
    assert tc["labels"].tolist() == [2, 0, 1] and tc["difficult"].tolist() == [False, False, True]
    assert crowd.coco.getAnnIds(imgIds=[10]) == [1, 2, 3]


def test_coco_json_path_and_transform(tmp_path):
    ann = _coco_fixture(tmp_path, [(8, 8)], [_ann(1, 10, 3, [0, 0, 4, 4])])
    ds = COCODetection(tmp_path, str(ann), transform=lambda img, t: (img.float(), to_gluoncv_label(t)))
    img, label = ds[0]
    assert img.dtype == torch.float32 and label.tolist() == [[0, 0, 4, 4, 0, 0]]
    assert ds.annotation_files == [ann]


def test_coco_bad_input(tmp_path):
    with pytest.raises(MissingDatasetError, match="instances_nope.json"):
        COCODetection(tmp_path, "nope")
    ann = _coco_fixture(tmp_path, [(8, 8)], [_ann(1, 10, 99, [0, 0, 4, 4])])
    with pytest.raises(DatasetFormatError, match="category_id 99"):
        COCODetection(tmp_path, "mini")
    _coco_fixture(tmp_path, [(8, 8)], [_ann(1, 10, 3, [0, 0, 4, 4]) | {"bbox": [0, "a", 4, 4]}])
    with pytest.raises(DatasetFormatError, match=r"annotation 1 has bbox \[0, 'a', 4, 4\]"):
        COCODetection(tmp_path, "mini")
    ann.write_text('{"images": [], "annotations": [')
    with pytest.raises(DatasetFormatError, match=r"instances_mini.json: not valid JSON"):
        COCODetection(tmp_path, "mini")
    ann.write_text('{"images": []}')
    with pytest.raises(DatasetFormatError, match="missing key"):
        COCODetection(tmp_path, "mini")
    # image whose file is empty, and an image whose size disagrees with the annotation
    _coco_fixture(tmp_path, [(8, 8), (8, 8)], [_ann(1, 10, 3, [0, 0, 4, 4]), _ann(2, 11, 3, [0, 0, 4, 4])])
    (tmp_path / "mini" / "0.png").write_bytes(b"")
    Image.new("RGB", (9, 8)).save(tmp_path / "mini" / "1.png")
    ds = COCODetection(tmp_path, "mini")
    with pytest.raises(ImageDecodeError, match="0.png"):
        ds[0]
    with pytest.raises(DatasetFormatError, match="1.png: image is 9x8"):
        ds[1]
    _coco_fixture(tmp_path, [(0, 8)], [])
    with pytest.raises(DatasetFormatError, match="size 0x8"):
        COCODetection(tmp_path, "mini")


# ----------------------------------------------------------------------------- VOC fixtures
def _voc_xml(objects: list[tuple], w=32, h=24, fname=None) -> str:
    objs = "".join(
        f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for n, d, b in objects)
    fn = f"<filename>{fname}</filename>" if fname else ""
    return f"<annotation>{fn}<size><width>{w}</width><height>{h}</height><depth>3</depth></size>{objs}</annotation>"


def _voc_fixture(root: Path, year: int, split: str, items: dict[str, str]) -> None:
    base = root / "VOCdevkit" / f"VOC{year}"
    for sub in ("Annotations", "ImageSets/Main", "JPEGImages"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for img_id, xml in items.items():
        (base / "Annotations" / f"{img_id}.xml").write_text(xml)
        Image.new("RGB", (32, 24), (40, 80, 120)).save(base / "JPEGImages" / f"{img_id}.jpg")
    (base / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(items) + "\n")


def test_voc_reads_years_difficult_and_class_order(tmp_path):
    _voc_fixture(tmp_path, 2007, "trainval", {
        "000001": _voc_xml([("dog", 0, (1, 1, 10, 12)), ("person", 1, (5, 6, 32, 24))]),
        "000002": _voc_xml([]),
    })
    _voc_fixture(tmp_path, 2012, "trainval", {"2012_000001": _voc_xml([("tvmonitor", 0, (3, 3, 40, 8))])})
    ds = VOCDetection(tmp_path)
    assert ds.classes == VOC_CLASSES and len(VOC_CLASSES) == 20 and VOC_CLASSES.index("person") == 14
    assert len(ds) == 3
    img, t = ds[0]
    assert img.shape == (3, 24, 32)
    assert t["boxes"].tolist() == [[0, 0, 10, 12], [4, 5, 32, 24]]
    assert t["labels"].tolist() == [VOC_CLASSES.index("dog"), 14] and t["difficult"].tolist() == [False, True]
    assert ds[1][1]["boxes"].shape == (0, 4)
    assert ds[2][1]["boxes"].tolist() == [[2, 2, 32, 8]]  # clipped to the image width
    assert to_gluoncv_label(t)[:, 5].tolist() == [0, 1]
    assert len(VOCDetection(tmp_path, splits=[(2007, "trainval")])) == 2


def test_voc_bad_input(tmp_path):
    with pytest.raises(MissingDatasetError, match="VOC2007"):
        VOCDetection(tmp_path, splits=[(2007, "test")])
    _voc_fixture(tmp_path, 2007, "test", {"a": _voc_xml([("unicorn", 0, (1, 1, 5, 5))])})
    with pytest.raises(DatasetFormatError, match="a.xml: unknown class name 'unicorn'"):
        VOCDetection(tmp_path, splits=[(2007, "test")])
    _voc_fixture(tmp_path, 2007, "test", {"a": _voc_xml([("dog", "yes", (1, 1, 5, 5))])})
    with pytest.raises(DatasetFormatError, match="<difficult>yes</difficult>"):
        VOCDetection(tmp_path, splits=[(2007, "test")])
    _voc_fixture(tmp_path, 2007, "test", {"a": _voc_xml([("dog", 0, (1, 1, "x", 5))])})
    with pytest.raises(DatasetFormatError, match="non-numeric <xmax>"):
        VOCDetection(tmp_path, splits=[(2007, "test")])
    _voc_fixture(tmp_path, 2007, "test", {"a": "<annotation><size>"})
    with pytest.raises(DatasetFormatError, match="a.xml: XML does not parse"):
        VOCDetection(tmp_path, splits=[(2007, "test")])
    _voc_fixture(tmp_path, 2007, "test", {"a": _voc_xml([("dog", 0, (9, 9, 5, 5)), ("dog", 0, (40, 30, 50, 40))])})
    with pytest.warns(UserWarning, match="dropped 2"):
        ds = VOCDetection(tmp_path, splits=[(2007, "test")])
    assert ds[0][1]["boxes"].shape == (0, 4)
    (tmp_path / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "test.txt").write_text("a\nmissing\n")
    with pytest.raises(MissingDatasetError, match="missing.xml"):
        VOCDetection(tmp_path, splits=[(2007, "test")])


# ----------------------------------------------------------------------------- batchify
def test_batchify_pads_labels_with_minus_one():
    fn = detection_batchify()
    imgs = [torch.zeros(3, 8, 8), torch.ones(3, 8, 8), torch.ones(3, 8, 8)]
    labels = [np.zeros((0, 6), np.float32), np.array([[1, 2, 3, 4, 0, 0]], np.float32),
              np.array([[1, 1, 2, 2, 1, 0], [0, 0, 5, 5, 2, 1]], np.float32)]
    x, y = fn(list(zip(imgs, labels)))
    assert x.shape == (3, 3, 8, 8) and y.shape == (3, 2, 6) and y.dtype == torch.float32
    assert (y[0] == -1).all() and (y[1, 1] == -1).all() and y[2].tolist() == labels[2].tolist()
    _, empty = fn([(imgs[0], labels[0]), (imgs[1], labels[0])])
    assert empty.shape == (2, 0, 6)


# ----------------------------------------------------------------------------- end to end
def test_scenes_through_preset_loader_and_metrics(scenes):
    """The offline set flows through a preset, a worker DataLoader and both metrics (ground truth as
    predictions scores 1.0 everywhere)."""
    from torch.utils.data import DataLoader

    from toolkit.cv.metrics import COCODetectionMetric, VOC07MApMetric
    from toolkit.cv.presets.ssd import SSDDefaultValTransform

    val = FashionScenes("val", scenes)
    loader = DataLoader(val.transform(SSDDefaultValTransform(64, 64)), batch_size=4, num_workers=2,
                        collate_fn=detection_batchify())
    voc, coco = VOC07MApMetric(class_names=list(val.classes)), COCODetectionMetric(val)
    seen = 0
    for x, y in loader:
        assert x.shape[1:] == (3, 64, 64) and y.shape[-1] == 6
        voc.update(y[..., :4], y[..., 4], torch.ones_like(y[..., 4]), y[..., :4], y[..., 4], y[..., 5])
        coco.update(y[..., :4], y[..., 4], torch.where(y[..., 4] >= 0, 1.0, -1.0))
        seen += len(x)
    assert seen == len(val)
    assert voc.get()[1][-1] == pytest.approx(1.0)
    names, values = coco.get()
    assert names[0] == "mAP" and values[0] == pytest.approx(1.0) and values[1] == pytest.approx(1.0)
