import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from toolkit.data import ArrayDataset, Dataset, MissingDatasetError, MultiScaleDataset, SimpleDataset, data_root


def _double(x):
    return 2 * x


def _add(a, b):
    return a + b


def _crop(sample, size):
    return sample, size


def test_transform_and_transform_first():
    ds = ArrayDataset([1, 2, 3], ["a", "b", "c"])
    assert ds[1] == (2, "b") and len(ds) == 3
    first = ds.transform_first(_double)
    assert isinstance(first, Dataset) and first[2] == (6, "c")
    assert SimpleDataset([1, 2]).transform_first(_double)[1] == 4  # non-tuple: whole sample
    assert ArrayDataset([1, 2], [10, 20]).transform(_add)[1] == 22  # tuples are unpacked
    eager = SimpleDataset([1, 2, 3]).transform(_double, lazy=False)
    assert isinstance(eager, SimpleDataset) and list(eager) == [2, 4, 6]
    assert pickle.loads(pickle.dumps(first))[0] == (2, "a")


def test_array_dataset_checks_lengths():
    assert ArrayDataset(np.arange(4))[3] == 3  # one array: the element itself
    with pytest.raises(ValueError, match="array 0 has 3 items but array 1 has 2"):
        ArrayDataset([1, 2, 3], torch.zeros(2))
    with pytest.raises(ValueError, match="at least one"):
        ArrayDataset()


def test_multiscale_dataset():
    ds = MultiScaleDataset(SimpleDataset(["img0", "img1"]), _crop, default_size=(224, 224))
    assert ds[(160, 192, 1)] == ("img1", (160, 192)) and ds[0] == ("img0", (224, 224))


def test_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("TOOLKIT_DATA", str(tmp_path))
    assert data_root() == tmp_path
    monkeypatch.delenv("TOOLKIT_DATA")
    assert data_root() == Path.home() / ".toolkit" / "datasets"


def test_missing_dataset_error(tmp_path):
    err = MissingDatasetError("voc", tmp_path, {"VOC2012/JPEGImages/": "the images"}, how="download from ...")
    assert isinstance(err, FileNotFoundError)
    text = str(err)
    assert "voc" in text and str(tmp_path / "VOC2012/JPEGImages/") in text and "the images" in text
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == text and again.files == err.files
