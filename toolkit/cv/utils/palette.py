"""Colour palettes of segmentation datasets and mask overlays.

``get_color_pallete`` keeps GluonCV's name (and spelling) and behaviour: a
``P``-mode PIL image whose palette colours the class ids. Palettes:

* ``pascal_voc`` (VOC, COCO's VOC classes, the Fashion-MNIST scenes): the
  standard VOC colour map, class ``c``'s colour built from the bits of ``c``
  (computed below); the ignore label 255 maps to (224, 224, 192) as in VOC's PNGs;
* ``ade20k``: the ADE20K palette of 150 classes (the colours of the dataset's
  ``objectInfo150``, as GluonCV ships them), drawn for class ids shifted by one
  (GluonCV's ``npimg + 1``), so the ignored "other" pixels (-1) are black;
* ``citys``: the 19 Cityscapes train-id colours (the dataset's ``labels.py``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ADE_PALETTE", "CITYS_PALETTE", "get_color_pallete", "get_palette", "overlay_mask", "plot_mask",
           "voc_palette"]

# 151 RGB triples: index 0 (black) for ADE's unlabelled "other", then the 150 classes.
ADE_PALETTE = (
    0, 0, 0, 120, 120, 120, 180, 120, 120, 6, 230, 230, 80, 50, 50, 4, 200, 3, 120, 120, 80, 140, 140, 140,
    204, 5, 255, 230, 230, 230, 4, 250, 7, 224, 5, 255, 235, 255, 7, 150, 5, 61, 120, 120, 70, 8, 255, 51,
    255, 6, 82, 143, 255, 140, 204, 255, 4, 255, 51, 7, 204, 70, 3, 0, 102, 200, 61, 230, 250, 255, 6, 51,
    11, 102, 255, 255, 7, 71, 255, 9, 224, 9, 7, 230, 220, 220, 220, 255, 9, 92, 112, 9, 255, 8, 255, 214,
    7, 255, 224, 255, 184, 6, 10, 255, 71, 255, 41, 10, 7, 255, 255, 224, 255, 8, 102, 8, 255, 255, 61, 6,
    255, 194, 7, 255, 122, 8, 0, 255, 20, 255, 8, 41, 255, 5, 153, 6, 51, 255, 235, 12, 255, 160, 150, 20,
    0, 163, 255, 140, 140, 140, 250, 10, 15, 20, 255, 0, 31, 255, 0, 255, 31, 0, 255, 224, 0, 153, 255, 0,
    0, 0, 255, 255, 71, 0, 0, 235, 255, 0, 173, 255, 31, 0, 255, 11, 200, 200, 255, 82, 0, 0, 255, 245,
    0, 61, 255, 0, 255, 112, 0, 255, 133, 255, 0, 0, 255, 163, 0, 255, 102, 0, 194, 255, 0, 0, 143, 255,
    51, 255, 0, 0, 82, 255, 0, 255, 41, 0, 255, 173, 10, 0, 255, 173, 255, 0, 0, 255, 153, 255, 92, 0,
    255, 0, 255, 255, 0, 245, 255, 0, 102, 255, 173, 0, 255, 0, 20, 255, 184, 184, 0, 31, 255, 0, 255, 61,
    0, 71, 255, 255, 0, 204, 0, 255, 194, 0, 255, 82, 0, 10, 255, 0, 112, 255, 51, 0, 255, 0, 194, 255,
    0, 122, 255, 0, 255, 163, 255, 153, 0, 0, 255, 10, 255, 112, 0, 143, 255, 0, 82, 0, 255, 163, 255, 0,
    255, 235, 0, 8, 184, 170, 133, 0, 255, 0, 255, 92, 184, 0, 255, 255, 0, 31, 0, 184, 255, 0, 214, 255,
    255, 0, 112, 92, 255, 0, 0, 224, 255, 112, 224, 255, 70, 184, 160, 163, 0, 255, 153, 0, 255, 71, 255, 0,
    255, 0, 163, 255, 204, 0, 255, 0, 143, 0, 255, 235, 133, 255, 0, 255, 0, 235, 245, 0, 255, 255, 0, 122,
    255, 245, 0, 10, 190, 212, 214, 255, 0, 0, 204, 255, 20, 0, 255, 255, 255, 0, 0, 153, 255, 0, 41, 255,
    0, 255, 204, 41, 0, 255, 41, 255, 0, 173, 0, 255, 0, 245, 255, 71, 0, 255, 122, 0, 255, 0, 255, 184,
    0, 92, 255, 184, 255, 0, 0, 133, 255, 255, 214, 0, 25, 194, 194, 102, 255, 0, 92, 0, 255,
)
# The 19 Cityscapes training classes (road ... bicycle).
CITYS_PALETTE = (
    128, 64, 128, 244, 35, 232, 70, 70, 70, 102, 102, 156, 190, 153, 153, 153, 153, 153, 250, 170, 30,
    220, 220, 0, 107, 142, 35, 152, 251, 152, 70, 130, 180, 220, 20, 60, 255, 0, 0, 0, 0, 142, 0, 0, 70,
    0, 60, 100, 0, 80, 100, 0, 0, 230, 119, 11, 32,
)


def voc_palette(n: int = 256) -> list[int]:
    """The VOC colour map: ``3 * n`` values, class ``c``'s RGB bits spread from the bits of ``c``."""
    out = [0] * (3 * n)
    for c in range(n):
        lab, r, g, b = c, 0, 0, 0
        for shift in range(7, -1, -1):  # bit i of each channel from bits 3i, 3i+1, 3i+2 of the label
            r |= (lab & 1) << shift
            g |= ((lab >> 1) & 1) << shift
            b |= ((lab >> 2) & 1) << shift
            lab >>= 3
        out[3 * c:3 * c + 3] = [r, g, b]
    return out


