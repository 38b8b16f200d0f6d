"""Segmentation exports: palette metadata, `toolkit predict` indexed PNGs, int8 pixAcc/mIoU, bad inputs (issue 14)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("torchvision")
from PIL import Image  # noqa: E402

from toolkit.deploy import load  # noqa: E402
from toolkit.deploy.cli import main  # noqa: E402
from toolkit.deploy.preprocess import ImagePreprocessing, center_crop, preprocess_image, read_image, to_color  # noqa: E402

from _vision_fixtures import SEG_NCLASS as NCLASS, SEG_SIZE as SIZE  # noqa: E402

# seg_export: the session fixture in conftest.py (a tiny FCN, _vision_fixtures.export_segmenter)


@pytest.fixture
def seg_copy(seg_export, tmp_path) -> Path:
    for suffix in (".onnx", ".json"):
        shutil.copy(f"{seg_export}{suffix}", tmp_path / f"fcn{suffix}")
    return tmp_path / "fcn"


def _run(capsys, argv):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_export_metadata(seg_export):
    meta = json.loads(Path(f"{seg_export}.json").read_text())
    assert meta["task"] == "segmentation"
    assert meta["num_classes"] == NCLASS
    assert meta["inputs"][0]["shape"][1:] == [3, SIZE, SIZE]
    assert meta["outputs"][0]["shape"][1:] == [NCLASS, SIZE, SIZE]  # logits at the input's size
    pre = meta["preprocessing"]
    assert pre["crop"] == [SIZE, SIZE] and pre["resize"] == 0 and len(pre["mean"]) == 3
    assert len(meta["palette"]) == NCLASS
    assert meta["palette"][:3] == [[0, 0, 0], [128, 0, 0], [0, 128, 0]]  # VOC's colour map


def _expected_mask(prefix: Path, photo: Path) -> np.ndarray:
    model = load(prefix)
    pre = ImagePreprocessing.from_metadata(model.metadata)
    logits = np.asarray(model(preprocess_image(photo, pre, [3, SIZE, SIZE])[None]))
    return logits[0].argmax(axis=0)


def test_predict_writes_indexed_png(seg_export, photos, tmp_path, capsys):
    pics = [p for p in photos if p.name in ("astronaut.png", "coffee.png", "camera.png")]
    rc, out, err = _run(capsys, ["predict", str(seg_export), *map(str, pics), "--out", str(tmp_path / "masks"),
                                 "--overlay", "--json"])
    assert rc == 0, err
    items = json.loads(out)
    meta = json.loads(Path(f"{seg_export}.json").read_text())
    flat = [v for c in meta["palette"] for v in c]
    for photo, item in zip(pics, items):
        assert item["input"] == str(photo)
        png = Image.open(item["mask"])
        assert png.mode == "P" and png.size == (SIZE, SIZE)
        assert png.getpalette()[: len(flat)] == flat
        mask = np.asarray(png)
        np.testing.assert_array_equal(mask, _expected_mask(seg_export, photo))
        counts = np.bincount(mask.ravel(), minlength=NCLASS)
        assert item["classes"] == {str(c): int(counts[c]) for c in range(NCLASS) if counts[c]}
        assert sum(item["classes"].values()) == SIZE * SIZE
        over = np.asarray(Image.open(Path(item["mask"]).with_name(f"{photo.stem}_overlay.png")))
        crop = center_crop(to_color(read_image(photo), "RGB"), (SIZE, SIZE))
        assert over.shape == (SIZE, SIZE, 3)
        np.testing.assert_array_equal(over[mask == 0], crop[mask == 0])  # background left as the image
        colours = np.asarray(meta["palette"], dtype=np.int32)[mask]
        fg = mask != 0
        np.testing.assert_array_equal(over[fg], (crop[fg].astype(np.int32) + colours[fg] + 1) // 2)


def test_openvino_gives_the_same_class_map(seg_export, photos, tmp_path, capsys):
    pytest.importorskip("openvino")
    photo = str(photos[0])
    outs = {}
    for runtime in ("onnxruntime", "openvino"):
        rc, out, err = _run(capsys, ["predict", str(seg_export), photo, "--out", str(tmp_path / runtime),
                                     "--runtime", runtime, "--json"])
        assert rc == 0, err
        outs[runtime] = np.asarray(Image.open(json.loads(out)[0]["mask"]))
    assert (outs["onnxruntime"] == outs["openvino"]).mean() >= 0.9999


def test_openvino_logits_come_back_as_nchw(seg_export):
    # OpenVINOBlock asks OpenVINO for NHWC logits (no reference reorder) and hands back an NCHW view
    pytest.importorskip("openvino")
    from toolkit.deploy import load_openvino

    x = np.random.default_rng(0).random((1, 3, SIZE, SIZE), dtype=np.float32)
    block = load_openvino(seg_export, num_threads=1)
    assert block._nhwc == [0]
    got, want = block(x), load(seg_export)(x)
    assert got.shape == want.shape == (1, NCLASS, SIZE, SIZE)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * (1 + np.abs(want).max()))
    assert (got.argmax(1) == want.argmax(1)).mean() >= 0.9999


def _one_line_error(rc, out, err, *words):
    assert rc == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("toolkit: error:"), err
    for w in words:
        assert w in lines[0], lines[0]


def test_missing_palette_is_refused(seg_copy, photos, tmp_path, capsys):
    meta_path = Path(f"{seg_copy}.json")
    meta = json.loads(meta_path.read_text())
    del meta["palette"]
    meta_path.write_text(json.dumps(meta))
    _one_line_error(*_run(capsys, ["predict", str(seg_copy), str(photos[0]), "--out", str(tmp_path / "m")]), "palette")
    assert not (tmp_path / "m" / f"{photos[0].stem}.png").exists()


def test_bad_palette_is_refused(seg_copy, photos, tmp_path, capsys):
    meta_path = Path(f"{seg_copy}.json")
    meta = json.loads(meta_path.read_text())
    meta["palette"][3] = [0, 300, 0]
    meta_path.write_text(json.dumps(meta))
    _one_line_error(*_run(capsys, ["predict", str(seg_copy), str(photos[0]), "--out", str(tmp_path / "m")]), "palette")


def test_image_smaller_than_input_is_refused(seg_export, photos, tmp_path, capsys):
    small = tmp_path / "small.png"
    Image.open(photos[0]).convert("RGB").crop((0, 0, 40, 50)).save(small)
    _one_line_error(*_run(capsys, ["predict", str(seg_export), str(small), "--out", str(tmp_path / "m")]),
                    "small.png", "smaller")


def test_unwritable_output_folder_is_refused(seg_export, photos, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    _one_line_error(*_run(capsys, ["predict", str(seg_export), str(photos[0]), "--out", str(blocker / "masks")]),
                    "--out", "cannot be created")
    assert blocker.read_text() == "not a folder"


def test_output_folder_is_required(seg_export, photos, capsys):
    _one_line_error(*_run(capsys, ["predict", str(seg_export), str(photos[0])]), "--out DIR")


def test_same_file_names_are_refused(seg_export, photos, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(photos[0], other / photos[0].name)
    _one_line_error(*_run(capsys, ["predict", str(seg_export), str(photos[0]), str(other / photos[0].name),
                                   "--out", str(tmp_path / "m")]), "overwrite")


def test_segmentation_options_refused_for_classifiers(tiny_export, photos, tmp_path, capsys):
    _one_line_error(*_run(capsys, ["predict", str(tiny_export), str(photos[0]), "--out", str(tmp_path)]),
                    "out", "classification")


@pytest.mark.slow
def test_quantize_reports_pixacc_miou(seg_copy, tmp_path, monkeypatch, capsys):
    from toolkit.cv.data import build_fashion_scenes

    monkeypatch.setenv("TOOLKIT_DATA", str(tmp_path / "data"))
    folder = build_fashion_scenes(num_train=4, num_val=3, image_size=SIZE, seed=1, num_workers=1)
    rc, out, err = _run(capsys, ["quantize", str(seg_copy), "--calib", str(folder / "train"), "--batch-size", "4",
                                 "--num-calib-batches", "1", "--val", "fashion-scenes", "--json"])
    assert rc == 0, err
    seg = json.loads(out)["segmentation"]
    assert seg["samples"] == 3 and seg["val"] == "fashion-scenes"
    for key in ("fp32_pixAcc", "int8_pixAcc", "fp32_mIoU", "int8_mIoU", "int8_pixel_agreement"):
        assert 0.0 <= seg[key] <= 1.0
    # the fp32 numbers are the metric of the fp32 graph on the same crops, recomputed here
    from toolkit.cv.data import FashionScenesSegmentation
    from toolkit.cv.data.segmentation import mask_to_target
    from toolkit.cv.metrics import SegmentationMetric

    model, metric = load(seg_copy), SegmentationMetric(NCLASS)
    pre = ImagePreprocessing.from_metadata(model.metadata)
    for image, mask in FashionScenesSegmentation("val"):
        pixels = np.asarray(image).transpose(1, 2, 0).copy()
        pred = np.asarray(model(preprocess_image(pixels, pre, [3, SIZE, SIZE])[None])).argmax(axis=1)
        metric.update(mask_to_target(np.asarray(mask)).numpy()[None], pred)
    assert metric.get() == pytest.approx((seg["fp32_pixAcc"], seg["fp32_mIoU"]), abs=1e-12)
    # the int8 export segments too, with the palette carried over
    int8 = Path(f"{seg_copy}-int8")
    assert json.loads(Path(f"{int8}.json").read_text())["palette"] == json.loads(Path(f"{seg_copy}.json").read_text())["palette"]
    rc, out, err = _run(capsys, ["predict", str(int8), str(folder / "val" / sorted(p.name for p in (folder / "val").iterdir())[0]),
                                 "--out", str(tmp_path / "m8"), "--json"])
    assert rc == 0, err
    assert Image.open(json.loads(out)[0]["mask"]).mode == "P"


# ---------------------------------------------------------------- the C++ runner (deploy/cpp)
def _native_vs_python(cpp_runner, prefix, pics, tmp_path, capsys):
    from _deploy_helpers import native_json

    got = native_json(cpp_runner, prefix, pics, "--out", tmp_path / "cpp")
    rc, out, err = _run(capsys, ["predict", str(prefix), *map(str, pics), "--out", str(tmp_path / "py"),
                                 "--runtime", "openvino", "--json"])
    assert rc == 0, err
    ref = json.loads(out)
    assert [g["input"] for g in got] == [r["input"] for r in ref]
    for g, r in zip(got, ref):
        a, b = Image.open(g["mask"]), Image.open(r["mask"])
        assert a.mode == "P" and a.size == b.size and a.getpalette() == b.getpalette()
        assert (np.asarray(a) == np.asarray(b)).mean() >= 0.9999
        assert sum(g["classes"].values()) == SIZE * SIZE
        if (np.asarray(a) == np.asarray(b)).all():
            assert g["classes"] == r["classes"]


def test_cpp_runner_writes_the_same_class_maps(cpp_runner, seg_export, photos, tmp_path, capsys):
    _native_vs_python(cpp_runner, seg_export, photos[:3], tmp_path, capsys)


@pytest.mark.slow
def test_cpp_runner_int8(cpp_runner, seg_copy, photos, tmp_path, capsys):
    calib = tmp_path / "calib"
    calib.mkdir()
    for p in photos:
        shutil.copy(p, calib / p.name)
    assert main(["quantize", str(seg_copy), "--calib", str(calib), "--batch-size", "2", "--num-calib-batches", "2"]) == 0
    capsys.readouterr()
    _native_vs_python(cpp_runner, Path(f"{seg_copy}-int8"), photos[:3], tmp_path, capsys)


def test_cpp_runner_bad_inputs(cpp_runner, seg_copy, photos, tmp_path):
    from _deploy_helpers import run_native

    def fails(*args, message):
        done = run_native(cpp_runner, *args, check=False)
        assert done.returncode == 1 and done.stdout == "", done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], done.stderr

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    fails(seg_copy, photos[0], "--out", blocker / "m", message="cannot be created")
    fails(seg_copy, photos[0], message="--out DIR")
    small = tmp_path / "small.png"
    Image.open(photos[0]).convert("RGB").crop((0, 0, 40, 50)).save(small)
    fails(seg_copy, small, "--out", tmp_path / "m", message="smaller")
    meta_path = Path(f"{seg_copy}.json")
    meta = json.loads(meta_path.read_text())
    del meta["palette"]
    meta_path.write_text(json.dumps(meta))
    fails(seg_copy, photos[0], "--out", tmp_path / "m", message="palette")
