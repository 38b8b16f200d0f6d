"""CIFAR-10 and CIFAR-100 from the "python version" pickle batches."""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import torch
from torchvision import tv_tensors

from ._base import Dataset, DatasetFormatError, MissingDatasetError, data_root

__all__ = ["CIFAR10", "CIFAR100"]


try:  # numpy >= 2 moved it; batches written by numpy 1 name the old module
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy 1
    from numpy.core.multiarray import _reconstruct


class _BatchUnpickler(pickle.Unpickler):
    """Unpickler that only builds what a CIFAR batch holds (dicts, lists, bytes, numpy arrays).

    The batches are pickles; a plain ``pickle.load`` would run any code a
    tampered file names, so every other global is refused.
    """

    _allowed = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._allowed:
            if module.startswith("numpy") and module.endswith("multiarray"):
                return _reconstruct
            if module == "_codecs":
                import codecs
                return codecs.encode
            return getattr(np, name)
        raise pickle.UnpicklingError(f"CIFAR batch refers to {module}.{name}, which a CIFAR batch never holds")


def _load_batch(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(io.BytesIO(f.read()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
        raise DatasetFormatError(f"{path}: not a readable CIFAR batch ({err}); the file is corrupt or truncated") from err
    if not isinstance(batch, dict) or "data" not in batch:
        raise DatasetFormatError(f"{path}: not a CIFAR batch (no 'data' entry)")
    return batch


class CIFAR10(Dataset):
    """CIFAR-10: 50,000 training and 10,000 test 32x32 RGB images in 10 classes.

    Read from ``root`` (default ``data_root() / "cifar-10-batches-py"``), the
    folder of the official "CIFAR-10 python version" archive:
    ``data_batch_1`` ... ``data_batch_5``, ``test_batch``, ``batches.meta``.

    Samples are ``(image, label)``: a uint8 ``tv_tensors.Image`` (3, 32, 32) and
    an ``int``; :attr:`data` (N, 3, 32, 32) and :attr:`targets` hold the split.

    Parameters
    ----------
    root : path, optional
        The extracted folder.
    train : bool, default True
        Training split (else test).
    """

    folder = "cifar-10-batches-py"
    train_files = [f"data_batch_{i}" for i in range(1, 6)]
    test_files = ["test_batch"]
    meta_file, meta_key, label_key = "batches.meta", "label_names", "labels"
    num_classes = 10

    def __init__(self, root: str | os.PathLike | None = None, train: bool = True) -> None:
        self.root = Path(root).expanduser() if root is not None else data_root() / self.folder
        self.train = train
        names = self.train_files if train else self.test_files
        missing = [n for n in names if not (self.root / n).is_file()]
        if missing:
            raise MissingDatasetError(
                type(self).__name__, self.root, self.train_files + self.test_files + [self.meta_file],
                f"Extract the official '{type(self).__name__} python version' archive there.",
            )
        datas, labels = [], []
        for n in names:
            batch = _load_batch(self.root / n)
            data = np.asarray(batch["data"], dtype=np.uint8)
            lab = np.asarray(batch.get(self.label_key, []), dtype=np.int64)
            if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
                raise DatasetFormatError(f"{self.root / n}: data has shape {data.shape}, expected (N, 3072)")
            if len(lab) != len(data):
                raise DatasetFormatError(f"{self.root / n}: {len(data)} images but {len(lab)} labels")
            datas.append(data)
            labels.append(lab)
        data = np.concatenate(datas).reshape(-1, 3, 32, 32)
        targets = np.concatenate(labels)
        if targets.size and (targets.min() < 0 or targets.max() >= self.num_classes):
            raise DatasetFormatError(f"{self.root}: labels outside [0, {self.num_classes})")
        self.data = torch.from_numpy(np.ascontiguousarray(data))
        self.targets = torch.from_numpy(targets)
        meta = self.root / self.meta_file
        self.classes: list[str] | None = None
        if meta.is_file():
            names_ = _load_batch_meta(meta, self.meta_key)
            self.classes = names_ if len(names_) == self.num_classes else None

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, idx: int) -> tuple[tv_tensors.Image, int]:
        return tv_tensors.Image(self.data[idx]), int(self.targets[idx])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, train={self.train}, samples={len(self)})"


def _load_batch_meta(path: Path, key: str) -> list[str]:
    try:
        with open(path, "rb") as f:
            meta = _BatchUnpickler(io.BytesIO(f.read()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
        raise DatasetFormatError(f"{path}: not a readable CIFAR meta file ({err})") from err
    return [str(n) for n in meta.get(key, [])] if isinstance(meta, dict) else []


class CIFAR100(CIFAR10):
    """CIFAR-100 (fine labels): files ``train``, ``test``, ``meta`` in ``cifar-100-python``."""

    folder = "cifar-100-python"
    train_files = ["train"]
    test_files = ["test"]
    meta_file, meta_key, label_key = "meta", "fine_label_names", "fine_labels"
    num_classes = 100
