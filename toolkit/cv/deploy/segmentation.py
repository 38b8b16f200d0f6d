"""Segmentation exports: palette in the metadata, ``toolkit predict`` writing indexed PNGs, int8 pixAcc/mIoU.

What the export adds to ``PREFIX.json`` (beside ``task: "segmentation"``, ``classes``
and the ``preprocessing`` the model records):

* ``palette``: one ``[r, g, b]`` per class id (the dataset's colours as
  :func:`toolkit.cv.utils.get_color_pallete` draws them, ADE20K's shift included),
  so a runner colours a class map without knowing any dataset.

The predictor reads an image, preprocesses it as the metadata says (fixed input
size: the center crop; an image smaller than it is refused), takes the argmax
over the class axis of the logits (ties: lowest class id) and writes

* ``DIR/<stem>.png``: the class map as an 8-bit indexed (``P`` mode) PNG whose
  palette is the metadata's (the class id is the pixel value);
* ``DIR/<stem>_overlay.png`` with ``overlay=True``: the preprocessed (cropped)
  RGB image blended half and half with the class colours, ``(a + b + 1) // 2``
  in integers, background (class 0) left as the image.

and returns ``{"input", "mask": path, "classes": {label: pixel count}}`` (classes
present only, in class-id order).
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ...deploy.fileformat import write_bytes_atomic
from ...deploy.predict import register_predictor
from ...deploy.preprocess import ImagePreprocessing, center_crop, preprocess_image, read_image, resize_shorter, to_color
from ...deploy.runtime import ExportError

__all__ = ["segmentation_palette", "prepare_segmentation_export", "export_segmentation", "segment",
           "read_palette", "output_folder", "evaluate_segmentation"]


def segmentation_palette(dataset: str | None, nclass: int) -> list[list[int]]:
    """``[r, g, b]`` of each class id ``0..nclass-1`` for ``dataset`` (VOC's colours when unknown)."""
    from ..utils.palette import _ALIASES, get_palette

    if nclass < 1 or nclass > 256:
        raise ValueError(f"an indexed PNG holds 1..256 classes, the model has {nclass}")
    key = _ALIASES.get(str(dataset or "").lower(), "voc")
    flat = get_palette({"voc": "pascal_voc", "ade": "ade20k", "citys": "citys"}[key])
    shift = 1 if key == "ade" else 0  # GluonCV draws ADE20K's class c with colour c + 1
    return [[int(v) for v in flat[3 * (c + shift): 3 * (c + shift) + 3]] or [0, 0, 0] for c in range(nclass)]


def prepare_segmentation_export(block: Any) -> Any:
    """Add ``palette`` (and ``classes`` when known) to a segmentation model's metadata; returns the block."""
    meta = block.metadata
    n = int(meta.get("num_classes") or getattr(block, "nclass", 0))
    if not n:
        raise ValueError("a segmentation export needs num_classes in the model's metadata")
    if not isinstance(meta.get("palette"), list):
        meta["palette"] = segmentation_palette(meta.get("dataset"), n)
    return block


def export_segmentation(block: Any, prefix: str | os.PathLike, **kwargs: Any) -> dict[str, Any]:
    """:meth:`HybridBlock.export` of a segmentation model with its palette in the metadata."""
    return prepare_segmentation_export(block).export(prefix, **kwargs)


def read_palette(meta: dict[str, Any], nclass: int) -> list[int]:
    """The metadata's palette as 768 PNG palette values; a missing or malformed one is an :class:`ExportError`."""
    pal = meta.get("palette")
    if pal is None:
        raise ExportError("the export's metadata has no palette (a segmentation export lists one [r, g, b] per "
                          "class); re-export it with toolkit export")
    ok = isinstance(pal, list) and len(pal) == nclass and all(
        isinstance(c, list) and len(c) == 3 and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255
                                                    for v in c) for c in pal)
    if not ok:
        raise ExportError(f"the metadata's palette must list {nclass} colours [r, g, b] (integers 0..255), "
                          f"one per class")
    flat = [v for c in pal for v in c]
    return flat + [0] * (768 - len(flat))


