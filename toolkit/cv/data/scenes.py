"""The offline detection set ``fashion-scenes``: Fashion-MNIST items pasted on textured canvases.

It exists so detectors can be trained and evaluated with nothing downloaded:
the items come from Debian's Fashion-MNIST (``dataset-fashion-mnist``), the
canvases are generated, and the result is written once in COCO format, so the
ordinary :class:`~toolkit.cv.data.detection.COCODetection` path (and
pycocotools' evaluation) reads it, not a special one::

    $TOOLKIT_DATA/fashion_scenes/
        train/000000.png ...        val/000000.png ...
        annotations/instances_train.json  annotations/instances_val.json
        VERSION.json                (generator version, arguments, sha256 of the files)

Generation is deterministic: image ``i`` of split ``s`` draws from its own
``numpy`` generator seeded with ``(seed, s, i)``, so the result does not depend
on the number of worker processes. Training canvases take their items from
Fashion-MNIST's training split, validation canvases from its test split.

Scene rules (what a detector has to learn):

* background: one of four textures (noise, linear gradient, stripes, smooth
  blobs) with colours drawn at random, plus pixel noise, so neither a global
  threshold nor a colour key separates items from background;
* items: 1-6 per canvas (``min_items``/``max_items``), longer side
  ``min_scale``-``max_scale`` of the canvas, aspect jittered by up to 1.25x,
  tinted with a random colour that differs from the background under it,
  blended by their grey level (soft edges);
* occlusion: later items cover earlier ones; an item is placed only where
  every item keeps at least ``min_visible`` of its pixels visible (else another
  position is tried, and after 30 tries the item is left out);
* annotations: the instance mask is an item's visible pixels (grey level >=
  0.2 and not covered), the box is tight around that mask (COCO
  ``[x, y, w, h]`` in pixel edges), the area is the mask's pixel count.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ._base import data_root
from .detection import COCODetection
from .mnist import FashionMNIST

__all__ = ["build_fashion_scenes", "FashionScenes", "SCENES_VERSION", "SCENES_CLASSES", "scenes_root"]

#: Bumped whenever the generated pixels or annotations change for the same arguments.
SCENES_VERSION = 2
SCENES_CLASSES: tuple[str, ...] = tuple(FashionMNIST.classes)
_SPLITS = ("train", "val")
_MASK_LEVEL = 0.2  # grey level (0-1) from which an item pixel belongs to its mask
_TRIES = 30


def scenes_root(root: str | os.PathLike | None = None) -> Path:
    """The set's folder: ``root`` or ``data_root() / "fashion_scenes"``."""
    return Path(root).expanduser() if root is not None else data_root() / "fashion_scenes"


