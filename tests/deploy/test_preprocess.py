"""The numpy preprocessing that the C++ and Java runners reproduce bit for bit."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from toolkit.deploy.preprocess import (
    ImageError,
    ImagePreprocessing,
    center_crop,
    normalize,
    preprocess_image,
    read_image,
    resize_shorter,
    resized_size,
    to_color,
)

META = {
    "model": "m",
    "preprocessing": {
        "type": "image", "layout": "NCHW", "color": "RGB", "resize": 20, "crop": [16, 16],
        "interpolation": "bilinear", "scale": 255.0, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
    },
}


def test_resized_size_rounds_half_up_on_the_longer_side():
    assert resized_size(200, 300, 256) == (256, 384)
    assert resized_size(300, 200, 256) == (384, 256)
    # 500 * 224 / 375 = 298.67 -> 299; 500 * 256 / 333 = 384.38 -> 384; 500 * 256 / 335 = 382.09 -> 382
    assert resized_size(500, 375, 224) == (299, 224)
    assert resized_size(333, 500, 256) == (256, 384)
    assert resized_size(335, 500, 256) == (256, 382)
    # exact halves round up: 3 * 5 / 2 = 7.5 -> 8
    assert resized_size(2, 3, 5) == (5, 8)
    assert resized_size(10, 10, 7) == (7, 7)


def test_resize_matches_torch_bilinear_without_antialias():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    for shorter in (16, 29, 60):  # down, slightly down, up
        ours = resize_shorter(pixels, shorter)
        h, w = resized_size(37, 53, shorter)
        ref = torch.nn.functional.interpolate(
            torch.from_numpy(pixels).permute(2, 0, 1)[None].double(), size=(h, w), mode="bilinear",
            align_corners=False, antialias=False,
        )[0].permute(1, 2, 0).numpy()
        assert ours.shape == (h, w, 3)
        assert np.array_equal(ours, np.clip(np.floor(ref + 0.5), 0, 255).astype(np.uint8))


def test_resize_to_the_same_size_is_identity():
    pixels = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    assert resize_shorter(pixels, 5) is pixels


def test_center_crop_takes_floor_offsets():
    pixels = np.arange(5 * 6, dtype=np.uint8).reshape(5, 6, 1)
    out = center_crop(pixels, (2, 3))
    # top = (5 - 2) // 2 = 1, left = (6 - 3) // 2 = 1
    assert np.array_equal(out[:, :, 0], pixels[1:3, 1:4, 0])
    with pytest.raises(ImageError, match="smaller than the crop"):
        center_crop(pixels, (6, 3))


def test_grey_conversion_uses_integer_bt601_weights_and_is_close_to_pillow():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(20, 20, 3), dtype=np.uint8)
    grey = to_color(rgb, "L")[:, :, 0].astype(int)
    r, g, b = (rgb[:, :, i].astype(int) for i in range(3))
    assert np.array_equal(grey, (299 * r + 587 * g + 114 * b + 500) // 1000)
    pil = np.asarray(Image.fromarray(rgb).convert("L")).astype(int)
    assert np.abs(grey - pil).max() <= 1
    # grey -> RGB replicates; RGBA drops alpha
    assert np.array_equal(to_color(rgb[:, :, 0], "RGB"), np.repeat(rgb[:, :, :1], 3, axis=2))
    rgba = np.concatenate([rgb, np.full((20, 20, 1), 7, np.uint8)], axis=2)
    assert np.array_equal(to_color(rgba, "RGB"), rgb)


def test_normalize_is_float32_in_a_fixed_order():
    pixels = np.array([[[0, 128, 255]]], dtype=np.uint8)
    out = normalize(pixels, 255.0, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    assert out.dtype == np.float32 and out.shape == (3, 1, 1)
    f = np.float32
    expected = [(f(v) / f(255.0) - f(m)) / f(s) for v, m, s in zip((0, 128, 255), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
    assert out.ravel().tolist() == [float(e) for e in expected]


def test_preprocess_image_end_to_end_matches_the_steps(tmp_path):
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, size=(30, 45, 3), dtype=np.uint8)
    path = tmp_path / "x.png"
    Image.fromarray(pixels).save(path)
    out = preprocess_image(path, META, [3, 16, 16])
    pre = ImagePreprocessing.from_metadata(META)
    steps = normalize(center_crop(resize_shorter(pixels, 20), (16, 16)), 255.0, pre.mean, pre.std)
    assert np.array_equal(out, steps)
    assert np.array_equal(read_image(path), pixels)  # PNG is lossless
    with pytest.raises(ImageError, match=r"graph takes \[3, 24, 24\]"):
        preprocess_image(path, META, [3, 24, 24])


def test_bad_images_get_clear_errors(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        read_image(tmp_path / "missing.png")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not an image")
    with pytest.raises(ImageError, match="cannot read image"):
        read_image(junk)
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 100).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(ImageError, match="cannot read image"):
        read_image(truncated)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"color": "CMYK"}, "color"),
        ({"resize": [256, 256]}, "one int"),
        ({"crop": [0, 5]}, "crop"),
        ({"mean": [0.1, 0.2]}, "2 values for 3 channels"),
        ({"std": [1.0, 0.0, 1.0]}, "zero"),
        ({"interpolation": "bicubic"}, "bicubic"),
        ({"layout": "NHWC"}, "NHWC"),
    ],
)
def test_bad_preprocessing_metadata_is_rejected(change, message):
    meta = {"model": "m", "preprocessing": {**META["preprocessing"], **change}}
    with pytest.raises(ImageError, match=message):
        ImagePreprocessing.from_metadata(meta)


def test_missing_preprocessing_entry():
    with pytest.raises(ImageError, match="no 'preprocessing'"):
        ImagePreprocessing.from_metadata({"model": "m"})
