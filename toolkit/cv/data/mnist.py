"""MNIST and Fashion-MNIST from their IDX files (gzipped or not)."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch
from torchvision import tv_tensors

from ._base import Dataset, DatasetFormatError, MissingDatasetError, data_root

__all__ = ["MNIST", "FashionMNIST", "read_idx"]

# IDX type codes (third byte of the magic number) -> numpy big-endian dtype.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike, expected_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (``.gz`` compressed or raw) into a numpy array.

    Parameters
    ----------
    path : path
        The file.
    expected_ndim : int, optional
        Check the number of dimensions (3 for images, 1 for labels).

    Raises
    ------
    DatasetFormatError
        For a wrong magic number, an unexpected rank, or a file whose payload is
        shorter or longer than its header says (truncated download).
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # gzip raises these for truncated/corrupt streams
        raise DatasetFormatError(f"{path}: cannot read IDX file ({err}); the file is corrupt or truncated") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DatasetFormatError(
            f"{path}: not an IDX file (magic number {raw[:4].hex() or 'missing'}; expected 0000 + type byte 08..0e"
            " + number of dimensions)"
        )
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    ndim = raw[3]
    if expected_ndim is not None and ndim != expected_ndim:
        raise DatasetFormatError(f"{path}: IDX file has {ndim} dimensions, expected {expected_ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetFormatError(f"{path}: IDX header truncated ({len(raw)} bytes)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        raise DatasetFormatError(
            f"{path}: IDX payload has {got} bytes but the header {shape} needs {expected}; "
            "the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


class MNIST(Dataset):
    """The MNIST handwritten digits: 60,000 training and 10,000 test images, 28x28 grayscale.

    Files are read from ``root`` (default ``data_root() / "mnist"``)::

        train-images-idx3-ubyte[.gz]  train-labels-idx1-ubyte[.gz]
        t10k-images-idx3-ubyte[.gz]   t10k-labels-idx1-ubyte[.gz]

    Samples are ``(image, label)``: a ``torchvision.tv_tensors.Image`` of dtype
    uint8 and shape ``(1, 28, 28)``, and an ``int``. :attr:`data` (N, 28, 28) and
    :attr:`targets` (N,) hold the whole split as tensors for batched use.

    Parameters
    ----------
    root : path, optional
        Folder holding the four files.
    train : bool, default True
        Training split (else the test split).

    Raises
    ------
    MissingDatasetError
        If the files are not there (the message lists them).
    DatasetFormatError
        If a file is malformed or images and labels disagree in count.
    """

    name = "mnist"
    classes: list[str] = [str(i) for i in range(10)]
    _how = "Download the four IDX files of the MNIST database and put them there (gzipped or not)."
    _fallbacks: tuple[Path, ...] = ()

    def __init__(self, root: str | os.PathLike | None = None, train: bool = True) -> None:
        self.train = train
        self.root = self._find_root(root)
        split = "train" if train else "t10k"
        images = read_idx(self._file(f"{split}-images-idx3-ubyte"), expected_ndim=3)
        labels = read_idx(self._file(f"{split}-labels-idx1-ubyte"), expected_ndim=1)
        if len(images) != len(labels):
            raise DatasetFormatError(
                f"{self.root}: {split} split has {len(images)} images but {len(labels)} labels"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise DatasetFormatError(f"{self.root}: {split} labels outside [0, {len(self.classes)})")
        self.data = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8))
        self.targets = torch.from_numpy(labels.astype(np.int64))

    def _files(self) -> list[str]:
        return [f"{s}-{k}-idx{d}-ubyte" for s in ("train", "t10k") for k, d in (("images", 3), ("labels", 1))]

    def _has_files(self, folder: Path) -> bool:
        split = "train" if self.train else "t10k"
        return all(
            (folder / f).is_file() or (folder / f"{f}.gz").is_file()
            for f in (f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte")
        )

    def _find_root(self, root: str | os.PathLike | None) -> Path:
        if root is not None:
            candidates = [Path(root).expanduser()]
        else:
            candidates = [data_root() / self.name, *self._fallbacks]
        for folder in candidates:
            if self._has_files(folder):
                return folder
        raise MissingDatasetError(self.name, candidates[0], [f"{f}[.gz]" for f in self._files()], self._how)

    def _file(self, stem: str) -> Path:
        plain = self.root / stem
        return plain if plain.is_file() else self.root / f"{stem}.gz"

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, idx: int) -> tuple[tv_tensors.Image, int]:
        return tv_tensors.Image(self.data[idx].unsqueeze(0)), int(self.targets[idx])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, train={self.train}, samples={len(self)})"


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: same layout and file names as :class:`MNIST`, 10 clothing classes.

    Read from ``data_root() / "fashion-mnist"``, falling back to
    ``/usr/share/datasets/fashion-mnist`` where the Debian package
    ``dataset-fashion-mnist`` installs it.
    """

    name = "fashion-mnist"
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    _how = ("Install the Debian package 'dataset-fashion-mnist' (apt-get install dataset-fashion-mnist) "
            "or put the four IDX files of Fashion-MNIST there.")
    _fallbacks = (Path("/usr/share/datasets/fashion-mnist"),)