# ----------------------------------------------------------------------------- rendering
def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A (size, size, 3) float32 texture in [0, 255]."""
    kind = rng.integers(4)
    c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == 0:  # flat colour + strong noise
        img = np.broadcast_to(c1, (size, size, 3)).astype(np.float32)
        img = img + rng.standard_normal((size, size, 3), dtype=np.float32) * rng.uniform(15, 45)
    elif kind == 1:  # linear gradient in a random direction
        a = rng.uniform(0, 2 * np.pi)
        t = np.cos(a) * xx + np.sin(a) * yy
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        img = c1 + (c2 - c1) * t[..., None]
    elif kind == 2:  # sinusoidal stripes
        a = rng.uniform(0, np.pi)
        period = rng.uniform(3, 20) / size
        t = 0.5 + 0.5 * np.sin(2 * np.pi * (np.cos(a) * xx + np.sin(a) * yy) / period)
        img = c1 + (c2 - c1) * t[..., None]
    else:  # smooth blobs: a coarse random grid upsampled bilinearly
        from PIL import Image

        g = int(rng.integers(3, 9))
        coarse = rng.uniform(0, 255, (g, g, 3)).astype(np.uint8)
        img = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BILINEAR), dtype=np.float32)
    img = img + rng.standard_normal((size, size, 3), dtype=np.float32) * 8
    return np.clip(img, 0, 255).astype(np.float32)


def _item(rng: np.random.Generator, grey: np.ndarray, size: int, min_scale: float, max_scale: float) -> np.ndarray:
    """Crop an item to its extent and resize it; returns grey levels in [0, 1] (h, w)."""
    from PIL import Image

    ys, xs = np.nonzero(grey > 0)
    crop = grey[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1] if len(ys) else grey
    h0, w0 = crop.shape
    aspect = (w0 / h0) * float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
    longer = rng.uniform(min_scale, max_scale) * size
    if aspect >= 1:
        w, h = longer, longer / aspect
    else:
        w, h = longer * aspect, longer
    w, h = max(int(round(w)), 4), max(int(round(h)), 4)
    out = Image.fromarray(crop).resize((w, h), Image.BILINEAR)
    return np.asarray(out, dtype=np.float32) / 255.0


_SOURCE: dict[str, np.ndarray] = {}  # the Fashion-MNIST split being rendered (set once per worker process)


def _set_source(images: np.ndarray, labels: np.ndarray) -> None:
    _SOURCE["images"], _SOURCE["labels"] = images, labels


def _render(seed: int, split_id: int, index: int, size: int, min_items: int, max_items: int, min_scale: float,
            max_scale: float, min_visible: float) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """Render canvas ``index`` of split ``split_id``: (uint8 image (S, S, 3), [(label, visible mask)])."""
    images, labels = _SOURCE["images"], _SOURCE["labels"]
    rng = np.random.default_rng((seed, split_id, index))
    canvas = _background(rng, size)
    owner = np.full((size, size), -1, dtype=np.int32)  # which item is on top of each mask pixel
    areas: list[int] = []
    classes: list[int] = []
    n_items = int(rng.integers(min_items, max_items + 1))
    for _ in range(n_items):
        src = int(rng.integers(len(images)))
        grey = _item(rng, images[src], size, min_scale, max_scale)
        h, w = grey.shape
        mask = grey >= _MASK_LEVEL
        if mask.sum() < 8:
            continue
        placed = False
        for _ in range(_TRIES):
            y0, x0 = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
            under = owner[y0: y0 + h, x0: x0 + w][mask]
            if areas:
                lost = np.bincount(under[under >= 0], minlength=len(areas))
                visible = np.bincount(owner[owner >= 0], minlength=len(areas)) - lost
                if np.any(visible < min_visible * np.asarray(areas)):
                    continue
            placed = True
            break
        if not placed:
            continue
        region = canvas[y0: y0 + h, x0: x0 + w]
        bg_mean = region.reshape(-1, 3).mean(0)
        colour = rng.uniform(0, 255, 3)
        for _ in range(10):  # keep the item distinguishable from what it sits on
            if np.linalg.norm(colour - bg_mean) >= 90:
                break
            colour = rng.uniform(0, 255, 3)
        shade = colour * (0.45 + 0.55 * grey[..., None])  # keep the item's own texture
        alpha = np.clip((grey - 0.1) / 0.2, 0.0, 1.0)[..., None]
        region[...] = region * (1 - alpha) + shade * alpha
        owner[y0: y0 + h, x0: x0 + w][mask] = len(areas)
        areas.append(int(mask.sum()))
        classes.append(int(labels[src]))
    objects = [(classes[k], owner == k) for k in range(len(areas))]
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8), objects


def _render_and_save(job: tuple) -> tuple[str, list[dict[str, Any]]]:
    """Render one canvas, write its PNG; return its pixels' sha256 and its annotations (RLE masks)."""
    from PIL import Image
    from pycocotools import mask as mask_utils

    path, params = job[0], job[1:]
    img, objects = _render(*params)
    Image.fromarray(img).save(path, compress_level=1)
    anns = []
    for label, m in objects:
        ys, xs = np.nonzero(m)
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        rle["counts"] = rle["counts"].decode("ascii")
        x1, y1 = int(xs.min()), int(ys.min())
        anns.append({"category_id": label + 1, "bbox": [x1, y1, int(xs.max()) + 1 - x1, int(ys.max()) + 1 - y1],
                     "area": int(m.sum()), "iscrowd": 0, "segmentation": rle})
    return hashlib.sha256(img.tobytes()).hexdigest(), anns


