"""Detection datasets (COCO instances JSON, Pascal VOC XML), GluonCV's label layout and batchify.

Every dataset here returns ``(image, target)``:

* ``image``: ``tv_tensors.Image`` uint8 (3, H, W), RGB;
* ``target["boxes"]``: ``tv_tensors.BoundingBoxes`` XYXY float32 (N, 4) with
  ``canvas_size=(H, W)``, in pixel-edge coordinates (a box covering pixel
  columns 0..9 is ``x1=0, x2=10``; torchvision's and COCO's convention, under
  which a horizontal flip is ``x -> W - x`` exactly);
* ``target["labels"]``: int64 (N,), contiguous 0-based ids into ``ds.classes``;
* ``target["difficult"]``: bool (N,);
* ``target["image_id"]``: int;
* ``target["masks"]``: ``tv_tensors.Mask`` uint8 (N, H, W), with ``with_masks=True``.

An image without objects gives ``boxes`` (0, 4), ``labels`` (0,).

Box rule (both formats): boxes are clipped to the image; a box with no area
left after clipping (x2 <= x1 or y2 <= y1: degenerate, negative size, or
entirely outside the image) is dropped, and the dataset warns once with the
count (``ds.num_dropped``).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors

from toolkit.data import Pad, Stack, Tuple

from ._base import Dataset, DatasetFormatError, MissingDatasetError, data_root
from .folder import read_image

__all__ = [
    "COCODetection", "VOCDetection", "VOC_CLASSES", "MixupDetection", "to_gluoncv_label", "detection_batchify",
    "make_target", "clip_boxes",
]

#: Pascal VOC class names in GluonCV's order (contiguous id = position).
VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Clip XYXY boxes to ``[0, width] x [0, height]``; return them and the mask of those with area left.

    Parameters
    ----------
    boxes : np.ndarray
        (N, 4) float boxes x1, y1, x2, y2.
    width, height : int
        Image size.

    Returns
    -------
    (np.ndarray, np.ndarray)
        The clipped boxes (N, 4) float32 and a bool (N,) that is True where
        ``x2 > x1`` and ``y2 > y1`` after clipping.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes, keep


def make_target(boxes: Any, labels: Any, height: int, width: int, image_id: int = 0,
                difficult: Any = None, masks: Any = None) -> dict[str, Any]:
    """Build a target dict of the detection contract from array-likes.

    Parameters
    ----------
    boxes : array-like
        (N, 4) XYXY pixel boxes.
    labels : array-like
        (N,) contiguous class ids.
    height, width : int
        Image size (the boxes' canvas).
    image_id : int
        Image id.
    difficult : array-like, optional
        (N,) bool flags (default all False).
    masks : array-like, optional
        (N, H, W) instance masks.
    """
    boxes_t = torch.as_tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
    n = boxes_t.shape[0]
    labels_t = torch.as_tensor(np.asarray(labels, dtype=np.int64).reshape(-1))
    if labels_t.shape[0] != n:
        raise ValueError(f"make_target: {n} boxes but {labels_t.shape[0]} labels")
    diff = np.zeros(n, dtype=bool) if difficult is None else np.asarray(difficult, dtype=bool).reshape(-1)
    target: dict[str, Any] = {
        "boxes": tv_tensors.BoundingBoxes(boxes_t, format="XYXY", canvas_size=(int(height), int(width))),
        "labels": labels_t,
        "difficult": torch.as_tensor(diff),
        "image_id": int(image_id),
    }
    if masks is not None:
        m = torch.as_tensor(np.asarray(masks, dtype=np.uint8)).reshape(n, int(height), int(width))
        target["masks"] = tv_tensors.Mask(m)
    return target


def to_gluoncv_label(target: dict[str, Any]) -> np.ndarray:
    """GluonCV's label array of a target: float32 (N, 6) ``[x1, y1, x2, y2, class_id, difficult]``.

    A target made by :class:`MixupDetection` (key ``"mixup_weight"``) gives
    (N, 7): the mixup weight of each box is appended, as GluonCV's
    ``MixupDetection`` does.

    Parameters
    ----------
    target : dict
        A target of the detection contract (``boxes``, ``labels``, optional ``difficult``).
    """
    if not isinstance(target, dict) or "boxes" not in target or "labels" not in target:
        raise TypeError("to_gluoncv_label expects a target dict with 'boxes' and 'labels'")
    boxes = torch.as_tensor(target["boxes"]).detach().cpu().reshape(-1, 4).float().numpy()
    labels = torch.as_tensor(target["labels"]).detach().cpu().reshape(-1).numpy()
    if len(labels) != len(boxes):
        raise ValueError(f"to_gluoncv_label: {len(boxes)} boxes but {len(labels)} labels")
    diff = target.get("difficult")
    diff = np.zeros(len(boxes)) if diff is None else torch.as_tensor(diff).detach().cpu().reshape(-1).numpy()
    weight = target.get("mixup_weight")
    out = np.empty((len(boxes), 6 if weight is None else 7), dtype=np.float32)
    out[:, :4] = boxes
    out[:, 4] = labels
    out[:, 5] = diff
    if weight is not None:
        out[:, 6] = torch.as_tensor(weight).detach().cpu().reshape(-1).numpy()
    return out


class MixupDetection(Dataset):
    """Mix every item with another random one (GluonCV's ``MixupDetection``, for ``--mixup`` training).

    Item ``i`` becomes ``lam * image_i + (1 - lam) * image_j`` on a canvas of
    the larger of both sizes (top-left aligned, zero elsewhere), with the boxes
    of both and a per-box weight ``target["mixup_weight"]`` (``lam`` for
    ``i``'s boxes, ``1 - lam`` for ``j``'s); presets carry the weight along,
    so the GluonCV label gets a 7th column (:func:`to_gluoncv_label`). With no
    mixup function (or ``lam == 1``) items pass through with weight 1.

    Parameters
    ----------
    dataset : Dataset
        Items ``(image, target)`` of the detection contract.
    mixup : callable, optional
        Draws ``lam``, called as ``mixup(*args)`` (e.g. ``numpy.random.beta``
        with ``args=(1.5, 1.5)``, GluonCV's choice).
    *args
        Arguments of ``mixup``.
    """

    def __init__(self, dataset: Any, mixup: Callable | None = None, *args: Any) -> None:
        self._dataset = dataset
        self.set_mixup(mixup, *args)

    def set_mixup(self, mixup: Callable | None = None, *args: Any) -> None:
        """Change (or, with ``None``, switch off) the mixup distribution, e.g. for the last epochs."""
        self._mixup, self._mixup_args = mixup, args

    @property
    def classes(self) -> tuple[str, ...]:
        return self._dataset.classes

    def __len__(self) -> int:
        return len(self._dataset)

    def __getitem__(self, idx: int) -> tuple[tv_tensors.Image, dict[str, Any]]:
        image, target = self._dataset[idx]
        lam = 1.0 if self._mixup is None else float(np.clip(self._mixup(*self._mixup_args), 0.0, 1.0))
        if lam >= 1.0:
            return image, {**target, "mixup_weight": torch.ones(len(target["labels"]))}
        other, target2 = self._dataset[int(np.random.randint(len(self._dataset)))]
        h = max(image.shape[-2], other.shape[-2])
        w = max(image.shape[-1], other.shape[-1])
        mixed = torch.zeros((3, h, w), dtype=torch.float32)
        mixed[:, : image.shape[-2], : image.shape[-1]] += lam * image.float()
        mixed[:, : other.shape[-2], : other.shape[-1]] += (1 - lam) * other.float()
        n1, n2 = len(target["labels"]), len(target2["labels"])
        out = make_target(
            torch.cat([target["boxes"].as_subclass(torch.Tensor), target2["boxes"].as_subclass(torch.Tensor)]),
            torch.cat([target["labels"], target2["labels"]]), h, w, target["image_id"],
            torch.cat([target["difficult"], target2["difficult"]]))
        out["mixup_weight"] = torch.cat([torch.full((n1,), lam), torch.full((n2,), 1 - lam)])
        return tv_tensors.Image(mixed.round_().clamp_(0, 255).to(torch.uint8)), out


def detection_batchify(pad_images: bool = False, size_divisible: int = 1) -> Callable:
    """Batchify ``(image, label)`` samples as the detection presets give them.

    Parameters
    ----------
    pad_images : bool, default False
        ``False``: ``Tuple(Stack(), Pad(val=-1))`` -> images (B, 3, h, w) and
        labels (B, Mmax, 6) padded with -1 (all images the same size: SSD, YOLO).
        ``True`` (R-CNN, images of different sizes): also pad images (with 0,
        at the bottom/right) and return ``(images, labels, sizes)`` with
        ``sizes`` int64 (B, 2) the true ``(h, w)`` of each image.
    size_divisible : int, default 1
        With ``pad_images``, round the padded height and width up to a multiple
        of this (e.g. 32 for an FPN).

    Samples with no boxes (label (0, 6)) become rows of -1; a batch where no
    sample has any gives labels of shape (B, 0, 6).
    """
    if not isinstance(size_divisible, int) or size_divisible < 1:
        raise ValueError(f"size_divisible must be a positive int, got {size_divisible!r}")
    if not pad_images:
        return Tuple(Stack(), Pad(val=-1, dtype=torch.float32))
    return _PadImagesBatchify(size_divisible)


class _PadImagesBatchify:
    """Collate of variable-size images (picklable, for DataLoader workers)."""

    def __init__(self, size_divisible: int) -> None:
        self.size_divisible = size_divisible
        self.labels = Pad(val=-1, dtype=torch.float32)

    def __call__(self, data: Sequence[Sequence[Any]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not data:
            raise ValueError("detection_batchify: empty batch")
        images = [torch.as_tensor(d[0]) for d in data]
        if any(im.ndim != 3 for im in images) or len({im.shape[0] for im in images}) != 1:
            raise ValueError(f"detection_batchify: images must be (C, H, W) with one C, got "
                             f"{[tuple(im.shape) for im in images]}")
        sizes = torch.tensor([im.shape[1:] for im in images], dtype=torch.int64).reshape(-1, 2)
        d = self.size_divisible
        h, w = (int(-(-int(v) // d) * d) for v in sizes.max(0).values)
        out = images[0].new_zeros((len(images), images[0].shape[0], h, w))
        for k, im in enumerate(images):
            out[k, :, : im.shape[1], : im.shape[2]] = im
        return out, self.labels([d[1] for d in data]), sizes


class _DetectionBase(Dataset):
    """Shared item assembly: subclasses fill ``self._records`` and implement ``_masks``."""

    classes: tuple[str, ...] = ()

    def __init__(self, transform: Callable | None = None) -> None:
        self._transform = transform
        self._records: list[dict[str, Any]] = []
        self.num_dropped = 0

    @property
    def num_class(self) -> int:
        """Number of classes (GluonCV's name)."""
        return len(self.classes)

    def __len__(self) -> int:
        return len(self._records)

    def _masks(self, rec: dict[str, Any]) -> np.ndarray | None:
        return None

    def _check_size(self, image: torch.Tensor, rec: dict[str, Any]) -> None:
        h, w = image.shape[-2:]
        if (h, w) != (rec["height"], rec["width"]):
            raise DatasetFormatError(
                f"{rec['path']}: image is {w}x{h} but its annotation says {rec['width']}x{rec['height']}"
            )

    def __getitem__(self, idx: int) -> tuple[tv_tensors.Image, dict[str, Any]]:
        rec = self._records[idx]
        image = read_image(rec["path"], "RGB")
        self._check_size(image, rec)
        target = make_target(rec["boxes"], rec["labels"], rec["height"], rec["width"], rec["image_id"],
                             rec["difficult"], self._masks(rec))
        if self._transform is not None:
            return self._transform(image, target)
        return image, target

    def label(self, idx: int) -> np.ndarray:
        """GluonCV label (N, 6) of image ``idx`` without decoding the image."""
        rec = self._records[idx]
        out = np.zeros((len(rec["labels"]), 6), dtype=np.float32)
        out[:, :4] = rec["boxes"]
        out[:, 4] = rec["labels"]
        out[:, 5] = rec["difficult"]
        return out

    def _warn_dropped(self, where: Any) -> None:
        if self.num_dropped:
            warnings.warn(f"{type(self).__name__}({where}): dropped {self.num_dropped} box(es) with no area "
                          "inside the image (degenerate or out of the image)", stacklevel=3)


def _load_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        raise DatasetFormatError(
            f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from err
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetFormatError(f"{path}: cannot read annotation file ({err})") from err
    if not isinstance(data, dict):
        raise DatasetFormatError(f"{path}: a COCO annotation file holds a JSON object, got {type(data).__name__}")
    missing = [k for k in ("images", "annotations", "categories") if k not in data]
    if missing:
        raise DatasetFormatError(f"{path}: not a COCO instances file, missing key(s) {missing}")
    return data


class COCODetection(_DetectionBase):
    """A COCO-format detection set (instances JSON) read through pycocotools.

    Parameters
    ----------
    root : path, optional
        Dataset folder (default ``data_root() / "coco"``).
    splits : str or sequence of str, default "instances_val2017"
        Annotation names, GluonCV's way: ``"instances_val2017"`` reads
        ``root/annotations/instances_val2017.json`` with images in
        ``root/val2017/``; a plain ``"val"`` reads ``annotations/instances_val.json``
        and ``root/val/``; a path to a ``.json`` file is used as is, with
        images in ``image_root`` (default: the folder named after the file's
        split next to ``annotations/``, else the file's folder).
    with_masks : bool, default False
        Add ``target["masks"]`` (instance masks decoded by pycocotools from
        polygons or RLE).
    skip_empty : bool, default True
        Leave out images with no usable object (GluonCV's default, for training;
        pass ``False`` for evaluation so every image is scored).
    use_crowd : bool, default False
        Keep ``iscrowd`` annotations as targets (flagged ``difficult`` so the VOC
        metrics ignore them). By default they are excluded from targets;
        :class:`~toolkit.cv.metrics.COCODetectionMetric` still sees them through
        the annotation file, as COCO's evaluation expects. (GluonCV defaults to
        ``True`` and trains on them as ordinary boxes.)
    min_object_area : float, default 0
        Drop annotations whose ``area`` is smaller (GluonCV's flag).
    transform : callable, optional
        ``transform(image, target)`` applied to every item.
    image_root : path, optional
        Image folder for a ``.json`` path in ``splits``.

    Attributes
    ----------
    classes : tuple of str
        Category names in increasing category id order.
    json_id_to_contiguous, contiguous_id_to_json : dict
        Category id <-> contiguous class id.
    coco : pycocotools.coco.COCO
        The (single) annotation index, e.g. for evaluation.
    """

    def __init__(self, root: str | os.PathLike | None = None, splits: str | Sequence[str] = "instances_val2017",
                 with_masks: bool = False, skip_empty: bool = True, use_crowd: bool = False,
                 min_object_area: float = 0, transform: Callable | None = None,
                 image_root: str | os.PathLike | None = None) -> None:
        super().__init__(transform)
        self.root = Path(root).expanduser() if root is not None else data_root() / "coco"
        self.with_masks = with_masks
        self.skip_empty = skip_empty
        self.use_crowd = use_crowd
        self.min_object_area = min_object_area
        self._splits = [splits] if isinstance(splits, (str, os.PathLike)) else list(splits)
        if not self._splits:
            raise ValueError("COCODetection: splits is empty")
        self._cocos = []
        self.classes = ()
        for split in self._splits:
            ann_file, img_dir = self._resolve(split, image_root)
            self._load(ann_file, img_dir)
        self._warn_dropped(self.root)

    @property
    def coco(self):
        """The pycocotools ``COCO`` object (only when one split was loaded, as in GluonCV)."""
        if len(self._cocos) != 1:
            raise ValueError(f"coco is only defined for one split, this dataset has {len(self._cocos)}")
        return self._cocos[0]

    @property
    def image_ids(self) -> list[int]:
        """COCO image id of every item, in item order."""
        return [r["image_id"] for r in self._records]

    @property
    def annotation_files(self) -> list[Path]:
        """The annotation files read, one per split."""
        return [c.annotation_file for c in self._cocos]

    def _resolve(self, split: str | os.PathLike, image_root: str | os.PathLike | None) -> tuple[Path, Path]:
        split_s = str(split)
        if split_s.endswith(".json"):
            ann = Path(split_s).expanduser()
            if not ann.is_absolute() and not ann.is_file():
                ann = self.root / ann
            name = ann.stem[len("instances_"):] if ann.stem.startswith("instances_") else ann.stem
            if image_root is not None:
                img_dir = Path(image_root).expanduser()
            elif ann.parent.name == "annotations" and (ann.parent.parent / name).is_dir():
                img_dir = ann.parent.parent / name
            else:
                img_dir = ann.parent
        else:
            name = split_s[len("instances_"):] if split_s.startswith("instances_") else split_s
            ann = self.root / "annotations" / f"instances_{name}.json"
            img_dir = Path(image_root).expanduser() if image_root is not None else self.root / name
        if not ann.is_file():
            raise MissingDatasetError("coco", ann.parent, [ann.name],
                                      f"COCODetection: annotation file {ann} does not exist.")
        if not img_dir.is_dir():
            raise MissingDatasetError("coco", img_dir.parent, [f"{img_dir.name}/<images>"],
                                      f"COCODetection: image folder {img_dir} does not exist.")
        return ann, img_dir

    def _load(self, ann_file: Path, img_dir: Path) -> None:
        from pycocotools.coco import COCO

        data = _load_json(ann_file)
        coco = COCO()
        coco.dataset = data
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
                coco.createIndex()
        except (KeyError, TypeError) as err:
            raise DatasetFormatError(f"{ann_file}: malformed COCO entry (missing or wrong field {err})") from err
        coco.annotation_file = ann_file
        cat_ids = sorted(coco.getCatIds())
        classes = tuple(coco.loadCats(c)[0]["name"] for c in cat_ids)
        if self._cocos and classes != self.classes:
            raise DatasetFormatError(f"{ann_file}: categories differ from those of {self._cocos[0].annotation_file}")
        self.classes = classes
        self.json_id_to_contiguous = {c: i for i, c in enumerate(cat_ids)}
        self.contiguous_id_to_json = {i: c for c, i in self.json_id_to_contiguous.items()}
        self._cocos.append(coco)
        for image_id in sorted(coco.getImgIds()):
            info = coco.imgs[image_id]
            try:
                width, height, fname = int(info["width"]), int(info["height"]), info["file_name"]
            except (KeyError, TypeError, ValueError) as err:
                raise DatasetFormatError(f"{ann_file}: image {image_id} lacks width/height/file_name ({err})") from err
            if width <= 0 or height <= 0:
                raise DatasetFormatError(f"{ann_file}: image {image_id} ({fname}) has size {width}x{height}")
            rec = self._objects(coco, ann_file, image_id, width, height)
            if self.skip_empty and not len(rec["labels"]):
                continue
            rec.update(path=img_dir / fname, image_id=image_id, width=width, height=height, coco=coco)
            self._records.append(rec)

    def _objects(self, coco, ann_file: Path, image_id: int, width: int, height: int) -> dict[str, Any]:
        boxes, labels, difficult, anns = [], [], [], []
        for ann in coco.imgToAnns.get(image_id, []):
            if ann.get("ignore", 0) == 1:
                continue
            crowd = bool(ann.get("iscrowd", 0))
            if crowd and not self.use_crowd:
                continue
            cat = ann.get("category_id")
            if cat not in self.json_id_to_contiguous:
                raise DatasetFormatError(
                    f"{ann_file}: annotation {ann.get('id')} of image {image_id} has category_id {cat!r}, "
                    f"which is not among the categories {sorted(self.json_id_to_contiguous)}"
                )
            bbox = ann.get("bbox")
            try:
                x, y, w, h = (float(v) for v in bbox)
            except (TypeError, ValueError) as err:
                raise DatasetFormatError(
                    f"{ann_file}: annotation {ann.get('id')} has bbox {bbox!r}, need 4 numbers [x, y, w, h]") from err
            box, keep = clip_boxes(np.array([[x, y, x + w, y + h]]), width, height)
            area = float(ann.get("area", w * h))
            if not keep[0] or area <= 0 or area < self.min_object_area:
                self.num_dropped += 1
                continue
            boxes.append(box[0])
            labels.append(self.json_id_to_contiguous[cat])
            difficult.append(crowd)
            anns.append(ann)
        return {"boxes": np.array(boxes, dtype=np.float32).reshape(-1, 4), "labels": np.array(labels, np.int64),
                "difficult": np.array(difficult, dtype=bool), "anns": anns}

    def _masks(self, rec: dict[str, Any]) -> np.ndarray | None:
        if not self.with_masks:
            return None
        out = np.zeros((len(rec["anns"]), rec["height"], rec["width"]), dtype=np.uint8)
        for k, ann in enumerate(rec["anns"]):
            if "segmentation" not in ann:
                raise DatasetFormatError(f"annotation {ann.get('id')} of image {rec['image_id']} has no "
                                         "segmentation; with_masks=True needs one")
            try:
                with warnings.catch_warnings():  # pycocotools' own numpy-2 DeprecationWarning
                    warnings.simplefilter("ignore", DeprecationWarning)
                    out[k] = rec["coco"].annToMask(ann)
            except Exception as err:  # pycocotools raises assorted errors for malformed polygons/RLE
                raise DatasetFormatError(
                    f"annotation {ann.get('id')} of image {rec['image_id']}: cannot decode segmentation ({err})"
                ) from err
        return out

    def __repr__(self) -> str:
        return (f"COCODetection(root={str(self.root)!r}, splits={self._splits}, images={len(self)}, "
                f"classes={len(self.classes)})")


class VOCDetection(_DetectionBase):
    """Pascal VOC detection from a VOCdevkit: ``Annotations/*.xml`` + ``ImageSets/Main/<split>.txt``.

    Parameters
    ----------
    root : path, optional
        Folder holding ``VOC2007/``, ``VOC2012/`` (or a ``VOCdevkit/`` holding
        them); default ``data_root() / "voc"``.
    splits : sequence of (int, str), default ((2007, "trainval"), (2012, "trainval"))
        (year, image set) pairs, GluonCV's way.
    transform : callable, optional
        ``transform(image, target)`` applied to every item.
    index_map : dict, optional
        Class name -> id (default: position in :data:`VOC_CLASSES`).

    Notes
    -----
    VOC boxes are 1-based inclusive pixel indices; they become pixel edges
    ``(xmin - 1, ymin - 1, xmax, ymax)``. (GluonCV subtracts 1 from all four,
    giving boxes one pixel smaller.) ``difficult`` comes from the XML (0 when
    absent). An object whose class is not in ``classes`` raises
    :class:`DatasetFormatError` naming the file and the class.
    """

    classes = VOC_CLASSES

    def __init__(self, root: str | os.PathLike | None = None,
                 splits: Iterable[tuple[int, str]] = ((2007, "trainval"), (2012, "trainval")),
                 transform: Callable | None = None, index_map: dict[str, int] | None = None) -> None:
        super().__init__(transform)
        self.root = Path(root).expanduser() if root is not None else data_root() / "voc"
        self._splits = [(int(y), str(s)) for y, s in splits]
        self.index_map = dict(index_map) if index_map is not None else {c: i for i, c in enumerate(self.classes)}
        for year, name in self._splits:
            base = self._year_dir(year)
            list_file = base / "ImageSets" / "Main" / f"{name}.txt"
            if not list_file.is_file():
                raise MissingDatasetError("voc", base, [f"ImageSets/Main/{name}.txt", "Annotations/<id>.xml",
                                                        "JPEGImages/<id>.jpg"],
                                          f"VOCDetection: image set file {list_file} does not exist.")
            ids = [ln.strip().split()[0] for ln in list_file.read_text().splitlines() if ln.strip()]
            for i, img_id in enumerate(ids):
                self._records.append(self._parse(base, img_id, len(self._records)))
        self._warn_dropped(self.root)

    def _year_dir(self, year: int) -> Path:
        for cand in (self.root / f"VOC{year}", self.root / "VOCdevkit" / f"VOC{year}"):
            if cand.is_dir():
                return cand
        raise MissingDatasetError("voc", self.root, [f"VOC{year}/Annotations", f"VOC{year}/ImageSets/Main",
                                                     f"VOC{year}/JPEGImages"],
                                  f"VOCDetection: no VOC{year} folder under {self.root} (or {self.root}/VOCdevkit).")

    def _parse(self, base: Path, img_id: str, index: int) -> dict[str, Any]:
        xml_file = base / "Annotations" / f"{img_id}.xml"
        if not xml_file.is_file():
            raise MissingDatasetError("voc", base, [f"Annotations/{img_id}.xml"],
                                      f"VOCDetection: annotation {xml_file} is listed but does not exist.")
        try:
            root = ET.parse(xml_file).getroot()
        except ET.ParseError as err:
            raise DatasetFormatError(f"{xml_file}: XML does not parse ({err})") from err

        def num(node, tag: str) -> float:
            el = node.find(tag) if node is not None else None
            try:
                return float(el.text)
            except (AttributeError, TypeError, ValueError) as err:
                raise DatasetFormatError(f"{xml_file}: missing or non-numeric <{tag}>") from err

        size = root.find("size")
        width, height = int(num(size, "width")), int(num(size, "height"))
        if width <= 0 or height <= 0:
            raise DatasetFormatError(f"{xml_file}: image size {width}x{height}")
        boxes, labels, difficult = [], [], []
        for obj in root.iter("object"):
            name_el = obj.find("name")
            name = (name_el.text or "").strip() if name_el is not None else ""
            if name not in self.index_map:
                raise DatasetFormatError(f"{xml_file}: unknown class name {name!r}; known: {sorted(self.index_map)}")
            diff_text = (obj.findtext("difficult") or "0").strip() or "0"
            if diff_text not in ("0", "1"):
                raise DatasetFormatError(f"{xml_file}: object {name!r} has <difficult>{diff_text}</difficult>, "
                                         "expected 0 or 1")
            diff = diff_text == "1"
            bb = obj.find("bndbox")
            if bb is None:
                raise DatasetFormatError(f"{xml_file}: object {name!r} has no <bndbox>")
            box = [num(bb, "xmin") - 1, num(bb, "ymin") - 1, num(bb, "xmax"), num(bb, "ymax")]
            clipped, keep = clip_boxes(np.array([box]), width, height)
            if not keep[0]:
                self.num_dropped += 1
                continue
            boxes.append(clipped[0])
            labels.append(self.index_map[name])
            difficult.append(diff)
        fname = (root.findtext("filename") or f"{img_id}.jpg").strip()
        path = base / "JPEGImages" / fname
        if not path.is_file():
            path = base / "JPEGImages" / f"{img_id}.jpg"
        return {"boxes": np.array(boxes, dtype=np.float32).reshape(-1, 4), "labels": np.array(labels, np.int64),
                "difficult": np.array(difficult, dtype=bool), "path": path, "image_id": index,
                "width": width, "height": height, "name": img_id}

    def __repr__(self) -> str:
        return f"VOCDetection(root={str(self.root)!r}, splits={self._splits}, images={len(self)})"
