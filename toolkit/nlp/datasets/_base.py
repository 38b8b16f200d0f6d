"""Helpers shared by the text dataset loaders."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from toolkit.data import MissingDatasetError, SimpleDataset, data_root

__all__ = ["TextDataset", "check_split", "require_files", "resolve_root"]


class TextDataset(SimpleDataset):
    """A list of samples held in memory (text datasets are small next to their models)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_samples={len(self)})"


def resolve_root(root: str | os.PathLike | None, folder: str) -> Path:
    """``root`` if given, else ``data_root()/folder``."""
    return Path(root).expanduser() if root is not None else data_root() / folder


def require_files(dataset: str, root: Path, files: Mapping[str, str] | Sequence[str], how: str = "") -> None:
    """Raise :class:`MissingDatasetError` listing every expected file when one is missing."""
    names = list(files)
    if not all((root / f).exists() for f in names):
        raise MissingDatasetError(dataset, root, files, how)


def check_split(split: str, allowed: Sequence[str], dataset: str) -> None:
    if split not in allowed:
        raise ValueError(f"{dataset}: split must be one of {list(allowed)}, got {split!r}")


def read_lines(path: Path, encoding: str = "utf-8") -> list[str]:
    """Lines without their line ending; a decoding error names the file and line."""
    try:
        with open(path, encoding=encoding, newline="") as f:
            return [line.rstrip("\r\n") for line in f]
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not valid {encoding} text: {e}") from None
