"""Vision datasets: formats, fallbacks and the errors for missing or malformed files."""
from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from toolkit.cv.data import (
    CIFAR10,
    CIFAR100,
    MNIST,
    DatasetFormatError,
    FashionMNIST,
    ImageDecodeError,
    ImageFolderDataset,
    ImageNet,
    MissingDatasetError,
    read_idx,
)


def _idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def _write_mnist(folder: Path, n_train=12, n_test=5, gz=True, seed=0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        out[split] = (images, labels)
        for kind, arr, d in (("images", images, 3), ("labels", labels, 1)):
            name = f"{split}-{kind}-idx{d}-ubyte"
            data = _idx_bytes(arr)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return out["train"]


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_idx_gz_and_plain(tmp_path, gz):
    images, labels = _write_mnist(tmp_path / "mnist", gz=gz)
    ds = MNIST(tmp_path / "mnist")
    assert len(ds) == 12
    x, y = ds[3]
    assert x.shape == (1, 28, 28) and x.dtype == torch.uint8
    assert torch.equal(x[0], torch.from_numpy(images[3])) and y == int(labels[3])
    assert len(MNIST(tmp_path / "mnist", train=False)) == 5


def test_mnist_uses_toolkit_data_root(tmp_path, monkeypatch):
    _write_mnist(tmp_path / "mnist")
    monkeypatch.setenv("TOOLKIT_DATA", str(tmp_path))
    assert len(MNIST()) == 12


def test_missing_dataset_says_which_files_go_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLKIT_DATA", str(tmp_path))
    with pytest.raises(MissingDatasetError) as err:
        MNIST()
    text = str(err.value)
    assert str(tmp_path / "mnist") in text and "train-images-idx3-ubyte" in text


def test_fashion_mnist_falls_back_to_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLKIT_DATA", str(tmp_path))  # no fashion-mnist folder there
    if not Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").is_file():
        with pytest.raises(MissingDatasetError, match="dataset-fashion-mnist"):
            FashionMNIST(train=False)
        return
    ds = FashionMNIST(train=False)
    assert len(ds) == 10000 and ds.classes[9] == "Ankle boot"
    assert ds.targets.bincount().tolist() == [1000] * 10  # the test split is balanced


def test_fashion_mnist_prefers_toolkit_data(tmp_path, monkeypatch):
    _write_mnist(tmp_path / "fashion-mnist")
    monkeypatch.setenv("TOOLKIT_DATA", str(tmp_path))
    assert len(FashionMNIST()) == 12


def test_truncated_idx(tmp_path):
    _write_mnist(tmp_path, gz=False)
    f = tmp_path / "train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(DatasetFormatError, match="truncated"):
        MNIST(tmp_path)


def test_truncated_gzip(tmp_path):
    _write_mnist(tmp_path, gz=True)
    f = tmp_path / "train-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:200])
    with pytest.raises(DatasetFormatError, match="train-images-idx3-ubyte.gz"):
        MNIST(tmp_path)


def test_wrong_magic(tmp_path):
    f = tmp_path / "x-idx3-ubyte"
    f.write_bytes(b"\x12\x34\x08\x03" + bytes(20))
    with pytest.raises(DatasetFormatError, match="magic"):
        read_idx(f)


def test_wrong_rank(tmp_path):
    f = tmp_path / "labels"
    f.write_bytes(_idx_bytes(np.zeros((2, 2), np.uint8)))
    with pytest.raises(DatasetFormatError, match="2 dimensions, expected 1"):
        read_idx(f, expected_ndim=1)


def test_count_mismatch(tmp_path):
    _write_mnist(tmp_path, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(11, np.uint8)))
    with pytest.raises(DatasetFormatError, match="12 images but 11 labels"):
        MNIST(tmp_path)


# ----------------------------------------------------------------------------- CIFAR
def _write_cifar(folder: Path, files, n=4, label_key="labels", classes=10):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for name in files:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 label_key: rng.integers(0, classes, n).tolist(), "batch_label": "x"}
        (folder / name).write_bytes(pickle.dumps(batch))