# ----------------------------------------------------------------------------- writing
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_split(folder: Path, split: str, split_id: int, count: int, source: FashionMNIST,
                 params: dict[str, Any], workers: int) -> str:
    """Render and write one split; returns a sha256 of its pixels (independent of the PNG encoder)."""
    (folder / split).mkdir(parents=True)
    images, labels = source.data.numpy(), source.targets.numpy()
    size = params["image_size"]
    jobs = [(folder / split / f"{i:06d}.png", params["seed"], split_id, i, size, params["min_items"],
             params["max_items"], params["min_scale"], params["max_scale"], params["min_visible"])
            for i in range(count)]
    coco: dict[str, Any] = {
        "info": {"description": "fashion-scenes: Fashion-MNIST items on textured canvases (toolkit)",
                 "version": str(SCENES_VERSION)},
        "images": [], "annotations": [],
        "categories": [{"id": k + 1, "name": n, "supercategory": "fashion"} for k, n in enumerate(SCENES_CLASSES)],
    }
    pixels = hashlib.sha256()
    if workers > 1:
        # The source arrays reach the workers once, through the initializer, not with every job.
        pool = ProcessPoolExecutor(workers, initializer=_set_source, initargs=(images, labels))
        results = pool.map(_render_and_save, jobs, chunksize=32)
    else:
        _set_source(images, labels)
        pool, results = None, map(_render_and_save, jobs)
    try:
        for i, (digest, anns) in enumerate(results):
            pixels.update(bytes.fromhex(digest))
            coco["images"].append({"id": i + 1, "file_name": jobs[i][0].name, "width": size, "height": size})
            for ann in anns:
                coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": i + 1, **ann})
    finally:
        if pool is not None:
            pool.shutdown()
        _SOURCE.clear()
    (folder / "annotations").mkdir(exist_ok=True)
    with open(folder / "annotations" / f"instances_{split}.json", "w") as f:
        json.dump(coco, f, separators=(",", ":"))
    return pixels.hexdigest()


@functools.lru_cache(maxsize=2)
def _source(source_root: str | None, train: bool) -> FashionMNIST:
    """Fashion-MNIST split, kept for the next build in this process (decompressing it costs ~1 s)."""
    return FashionMNIST(source_root, train=train)


def _check_args(params: dict[str, Any]) -> None:
    for key in ("num_train", "num_val"):
        if not isinstance(params[key], int) or params[key] < 0:
            raise ValueError(f"{key} must be an int >= 0, got {params[key]!r}")
    if not isinstance(params["image_size"], int) or params["image_size"] < 32:
        raise ValueError(f"image_size must be an int >= 32, got {params['image_size']!r}")
    if not (0 <= params["min_items"] <= params["max_items"]):
        raise ValueError(f"need 0 <= min_items <= max_items, got {params['min_items']}, {params['max_items']}")
    if not (0 < params["min_scale"] <= params["max_scale"] <= 1):
        raise ValueError(f"need 0 < min_scale <= max_scale <= 1, got {params['min_scale']}, {params['max_scale']}")
    if not (0 < params["min_visible"] <= 1):
        raise ValueError(f"min_visible must be in (0, 1], got {params['min_visible']}")


def _is_current(folder: Path, params: dict[str, Any]) -> bool:
    try:
        meta = json.loads((folder / "VERSION.json").read_text())
    except (OSError, ValueError):
        return False
    if meta.get("version") != SCENES_VERSION or meta.get("arguments") != params:
        return False
    files = meta.get("sha256", {})
    return all((folder / f).is_file() and _sha256(folder / f) == files.get(f)
               for f in (f"annotations/instances_{s}.json" for s in _SPLITS))


def build_fashion_scenes(root: str | os.PathLike | None = None, *, num_train: int = 8000, num_val: int = 1000,
                         image_size: int = 128, min_items: int = 1, max_items: int = 6,
                         min_scale: float = 0.2, max_scale: float = 0.55, min_visible: float = 0.5,
                         seed: int = 0, source_root: str | os.PathLike | None = None,
                         force: bool = False, num_workers: int | None = None) -> Path:
    """Build the ``fashion-scenes`` detection set in COCO format (idempotent).

    Nothing is written when ``root`` already holds a set made by this generator
    version with the same arguments and intact annotation files (their sha256
    is checked), unless ``force``. Otherwise the set is built in a temporary
    sibling folder and moved into place, so readers never see half a set.

    Parameters
    ----------
    root : path, optional
        Output folder (default ``$TOOLKIT_DATA/fashion_scenes``).
    num_train, num_val : int
        Canvases per split.
    image_size : int, default 128
        Canvas side in pixels (square canvases).
    min_items, max_items : int
        Items per canvas, drawn uniformly (some may be left out, see ``min_visible``).
    min_scale, max_scale : float
        Range of an item's longer side, as a fraction of ``image_size``.
    min_visible : float, default 0.5
        Fraction of each item's pixels that must stay visible after occlusion.
    seed : int, default 0
        Seed of the whole set.
    source_root : path, optional
        Fashion-MNIST folder (default: where :class:`FashionMNIST` finds it).
    force : bool, default False
        Rebuild even when the set on disk is current.
    num_workers : int, optional
        Rendering processes (default: up to 4, by CPU count). Does not change the output.

    Returns
    -------
    pathlib.Path
        The folder holding the set.

    Raises
    ------
    toolkit.data.MissingDatasetError
        If Fashion-MNIST is not installed (the message says how to install it).
    ValueError
        For arguments out of range.
    """
    folder = scenes_root(root)
    params = {"num_train": num_train, "num_val": num_val, "image_size": image_size, "min_items": min_items,
              "max_items": max_items, "min_scale": float(min_scale), "max_scale": float(max_scale),
              "min_visible": float(min_visible), "seed": seed}
    _check_args(params)
    if not force and _is_current(folder, params):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(folder):  # several processes (DDP ranks, test workers): one builds, the others wait
        if not force and _is_current(folder, params):
            return folder
        return _build(folder, params, source_root, num_workers)