def _pad256(values: tuple[int, ...] | list[int]) -> list[int]:
    return list(values) + [0] * (768 - len(values))


_ALIASES = {"pascal_voc": "voc", "pascal_aug": "voc", "voc": "voc", "coco": "voc", "fashion-scenes": "voc",
            "ade20k": "ade", "ade": "ade", "citys": "citys", "cityscapes": "citys"}


def get_palette(dataset: str = "pascal_voc") -> list[int]:
    """768 palette values (256 RGB triples) of ``dataset`` (``pascal_voc``, ``ade20k``, ``citys`` ...)."""
    key = _ALIASES.get(str(dataset).lower())
    if key is None:
        raise ValueError(f"no palette for dataset {dataset!r}; known: {', '.join(sorted(_ALIASES))}")
    if key == "voc":
        return voc_palette(256)
    return _pad256(ADE_PALETTE if key == "ade" else CITYS_PALETTE)


def _class_map(mask: Any) -> np.ndarray:
    if hasattr(mask, "detach"):
        mask = mask.detach().cpu().numpy()
    arr = np.asarray(mask)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"a class map must be 2-d (H, W), got shape {arr.shape}")
    if arr.dtype.kind == "f":
        raise TypeError("a class map holds integer class ids; take the argmax of logits first")
    return arr.astype(np.int64)


def get_color_pallete(npimg: Any, dataset: str = "pascal_voc"):
    """Colour a class map (GluonCV's ``get_color_pallete``): a ``P``-mode ``PIL.Image``.

    Parameters
    ----------
    npimg : array-like (H, W)
        Integer class ids (numpy or torch); -1 (ignored) and 255 draw as the ignore colour.
    dataset : str
        ``pascal_voc`` (default), ``ade20k`` (ids shifted by one, as GluonCV) or ``citys``.
    """
    from PIL import Image

    arr = _class_map(npimg)
    key = _ALIASES.get(str(dataset).lower())
    if key == "ade":
        arr = arr + 1  # GluonCV: class 0 of the 150 gets colour 1; ignored (-1) gets black
    arr = np.where(arr < 0, 255, arr)
    if arr.max(initial=0) > 255:
        raise ValueError(f"class ids above 255 cannot be drawn with a palette (max {arr.max()})")
    img = Image.fromarray(arr.astype(np.uint8), mode="P")
    palette = get_palette(dataset)
    if key == "voc":
        palette[765:768] = [224, 224, 192]  # VOC's colour of the 255 boundary/ignore label
    img.putpalette(palette)
    return img


def overlay_mask(image: Any, mask: Any, dataset: str = "pascal_voc", alpha: float = 0.5) -> np.ndarray:
    """Blend the coloured class map over an RGB image: (H, W, 3) uint8.

    ``image`` is (H, W, 3) uint8 or a (3, H, W) tensor/array; ``mask`` (H, W) class ids of the same size.
    Background (class 0) and ignored pixels are left as the image.
    """
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[0] == 3 and img.shape[-1] != 3:
        img = img.transpose(1, 2, 0)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be RGB (H, W, 3) or (3, H, W), got shape {img.shape}")
    if img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.max(initial=0) <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    cls = _class_map(mask)
    if cls.shape != img.shape[:2]:
        raise ValueError(f"mask {cls.shape} and image {img.shape[:2]} differ in size")
    colour = np.asarray(get_color_pallete(cls, dataset).convert("RGB"), dtype=np.float32)
    keep = ((cls <= 0) | (cls == 255))[..., None]
    out = np.where(keep, img.astype(np.float32), (1 - alpha) * img + alpha * colour)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def plot_mask(image: Any, mask: Any, path: str | None = None, dataset: str = "pascal_voc", alpha: float = 0.5,
              title: str | None = None, classes: list[str] | None = None):
    """Draw ``overlay_mask`` with matplotlib (a legend of the classes present when ``classes`` is given).

    Saves to ``path`` when given; returns the figure.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    blended = overlay_mask(image, mask, dataset, alpha)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(blended)
    ax.axis("off")
    if title:
        ax.set_title(title)
    if classes:
        palette = np.asarray(get_palette(dataset)).reshape(-1, 3) / 255.0
        present = [int(c) for c in np.unique(_class_map(mask)) if 0 < c < len(classes)]
        shift = 1 if _ALIASES.get(str(dataset).lower()) == "ade" else 0
        ax.legend(handles=[Patch(color=palette[c + shift], label=classes[c]) for c in present],
                  loc="lower right", fontsize=7)
    if path is not None:
        fig.savefig(path, bbox_inches="tight", dpi=100)
    return fig