def test_cifar10(tmp_path):
    root = tmp_path / "c10"
    _write_cifar(root, [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"])
    (root / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    ds = CIFAR10(root)
    assert len(ds) == 20 and ds.classes[3] == "c3"
    x, y = ds[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.uint8 and 0 <= y < 10
    assert len(CIFAR10(root, train=False)) == 4


def test_cifar100_fine_labels(tmp_path):
    root = tmp_path / "c100"
    _write_cifar(root, ["train", "test"], label_key="fine_labels", classes=100)
    assert len(CIFAR100(root)) == 4


def test_cifar_refuses_pickled_code(tmp_path):
    root = tmp_path / "evil"
    _write_cifar(root, [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"])

    class Evil:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    (root / "data_batch_1").write_bytes(pickle.dumps({"data": Evil()}))
    with pytest.raises(DatasetFormatError, match="never holds"):
        CIFAR10(root)
    assert not (tmp_path / "pwned").exists()


def test_cifar_missing_and_malformed(tmp_path):
    with pytest.raises(MissingDatasetError, match="data_batch_1"):
        CIFAR10(tmp_path / "none")
    root = tmp_path / "bad"
    _write_cifar(root, [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"])
    (root / "test_batch").write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [1]}))
    with pytest.raises(DatasetFormatError, match="2 images but 1 labels"):
        CIFAR10(root, train=False)


# ----------------------------------------------------------------------------- folders
def _png(path: Path, h=10, w=12, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), value, dtype=np.uint8)).save(path, format="PNG")


def test_image_folder(tmp_path):
    _png(tmp_path / "cat" / "a.png", value=10)
    _png(tmp_path / "dog" / "b.png", value=200)
    _png(tmp_path / "dog" / "c.png", value=100)
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    ds = ImageFolderDataset(tmp_path)
    assert ds.classes == ["cat", "dog"] and len(ds) == 3
    x, y = ds[1]
    assert y == 1 and x.shape == (3, 10, 12) and int(x[0, 0, 0]) == 200
    gray, _ = ImageFolderDataset(tmp_path, mode="L")[0]
    assert gray.shape == (1, 10, 12)


def test_corrupt_image_names_the_file(tmp_path):
    _png(tmp_path / "cat" / "a.png")
    bad = tmp_path / "cat" / "b.png"
    good = (tmp_path / "cat" / "a.png").read_bytes()
    bad.write_bytes(good[: len(good) // 2])  # truncated PNG
    ds = ImageFolderDataset(tmp_path)
    with pytest.raises(ImageDecodeError) as err:
        ds[1]
    assert str(bad) in str(err.value)
    empty = tmp_path / "cat" / "c.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageDecodeError, match="empty"):
        ImageFolderDataset(tmp_path)[2]


def test_image_folder_missing(tmp_path):
    with pytest.raises(MissingDatasetError):
        ImageFolderDataset(tmp_path / "nope")


def test_imagenet_layout_and_class_names(tmp_path):
    for split in ("train", "val"):
        _png(tmp_path / split / "n01440764" / "x.JPEG.png")
        _png(tmp_path / split / "n01443537" / "y.png")
    (tmp_path / "LOC_synset_mapping.txt").write_text("n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n")
    ds = ImageNet(tmp_path, train=False)
    assert ds.classes == ["tench", "goldfish"] and ds.synsets == ["n01440764", "n01443537"] and len(ds) == 2
    with pytest.raises(MissingDatasetError, match="LOC_synset_mapping"):
        ImageNet(tmp_path / "elsewhere")


def test_datasets_support_transform_first(tmp_path):
    _write_mnist(tmp_path)
    ds = MNIST(tmp_path).transform_first(lambda x: x.float() / 255)
    x, y = ds[0]
    assert x.dtype == torch.float32 and float(x.max()) <= 1.0
