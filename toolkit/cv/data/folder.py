"""Image folders: ``ImageFolderDataset`` for users' own data and ``ImageNet``."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

from torchvision import tv_tensors
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset
from torchvision.transforms.v2.functional import pil_to_tensor

from ._base import Dataset, DatasetFormatError, MissingDatasetError, data_root

__all__ = ["ImageFolderDataset", "ImageNet", "read_image", "ImageDecodeError"]


class ImageDecodeError(DatasetFormatError):
    """An image file cannot be read or decoded; ``path`` names it."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        super().__init__(f"cannot decode image {self.path}: {reason}")


def read_image(path: str | os.PathLike, mode: str = "RGB") -> tv_tensors.Image:
    """Decode an image file into a uint8 ``tv_tensors.Image`` (C, H, W).

    Decoding uses Pillow (torchvision's own decoders are deprecated since 0.29).

    Parameters
    ----------
    path : path
        JPEG, PNG, GIF, WEBP, ... file.
    mode : {"RGB", "L"}
        Colour (3 channels) or grayscale (1 channel).

    Raises
    ------
    ImageDecodeError
        If the file is missing, empty or not a decodable image; the message names it.
    """
    from PIL import Image, UnidentifiedImageError

    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")
    path = Path(path)
    if path.is_dir():
        raise ImageDecodeError(path, "it is a directory, not an image file")
    if not path.is_file():
        raise ImageDecodeError(path, "no such file")
    if path.stat().st_size == 0:
        raise ImageDecodeError(path, "the file is empty")
    try:
        with warnings.catch_warnings():
            # Pillow warns between MAX_IMAGE_PIXELS and twice that, and raises above: refuse both
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img = img.convert(mode)  # convert() forces the full decode: truncated data fails here
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageDecodeError(path, f"the image is too large (a possible decompression bomb): {err}") from None
    except UnidentifiedImageError as err:
        raise ImageDecodeError(path, "not an image format Pillow recognises") from err
    except (OSError, ValueError, SyntaxError) as err:  # Pillow's errors for corrupt/truncated data
        raise ImageDecodeError(path, f"corrupt or truncated image data ({err})") from err
    return tv_tensors.Image(pil_to_tensor(img))


class ImageFolderDataset(Dataset):
    """Images in one sub-folder per class: ``root/<class>/<image>``.

    Classes are the sub-folder names in sorted order (label = position).
    Images are decoded when accessed; a corrupt file raises
    :class:`ImageDecodeError` naming the file.

    Parameters
    ----------
    root : path
        The folder of class folders.
    mode : {"RGB", "L"}, default "RGB"
        Decode to colour or grayscale.
    extensions : tuple of str, optional
        Accepted file endings (default: torchvision's image extensions).

    Attributes
    ----------
    classes : list of str
        Folder names.
    samples : list of (str, int)
        File path and label of every image.
    """

    def __init__(self, root: str | os.PathLike, mode: str = "RGB",
                 extensions: tuple[str, ...] = IMG_EXTENSIONS) -> None:
        self.root = Path(root).expanduser()
        self.mode = mode
        if not self.root.is_dir():
            raise MissingDatasetError(str(self.root.name), self.root, ["<class name>/<image file>"],
                                      "An image folder needs one sub-folder per class.")
        try:
            self.synsets, self._index = find_classes(str(self.root))
            self.samples = [(p, int(c)) for p, c in make_dataset(str(self.root), self._index, extensions=extensions)]
        except FileNotFoundError as err:
            raise MissingDatasetError(str(self.root.name), self.root, ["<class name>/<image file>"], str(err)) from err
        self.classes = list(self.synsets)
        self.targets = [c for _, c in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, idx: int) -> tuple[tv_tensors.Image, int]:
        path, label = self.samples[idx]
        return read_image(path, self.mode), label

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, classes={len(self.classes)}, samples={len(self)})"


class ImageNet(ImageFolderDataset):
    """ImageNet-1k (ILSVRC 2012) in the standard folder layout.

    ``root`` (default ``data_root() / "imagenet"``) holds ``train/`` and ``val/``,
    each with one folder per synset (``n01440764/...``). Class names come from
    ``root/LOC_synset_mapping.txt`` or ``root/synsets.txt`` when present (lines
    ``n01440764 tench, Tinca tinca``; the first name is used), else the synset ids.

    Parameters
    ----------
    root : path, optional
        Dataset folder.
    train : bool, default True
        ``train/`` or ``val/``.
    """

    _mapping_files = ("LOC_synset_mapping.txt", "synsets.txt")

    def __init__(self, root: str | os.PathLike | None = None, train: bool = True) -> None:
        base = Path(root).expanduser() if root is not None else data_root() / "imagenet"
        split = base / ("train" if train else "val")
        if not split.is_dir():
            raise MissingDatasetError(
                "imagenet", base,
                {"train/n01440764/*.JPEG": "one folder per synset", "val/n01440764/*.JPEG": "one folder per synset",
                 "LOC_synset_mapping.txt": "optional: 'n01440764 tench, Tinca tinca' per line"},
                "Get ILSVRC2012 from image-net.org (after accepting its terms) and sort val/ into synset folders.",
            )
        super().__init__(split, mode="RGB")
        self.base = base
        self.train = train
        names = self._read_names(base)
        if names:
            self.classes = [names.get(s, s) for s in self.synsets]

    @classmethod
    def _read_names(cls, base: Path) -> dict[str, str]:
        for name in cls._mapping_files:
            f = base / name
            if f.is_file():
                out = {}
                for line in f.read_text(encoding="utf-8").splitlines():
                    parts = line.strip().split(" ", 1)
                    if len(parts) == 2:
                        out[parts[0]] = parts[1].split(",")[0].strip()
                return out
        return {}
