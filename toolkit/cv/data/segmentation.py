"""Semantic segmentation datasets: VOC (+ SBD), ADE20K, Cityscapes, COCO and the offline scenes set.

Every dataset returns ``(image, mask)``: ``image`` a ``tv_tensors.Image`` uint8
(3, H, W) RGB, ``mask`` a ``tv_tensors.Mask`` int64 (H, W) of class ids in
``[0, num_class)``, with :data:`IGNORE_LABEL` (255) for pixels to ignore (VOC's
object boundaries, ADE20K's unlabelled "other", Cityscapes' void classes). The
presets turn 255 into -1 (:func:`mask_to_target`, the one conversion), which
losses and :class:`~toolkit.cv.metrics.SegmentationMetric` ignore.

Masks are read as class ids: ``P``-mode PNGs (VOC's palette images) by their
palette indices, palette-less ``L``/``I`` PNGs by their values (the same ids,
documented handling), ``1``-bit PNGs as 0/1; colour (RGB/RGBA) masks are an
error, since their colours are not ids. A mask whose size differs from its
image, or a value that is neither a class nor 255, raises
:class:`DatasetFormatError` naming the file. Missing files raise
:class:`~toolkit.data.MissingDatasetError` saying what goes where.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors

from ._base import Dataset, DatasetFormatError, MissingDatasetError, data_root
from .folder import read_image

__all__ = [
    "ADE20KSegmentation", "CitySegmentation", "COCOSegmentation", "FashionScenesSegmentation", "IGNORE_INDEX",
    "IGNORE_LABEL", "SegmentationDataset", "VOCAugSegmentation", "VOCSegmentation", "mask_to_target", "read_mask",
    "target_to_mask",
]

#: Ignored pixels in stored masks and dataset items.
IGNORE_LABEL = 255
#: Ignored pixels in tensors fed to losses and metrics (GluonCV's -1).
IGNORE_INDEX = -1

VOC_CLASSES = (
    "background", "airplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorcycle", "person", "potted-plant", "sheep", "sofa", "train", "tv",
)
ADE_CLASSES = tuple(x.strip() for x in (
    "wall, building, sky, floor, tree, ceiling, road, bed, windowpane, grass, cabinet, sidewalk, person, earth, "
    "door, table, mountain, plant, curtain, chair, car, water, painting, sofa, shelf, house, sea, mirror, rug, "
    "field, armchair, seat, fence, desk, rock, wardrobe, lamp, bathtub, railing, cushion, base, box, column, "
    "signboard, chest of drawers, counter, sand, sink, skyscraper, fireplace, refrigerator, grandstand, path, "
    "stairs, runway, case, pool table, pillow, screen door, stairway, river, bridge, bookcase, blind, "
    "coffee table, toilet, flower, book, hill, bench, countertop, stove, palm, kitchen island, computer, "
    "swivel chair, boat, bar, arcade machine, hovel, bus, towel, light, truck, tower, chandelier, awning, "
    "streetlight, booth, television receiver, airplane, dirt track, apparel, pole, land, bannister, escalator, "
    "ottoman, bottle, buffet, poster, stage, van, ship, fountain, conveyer belt, canopy, washer, plaything, "
    "swimming pool, stool, barrel, basket, waterfall, tent, bag, minibike, cradle, oven, ball, food, step, tank, "
    "trade name, microwave, pot, animal, bicycle, lake, dishwasher, screen, blanket, sculpture, hood, sconce, "
    "vase, traffic light, tray, ashcan, fan, pier, crt screen, plate, monitor, bulletin board, shower, radiator, "
    "glass, clock, flag").split(","))
CITYS_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)
# Cityscapes labelIds of the 19 training classes, in train-id order (the dataset's labels.py).
CITYS_VALID_IDS = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)
# GluonCV's COCOSegmentation: the COCO category ids of VOC's 21 classes (0: background).
COCO_VOC_CAT_LIST = (0, 5, 2, 16, 9, 44, 6, 3, 17, 62, 21, 67, 18, 19, 4, 1, 64, 20, 63, 7, 72)


# --------------------------------------------------------------------------- ignore label
def mask_to_target(mask: Any, num_class: int | None = None) -> torch.Tensor:
    """Stored mask (255 ignored) -> int64 training target (-1 ignored): the one conversion.

    Parameters
    ----------
    mask : tensor or array (..., H, W)
        Class ids with :data:`IGNORE_LABEL` for ignored pixels (already -1 is kept).
    num_class : int, optional
        When given, any other value outside ``[0, num_class)`` raises ``ValueError``.
    """
    t = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask).long()
    t = torch.where(t == IGNORE_LABEL, torch.full_like(t, IGNORE_INDEX), t)
    if num_class is not None:
        bad = (t != IGNORE_INDEX) & ((t < 0) | (t >= num_class))
        if bool(bad.any()):
            raise ValueError(f"mask values {torch.unique(t[bad])[:10].tolist()} are outside the {num_class} classes "
                             f"(ignore label {IGNORE_LABEL})")
    return t.as_subclass(torch.Tensor)


def target_to_mask(target: Any) -> torch.Tensor:
    """Inverse of :func:`mask_to_target`: -1 -> 255, as uint8 (for writing PNG masks)."""
    t = torch.as_tensor(target).long()
    t = torch.where(t == IGNORE_INDEX, torch.full_like(t, IGNORE_LABEL), t)
    if bool(((t < 0) | (t > 255)).any()):
        raise ValueError("class ids must be in [0, 255] to be stored as a uint8 mask")
    return t.to(torch.uint8)


# --------------------------------------------------------------------------- reading
def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A mask image's class ids as an int64 (H, W) array (see the module notes on PNG modes)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(f"mask {path} does not exist")
    try:
        with Image.open(path) as img:
            mode = img.mode
            if mode in ("RGB", "RGBA", "CMYK", "YCbCr", "LA", "PA"):
                raise DatasetFormatError(
                    f"mask {path} is a {mode} colour image; a mask holds class ids (a P-mode palette PNG, or a "
                    "palette-less L/I PNG of ids): convert colours to ids first"
                )
            arr = np.array(img)
    except UnidentifiedImageError as err:
        raise DatasetFormatError(f"mask {path} is not an image Pillow recognises") from err
    except OSError as err:
        raise DatasetFormatError(f"mask {path} is corrupt or truncated ({err})") from err
    if arr.ndim != 2:
        raise DatasetFormatError(f"mask {path} has shape {arr.shape}; expected (H, W)")
    return arr.astype(np.int64)


def _check_pair(image: torch.Tensor, mask: np.ndarray, num_class: int, image_path: Any, mask_path: Any) -> None:
    if tuple(image.shape[-2:]) != tuple(mask.shape):
        raise DatasetFormatError(
            f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} (WxH) but its image {image_path} is "
            f"{image.shape[-1]}x{image.shape[-2]}"
        )
    bad = (mask != IGNORE_LABEL) & ((mask < 0) | (mask >= num_class))
    if bad.any():
        values = np.unique(mask[bad])[:10].tolist()
        raise DatasetFormatError(f"mask {mask_path} holds values {values} outside the {num_class} classes "
                                 f"(0..{num_class - 1}, {IGNORE_LABEL} ignored)")


class SegmentationDataset(Dataset):
    """Base: ``items`` of ``(image_path, mask_source)`` read by :meth:`_load_mask`.

    Attributes
    ----------
    classes : tuple of str
        Class names (index = class id).
    num_class : int
        ``len(classes)`` (GluonCV's attribute).
    """

    classes: tuple[str, ...] = ()
    name = "segmentation"

    def __init__(self, items: Sequence[tuple[Any, Any]], transform: Callable | None = None) -> None:
        self.items = list(items)
        self._transform = transform

    @property
    def num_class(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.items)

    def _load_mask(self, source: Any, image: torch.Tensor) -> np.ndarray:
        return read_mask(source)

    def __getitem__(self, idx: int) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
        image_path, mask_source = self.items[idx]
        image = read_image(image_path, "RGB")
        mask = self._load_mask(mask_source, image)
        _check_pair(image, mask, self.num_class, image_path, mask_source)
        out = (image, tv_tensors.Mask(torch.from_numpy(mask)))
        return self._transform(*out) if self._transform is not None else out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} images, {self.num_class} classes)"


def _read_split_file(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _require(dataset: str, root: Path, files: dict[str, str], how: str = "") -> None:
    missing = {f: d for f, d in files.items() if not (root / f).exists()}
    if missing:
        raise MissingDatasetError(dataset, root, missing, how)


# --------------------------------------------------------------------------- VOC
class VOCSegmentation(SegmentationDataset):
    """Pascal VOC 2012 segmentation (GluonCV's ``VOCSegmentation``), 21 classes.

    Layout: ``root/VOC2012/`` (or ``root/VOCdevkit/VOC2012/``) with
    ``JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png`` (palette PNGs; 255 on
    object boundaries) and ``ImageSets/Segmentation/<split>.txt``.

    Parameters
    ----------
    root : path, optional
        Default ``data_root() / "voc"``.
    split : str
        ``train``, ``val`` or ``trainval``.
    transform : callable, optional
        ``transform(image, mask)``.
    """

    classes = VOC_CLASSES
    name = "voc"

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train",
                 transform: Callable | None = None) -> None:
        root = Path(root).expanduser() if root is not None else data_root() / "voc"
        base = root / "VOCdevkit" / "VOC2012" if (root / "VOCdevkit" / "VOC2012").is_dir() else root / "VOC2012"
        split_file = f"ImageSets/Segmentation/{split}.txt"
        _require("voc", base, {"JPEGImages": "images <id>.jpg", "SegmentationClass": "masks <id>.png",
                               split_file: f"ids of the {split} split"},
                 "Pascal VOC 2012 (VOCtrainval_11-May-2012.tar) from http://host.robots.ox.ac.uk/pascal/VOC/")
        ids = _read_split_file(base / split_file)
        items = [(base / "JPEGImages" / f"{i}.jpg", base / "SegmentationClass" / f"{i}.png") for i in ids]
        for img, mask in items[:1] + items[-1:]:
            if not img.is_file() or not mask.is_file():
                raise MissingDatasetError("voc", base, {str(img.relative_to(base)): "image",
                                                        str(mask.relative_to(base)): "mask"})
        super().__init__(items, transform)


class VOCAugSegmentation(SegmentationDataset):
    """VOC with the SBD augmented annotations (GluonCV's ``VOCAugSegmentation``), 21 classes.

    Layout (SBD's ``benchmark_RELEASE/dataset``): ``root/VOCaug/dataset/`` with
    ``img/<id>.jpg``, ``cls/<id>.mat`` (MATLAB ``GTcls.Segmentation`` class maps,
    read with ``scipy.io.loadmat``) and ``<split>.txt``; ``split="train"`` reads
    ``trainval.txt`` when present (GluonCV's choice), else ``train.txt``.
    """

    classes = VOC_CLASSES
    name = "voc-aug"

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train",
                 transform: Callable | None = None) -> None:
        root = Path(root).expanduser() if root is not None else data_root() / "voc"
        base = root / "VOCaug" / "dataset"
        name = "trainval.txt" if split == "train" and (base / "trainval.txt").is_file() else f"{split}.txt"
        _require("voc-aug", base, {"img": "images <id>.jpg", "cls": "class maps <id>.mat", name: "split ids"},
                 "SBD (benchmark.tgz) from http://home.bharathh.info/pubs/codes/SBD/download.html")
        ids = _read_split_file(base / name)
        super().__init__([(base / "img" / f"{i}.jpg", base / "cls" / f"{i}.mat") for i in ids], transform)

    def _load_mask(self, source: Any, image: torch.Tensor) -> np.ndarray:
        try:
            from scipy.io import loadmat
        except ImportError as err:  # scipy comes with the NLP half; say so rather than fail deep inside
            raise ImportError("VOCAugSegmentation reads SBD's .mat files with scipy: pip install scipy") from err
        try:
            mat = loadmat(str(source), mat_dtype=True, squeeze_me=True, struct_as_record=False)
            seg = np.asarray(mat["GTcls"].Segmentation)
        except FileNotFoundError as err:
            raise DatasetFormatError(f"mask {source} does not exist") from err
        except (KeyError, AttributeError, ValueError, TypeError) as err:
            raise DatasetFormatError(f"{source} is not an SBD class map (no GTcls.Segmentation): {err}") from err
        return seg.astype(np.int64)


# --------------------------------------------------------------------------- ADE20K
class ADE20KSegmentation(SegmentationDataset):
    """ADE20K scene parsing (MIT SceneParsing, GluonCV's ``ADE20KSegmentation``), 150 classes.

    Layout: ``root/ADEChallengeData2016/images/{training,validation}/<name>.jpg``
    and ``annotations/{training,validation}/<name>.png``. Stored values are
    0 ("other") and 1..150; as GluonCV (which subtracts one), class ``k`` of the
    file is id ``k - 1`` here and 0 becomes the ignore label 255.
    """

    classes = ADE_CLASSES
    name = "ade20k"

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train",
                 transform: Callable | None = None) -> None:
        root = Path(root).expanduser() if root is not None else data_root() / "ade"
        base = root / "ADEChallengeData2016"
        sub = {"train": "training", "val": "validation"}.get(split)
        if sub is None:
            raise ValueError(f"ADE20K split must be 'train' or 'val', got {split!r}")
        _require("ade20k", base, {f"images/{sub}": "<name>.jpg", f"annotations/{sub}": "<name>.png"},
                 "ADEChallengeData2016.zip from http://sceneparsing.csail.mit.edu/")
        items = []
        for img in sorted((base / "images" / sub).glob("*.jpg")):
            mask = base / "annotations" / sub / f"{img.stem}.png"
            if not mask.is_file():
                raise MissingDatasetError("ade20k", base, {str(mask.relative_to(base)): f"mask of {img.name}"})
            items.append((img, mask))
        super().__init__(items, transform)

    def _load_mask(self, source: Any, image: torch.Tensor) -> np.ndarray:
        raw = read_mask(source)
        if raw.max(initial=0) > len(self.classes):
            bad = np.unique(raw[raw > len(self.classes)])[:10].tolist()
            raise DatasetFormatError(f"mask {source} holds values {bad}; ADE20K masks hold 0..{len(self.classes)}")
        return np.where(raw == 0, IGNORE_LABEL, raw - 1)


# --------------------------------------------------------------------------- Cityscapes
class CitySegmentation(SegmentationDataset):
    """Cityscapes fine annotations (GluonCV's ``CitySegmentation``), 19 training classes.

    Layout: ``root/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` and
    ``root/gtFine/<split>/<city>/<name>_gtFine_labelIds.png``. The 34 labelIds
    are mapped to the 19 train ids (:data:`CITYS_VALID_IDS`), every other id to
    the ignore label 255.
    """

    classes = CITYS_CLASSES
    name = "citys"

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train",
                 transform: Callable | None = None) -> None:
        root = Path(root).expanduser() if root is not None else data_root() / "citys"
        _require("citys", root, {f"leftImg8bit/{split}": "<city>/<name>_leftImg8bit.png",
                                 f"gtFine/{split}": "<city>/<name>_gtFine_labelIds.png"},
                 "leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip from https://www.cityscapes-dataset.com/")
        items = []
        for img in sorted((root / "leftImg8bit" / split).glob("*/*_leftImg8bit.png")):
            stem = img.name[: -len("_leftImg8bit.png")]
            mask = root / "gtFine" / split / img.parent.name / f"{stem}_gtFine_labelIds.png"
            if not mask.is_file():
                raise MissingDatasetError("citys", root, {str(mask.relative_to(root)): f"labels of {img.name}"})
            items.append((img, mask))
        super().__init__(items, transform)
        lut = np.full(256, -1, dtype=np.int64)  # -1: not a Cityscapes labelId
        lut[:34] = IGNORE_LABEL
        lut[IGNORE_LABEL] = IGNORE_LABEL
        lut[list(CITYS_VALID_IDS)] = np.arange(len(CITYS_VALID_IDS))
        self._lut = lut

    def _load_mask(self, source: Any, image: torch.Tensor) -> np.ndarray:
        raw = read_mask(source)
        if raw.min(initial=0) < 0 or raw.max(initial=0) > 255 or (self._lut[raw] < 0).any():
            bad = np.unique(raw[(raw < 0) | (raw > 255) | (self._lut[np.clip(raw, 0, 255)] < 0)])[:10].tolist()
            raise DatasetFormatError(f"mask {source} holds values {bad} that are not Cityscapes labelIds (0..33)")
        return self._lut[raw]


# --------------------------------------------------------------------------- COCO
class COCOSegmentation(SegmentationDataset):
    """Class masks from COCO instance annotations (GluonCV's ``COCOSegmentation``), through pycocotools.

    Each image's mask starts as background (0); every annotation whose category
    is in ``cat_list`` paints its decoded instance mask (polygons or RLE) with
    that category's index in ``cat_list`` on pixels still background, in
    annotation order (GluonCV's rule: the first instance wins where they overlap).

    Parameters
    ----------
    root : path, optional
        Default ``data_root() / "coco"``.
    split : str
        ``train`` / ``val``: reads ``annotations/instances_<split><year>.json`` and
        images from ``<split><year>/`` (``year=""``: ``instances_<split>.json``, ``<split>/``).
    year : str
        ``"2017"`` (default) or ``""``.
    cat_list : sequence of int, optional
        COCO category ids by class index, index 0 being background (its id unused).
        Default GluonCV's 21 VOC classes (:data:`COCO_VOC_CAT_LIST`); ``"all"``: every
        category in id order after background.
    classes : sequence of str, optional
        Class names (default: VOC's for the default list, else background + the categories' names).
    min_mask_pixels : int
        Leave out images whose mask has fewer foreground pixels (GluonCV's training set uses 1000;
        default 0 keeps every image, and nothing is decoded up front).
    transform : callable, optional
        ``transform(image, mask)``.
    """

    name = "coco"

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train", year: str = "2017",
                 cat_list: Sequence[int] | str | None = None, classes: Sequence[str] | None = None,
                 min_mask_pixels: int = 0, transform: Callable | None = None) -> None:
        try:
            from pycocotools.coco import COCO
        except ImportError as err:
            raise ImportError("COCOSegmentation reads annotations with pycocotools: pip install pycocotools") from err
        root = Path(root).expanduser() if root is not None else data_root() / "coco"
        ann = f"annotations/instances_{split}{year}.json"
        _require(self.name, root, {ann: "COCO instances annotations", f"{split}{year}": "images"},
                 "COCO 2017 (train2017.zip, val2017.zip, annotations_trainval2017.zip) from https://cocodataset.org")
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            try:
                self.coco = COCO(str(root / ann))
            except (json.JSONDecodeError, KeyError, TypeError, AssertionError) as err:
                raise DatasetFormatError(f"{root / ann} is not a COCO instances file: {err}") from err
        cats = {c["id"]: c["name"] for c in self.coco.loadCats(self.coco.getCatIds())}
        if cat_list is None:
            cat_list, default_names = COCO_VOC_CAT_LIST, VOC_CLASSES
        elif cat_list == "all":
            cat_list, default_names = (0, *sorted(cats)), None
        else:
            cat_list, default_names = tuple(int(c) for c in cat_list), None
        unknown = [c for c in cat_list[1:] if c not in cats]
        if unknown and default_names is None:  # GluonCV's list on a COCO subset: absent classes stay empty
            raise DatasetFormatError(f"{root / ann} has no categories {unknown[:10]}")
        self.cat_list = tuple(cat_list)
        names = classes or default_names or ("background", *(cats[c] for c in self.cat_list[1:]))
        if len(names) != len(self.cat_list):
            raise ValueError(f"{len(names)} class names for {len(self.cat_list)} classes")
        self.classes = tuple(names)
        self._index = {c: i for i, c in enumerate(self.cat_list) if i > 0}
        image_dir = root / f"{split}{year}"
        items = []
        for img_id in sorted(self.coco.getImgIds()):
            info = self.coco.loadImgs(img_id)[0]
            items.append((image_dir / info["file_name"], img_id))
        super().__init__(items, transform)
        if min_mask_pixels > 0:
            self.items = [it for it in self.items
                          if int((self._class_mask(it[1]) > 0).sum()) >= min_mask_pixels]

    def _class_mask(self, img_id: int) -> np.ndarray:
        from pycocotools import mask as mask_utils

        info = self.coco.loadImgs(img_id)[0]
        h, w = int(info["height"]), int(info["width"])
        mask = np.zeros((h, w), dtype=np.int64)
        for ann in self.coco.loadAnns(self.coco.getAnnIds(imgIds=img_id, iscrowd=None)):
            c = self._index.get(ann["category_id"])
            if c is None:
                continue
            seg = ann["segmentation"]
            if isinstance(seg, list):
                rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
            elif isinstance(seg.get("counts"), list):
                rle = mask_utils.frPyObjects(seg, h, w)
            else:
                rle = seg
            m = mask_utils.decode(rle)
            if m.ndim == 3:
                m = m.max(axis=2)
            if m.shape != (h, w):
                raise DatasetFormatError(f"annotation {ann.get('id')} of image {img_id} decodes to {m.shape}, "
                                         f"the image is {(h, w)}")
            mask += (mask == 0) * (m > 0) * c
        return mask

    def _load_mask(self, source: Any, image: torch.Tensor) -> np.ndarray:
        return self._class_mask(int(source))


class FashionScenesSegmentation(COCOSegmentation):
    """The offline ``fashion-scenes`` set as semantic segmentation: 11 classes (background + Fashion-MNIST's 10).

    A :class:`COCOSegmentation` over ``data_root() / "fashion_scenes"`` (the COCO
    files :func:`toolkit.cv.data.build_fashion_scenes` writes; built on first use
    when missing). Class ``k`` of the detection set is id ``k + 1`` here.

    Parameters
    ----------
    split : str
        ``train`` or ``val``.
    root : path, optional
        The set's folder.
    transform : callable, optional
        ``transform(image, mask)``.
    **build_kwargs
        Arguments of ``build_fashion_scenes`` (``num_train``, ``image_size`` ...); given ones
        (re)build the set when it differs.
    """

    name = "fashion-scenes"

    def __init__(self, split: str = "train", root: str | os.PathLike | None = None,
                 transform: Callable | None = None, **build_kwargs: Any) -> None:
        from .scenes import SCENES_CLASSES, build_fashion_scenes, scenes_root

        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        folder = scenes_root(root)
        # Same rule as the detection view (FashionScenes): build when asked to or when nothing is there.
        if build_kwargs or not (folder / "annotations" / f"instances_{split}.json").is_file():
            build_fashion_scenes(folder, **build_kwargs)
        super().__init__(folder, split, year="", cat_list="all", transform=transform)
        if self.classes[1:] != tuple(SCENES_CLASSES):
            raise DatasetFormatError(f"{folder}: categories {self.classes[1:]} are not the Fashion-MNIST classes")