def output_folder(out: str | os.PathLike | None, option: str = "--out") -> Path:
    """Create/check the folder predictions are written to; an unusable one is an :class:`ExportError`."""
    if out is None:
        raise ExportError(f"segmentation writes its class maps to a folder: pass {option} DIR")
    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExportError(f"{option} {folder} cannot be created: {err.strerror or err}") from err
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"{option} {folder} cannot be written (permission denied)")
    return folder


def _cropped_pixels(path: Any, pre: ImagePreprocessing, size: Sequence[int]) -> np.ndarray:
    """The uint8 (H, W, C) pixels the graph sees (before normalisation), for the overlay."""
    pixels = to_color(read_image(path), pre.color)
    if pre.resize:
        pixels = resize_shorter(pixels, pre.resize)
    return center_crop(pixels, pre.crop or size)


def _png(mask: np.ndarray, palette: list[int]) -> bytes:
    from PIL import Image

    img = Image.fromarray(mask, mode="P")
    img.putpalette(palette)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _overlay(pixels: np.ndarray, mask: np.ndarray, palette: list[int]) -> bytes:
    from PIL import Image

    rgb = pixels if pixels.shape[2] == 3 else np.repeat(pixels, 3, axis=2)
    colours = np.asarray(palette, dtype=np.uint16).reshape(256, 3)[mask]
    blend = ((rgb.astype(np.uint16) + colours + 1) // 2).astype(np.uint8)
    out = np.where((mask == 0)[..., None], rgb, blend)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(out), mode="RGB").save(buf, format="PNG")
    return buf.getvalue()


def class_maps(logits: np.ndarray, name: str = "input") -> np.ndarray:
    """(N, C, H, W) logits -> (N, H, W) uint8 class ids (argmax; ties: the lowest id)."""
    logits = np.asarray(logits)
    if logits.ndim != 4:
        raise ExportError(f"the graph returned shape {list(logits.shape)}; a segmentation model returns (N, C, H, W)")
    if not np.isfinite(logits).all():
        raise ExportError(f"the model returned non-finite logits (NaN or infinity) for {name}")
    return logits.argmax(axis=1).astype(np.uint8)


@register_predictor("segmentation")
def segment(
    model: Any,
    inputs: Sequence[str | os.PathLike],
    k: int = 5,
    with_logits: bool = False,
    out: str | os.PathLike | None = None,
    overlay: bool = False,
) -> list[dict[str, Any]]:
    """Segment image files with an exported model and write the class maps as indexed PNGs.

    Parameters
    ----------
    model : ExportedBlock or OpenVINOBlock
        A loaded segmentation export.
    inputs : sequence of path
        Image files.
    k, with_logits
        Unused (the ``toolkit predict`` interface).
    out : path
        Folder for ``<stem>.png`` (and ``<stem>_overlay.png``); created if missing.
    overlay : bool
        Also write the class colours blended over the (cropped) image.

    Returns
    -------
    list of dict
        ``{"input", "mask": path, "classes": {label: pixel count}}`` per image.
    """
    meta = model.metadata
    inputs_spec = meta.get("inputs") or []
    if len(inputs_spec) != 1 or len(inputs_spec[0].get("shape", [])) != 4:
        raise ExportError("a segmentation export takes one NCHW image input")
    shape = inputs_spec[0]["shape"]
    nclass = int(meta.get("num_classes") or len(meta.get("classes") or []) or 0)
    if not 1 <= nclass <= 256:
        raise ExportError(f"a segmentation export needs num_classes in 1..256 in its metadata, got {nclass}")
    palette = read_palette(meta, nclass)
    names = meta.get("classes") if isinstance(meta.get("classes"), list) and len(meta["classes"]) == nclass else None
    pre = ImagePreprocessing.from_metadata(meta)
    stems = [Path(p).stem for p in inputs]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise ExportError(f"inputs share the file name {dupes[0]!r}; their masks would overwrite each other")
    folder = output_folder(out)
    results = []
    for path, stem in zip(inputs, stems):
        batch = preprocess_image(path, pre, shape[1:])[None]
        logits = model(batch)
        logits = logits[0] if isinstance(logits, (tuple, list)) else logits
        mask = class_maps(logits, os.fspath(path))[0]
        if int(mask.max(initial=0)) >= nclass or np.asarray(logits).shape[1] != nclass:
            raise ExportError(f"the graph returned {np.asarray(logits).shape[1]} classes; the metadata says {nclass}")
        target = folder / f"{stem}.png"
        try:
            write_bytes_atomic(target, _png(mask, palette))
            if overlay:
                write_bytes_atomic(folder / f"{stem}_overlay.png",
                                   _overlay(_cropped_pixels(path, pre, shape[2:]), mask, palette))
        except OSError as err:
            raise ExportError(f"cannot write {target}: {err.strerror or err}") from err
        counts = np.bincount(mask.ravel(), minlength=nclass)
        results.append({
            "input": os.fspath(path),
            "mask": os.fspath(target),
            "classes": {(names[c] if names else str(c)): int(counts[c]) for c in range(nclass) if counts[c]},
        })
    return results