@contextlib.contextmanager
def _build_lock(folder: Path):
    try:
        import fcntl
    except ImportError:  # no flock (Windows): builds are still atomic, just not serialised
        yield
        return
    with open(folder.with_name(f".{folder.name}.lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _build(folder: Path, params: dict[str, Any], source_root: str | os.PathLike | None,
           num_workers: int | None) -> Path:
    num_train, num_val = params["num_train"], params["num_val"]
    workers = num_workers if num_workers is not None else min(4, os.cpu_count() or 1)
    workers = 1 if num_train + num_val < 256 else max(1, int(workers))  # a pool costs more than tiny sets
    start = time.perf_counter()
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        pixel_sha = {}
        for split_id, (split, count) in enumerate((("train", num_train), ("val", num_val))):
            source = _source(None if source_root is None else str(source_root), split == "train")
            pixel_sha[split] = _write_split(tmp, split, split_id, count, source, params, workers)
        meta = {
            "name": "fashion-scenes", "generator": "toolkit.cv.data.scenes", "version": SCENES_VERSION,
            "arguments": params, "classes": list(SCENES_CLASSES),
            "sha256": {f"annotations/instances_{s}.json": _sha256(tmp / "annotations" / f"instances_{s}.json")
                       for s in _SPLITS},
            "pixels_sha256": pixel_sha,
            "source": "Fashion-MNIST IDX files (train split -> train canvases, t10k -> val canvases)",
            "build_seconds": round(time.perf_counter() - start, 2),
        }
        (tmp / "VERSION.json").write_text(json.dumps(meta, indent=2) + "\n")
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


class FashionScenes(COCODetection):
    """The ``fashion-scenes`` set: a :class:`~toolkit.cv.data.detection.COCODetection` over its folder.

    The set is built on first use (:func:`build_fashion_scenes` with
    ``build_kwargs``, default arguments when none are given); a set already on
    disk is used as is when no ``build_kwargs`` are given.

    Parameters
    ----------
    split : {"train", "val"}
        Which split.
    root : path, optional
        The set's folder (default ``$TOOLKIT_DATA/fashion_scenes``).
    with_masks : bool, default False
        Also return instance masks (``target["masks"]``).
    skip_empty : bool, default False
        Leave out canvases without objects (there are some only with ``min_items=0``).
    transform : callable, optional
        Applied as ``transform(image, target)``.
    **build_kwargs
        Arguments of :func:`build_fashion_scenes` (``num_train``, ``image_size``, ...).

    Items are ``(image, target)`` per the detection contract; ``classes`` are
    the ten Fashion-MNIST names; ``version`` is the parsed ``VERSION.json``.
    """

    def __init__(self, split: str = "train", root: str | os.PathLike | None = None, *, with_masks: bool = False,
                 skip_empty: bool = False, transform=None, **build_kwargs: Any) -> None:
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
        folder = scenes_root(root)
        if build_kwargs or not (folder / "VERSION.json").is_file():
            build_fashion_scenes(folder, **build_kwargs)
        self.version = json.loads((folder / "VERSION.json").read_text())
        self.split = split
        super().__init__(folder, split, with_masks=with_masks, skip_empty=skip_empty, transform=transform)

    def __repr__(self) -> str:
        return f"FashionScenes(split={self.split!r}, root={str(self.root)!r}, images={len(self)})"
