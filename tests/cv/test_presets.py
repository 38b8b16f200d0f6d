"""Transform presets, the PCA lighting transform, load_test and top-k metrics."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from toolkit.cv import presets
from toolkit.cv.data import ImageDecodeError
from toolkit.cv.metrics import TopKAccuracy, topk_accuracy, topk_correct


def test_lighting_adds_one_rgb_offset_per_image(seed):
    img = torch.rand(3, 8, 8)
    out = presets.Lighting(0.1)(img)
    delta = out - img
    # The same offset for every pixel of a channel, different across channels.
    assert torch.allclose(delta, delta[:, :1, :1].expand_as(delta), atol=1e-6)
    assert delta.abs().sum() > 0
    assert torch.equal(presets.Lighting(0.0)(img), img)


def test_lighting_rejects_uint8_and_gray():
    with pytest.raises(TypeError, match="float image"):
        presets.Lighting(0.1)(torch.zeros(3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="3 RGB channels"):
        presets.Lighting(0.1)(torch.zeros(1, 4, 4))
    with pytest.raises(ValueError):
        presets.Lighting(-1)


def test_imagenet_presets_shapes(seed):
    img = torch.randint(0, 256, (3, 300, 400), dtype=torch.uint8)
    x = presets.imagenet_train()(img)
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32
    y = presets.imagenet_eval()(img)
    assert y.shape == (3, 224, 224)


def test_eval_preset_matches_its_metadata():
    """The metadata contract: (x / scale - mean) / std after resize + center crop."""
    img = torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8)
    meta = presets.preprocessing_metadata("fashion-mnist")
    assert meta["color"] == "L" and meta["resize"] == 0 and meta["crop"] == [28, 28]
    expected = (img.float() / meta["scale"] - meta["mean"][0]) / meta["std"][0]
    assert torch.allclose(presets.eval_preset("fashion-mnist")(img), expected, atol=1e-6)
    meta = presets.preprocessing_metadata("imagenet")
    assert meta["resize"] == 256 and meta["crop"] == [224, 224] and meta["color"] == "RGB"
    assert set(meta) == {"type", "layout", "color", "resize", "crop", "interpolation", "scale", "mean", "std"}


def test_cifar_and_mnist_train_presets(seed):
    x = presets.train_preset("cifar10")(torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8))
    assert x.shape == (3, 32, 32)
    x = presets.train_preset("mnist")(torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8))
    assert x.shape == (1, 28, 28)
    with pytest.raises(ValueError, match="no preset"):
        presets.train_preset("svhn")


def test_load_test(tmp_path):
    paths = []
    for i, (h, w) in enumerate([(300, 400), (260, 256)]):
        p = tmp_path / f"{i}.png"
        Image.fromarray(np.full((h, w, 3), 30 * i, dtype=np.uint8)).save(p)
        paths.append(p)
    batch = presets.load_test(paths)
    assert batch.shape == (2, 3, 224, 224)
    # A constant image stays constant: pixel 0 -> (0 - mean) / std.
    assert torch.allclose(batch[0, 0], torch.full((224, 224), -0.485 / 0.229), atol=1e-5)
    assert presets.load_test(paths[0], short=0, crop=200).shape == (1, 3, 200, 200)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageDecodeError, match="bad.jpg"):
        presets.load_test([paths[0], bad])
    with pytest.raises(ImageDecodeError, match="no such file"):
        presets.load_test(tmp_path / "missing.png")
    with pytest.raises(ValueError):
        presets.load_test([])


def test_topk():
    logits = torch.tensor([[0.1, 0.5, 0.4], [0.9, 0.05, 0.05], [0.2, 0.3, 0.5]])
    target = torch.tensor([2, 0, 0])
    assert topk_correct(logits, target, (1, 2, 5)) == [1, 2, 3]
    assert topk_accuracy(logits, target, (1,)) == [pytest.approx(100 / 3)]
    m = TopKAccuracy((1, 2))
    m.update(logits[:2], target[:2])
    m.update(logits[2:], target[2:])
    assert m.get() == {"top1": pytest.approx(100 / 3), "top2": pytest.approx(200 / 3)}
    # Soft (mixup) targets count their argmax.
    assert topk_correct(logits, torch.nn.functional.one_hot(target, 3).float(), (1,)) == [1]
    with pytest.raises(ValueError, match="2 predictions but 3 labels"):
        topk_correct(logits[:2], target)