def _scenes_pairs(spec: str) -> tuple[int, Callable[[int], tuple[np.ndarray, np.ndarray]], int]:
    """(count, get(i) -> (uint8 HWC pixels, uint8 mask with 255 ignored), nclass) of a validation set."""
    if spec.lower() not in ("fashion-scenes", "fashion_scenes"):
        raise ExportError(f"segmentation validation data {spec!r} is not a known set (fashion-scenes)")
    from ..data import FashionScenesSegmentation

    ds = FashionScenesSegmentation("val")

    def get(i: int) -> tuple[np.ndarray, np.ndarray]:
        image, mask = ds[i]
        return np.ascontiguousarray(np.asarray(image).transpose(1, 2, 0), dtype=np.uint8), np.asarray(mask, np.uint8)

    return len(ds), get, int(ds.num_class)


def evaluate_segmentation(
    sessions: dict[str, Any],
    meta: dict[str, Any],
    val: str,
    batch_size: int = 8,
    limit: int | None = None,
) -> dict[str, Any]:
    """pixAcc and mIoU (GluonCV's :class:`SegmentationMetric`) of each onnxruntime session on ``val``.

    Images and masks get the export's center crop (a resize step would need the mask
    resized too, which the metadata does not describe: refused). Also reports how
    many pixels each session's class map shares with the first session's.
    """
    from ..data.segmentation import mask_to_target
    from ..metrics import SegmentationMetric

    pre = ImagePreprocessing.from_metadata(meta)
    if pre.resize:
        raise ExportError("pixAcc/mIoU evaluation takes exports with a fixed input size (resize 0, center crop)")
    shape = meta["inputs"][0]["shape"]
    crop = pre.crop or tuple(shape[2:])
    count, get, nclass = _scenes_pairs(val)
    model_classes = int(meta.get("num_classes") or 0)
    if model_classes != nclass:
        raise ExportError(f"{val} has {nclass} classes, the model {model_classes}")
    n = count if limit is None else min(count, limit)
    metrics = {k: SegmentationMetric(nclass) for k in sessions}
    agree = {k: 0 for k in sessions}
    name = meta["inputs"][0]["name"]
    for start in range(0, n, max(1, batch_size)):
        pairs = [get(i) for i in range(start, min(n, start + batch_size))]
        batch = np.stack([preprocess_image(p, pre, shape[1:]) for p, _ in pairs])
        labels = np.stack([mask_to_target(center_crop(m[..., None], crop)[..., 0]).numpy() for _, m in pairs])
        first = None
        for key, sess in sessions.items():
            pred = class_maps(np.asarray(sess.run(None, {name: batch})[0])).astype(np.int64)
            metrics[key].update(labels, pred)
            first = pred if first is None else first
            agree[key] += int((pred == first).sum())
    pixels = n * crop[0] * crop[1]
    result: dict[str, Any] = {"samples": int(n), "val": val}
    for key, metric in metrics.items():
        pix_acc, miou = metric.get()
        result[f"{key}_pixAcc"], result[f"{key}_mIoU"] = pix_acc, miou
        if key != next(iter(sessions)):
            result[f"{key}_pixel_agreement"] = agree[key] / pixels if pixels else float("nan")
    return result
