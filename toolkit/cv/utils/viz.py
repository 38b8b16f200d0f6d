"""Draw detections on an image with matplotlib (GluonCV's ``plot_bbox``)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["plot_image", "plot_bbox"]


def _numpy(a: Any, name: str) -> np.ndarray | None:
    if a is None:
        return None
    try:
        import torch

        if isinstance(a, torch.Tensor):
            return a.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    try:
        return np.asarray(a)
    except Exception as err:
        raise TypeError(f"plot_bbox: {name} must be an array or tensor, got {type(a).__name__}") from err


def _hwc_image(img: Any, reverse_rgb: bool) -> np.ndarray:
    """An (H, W, 3) uint8 array from HWC arrays or CHW tensors (``tv_tensors.Image``), uint8 or float."""
    arr = _numpy(img, "img")
    chw = arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3)
    try:
        import torch

        chw = chw or (isinstance(img, torch.Tensor) and arr.ndim == 3 and arr.shape[0] in (1, 3))
    except ImportError:  # pragma: no cover
        pass
    if chw:
        arr = arr.transpose(1, 2, 0)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"plot_bbox: img must be (H, W, 3) or (3, H, W) with H, W > 0, got shape {arr.shape}")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.dtype != np.uint8:
        arr = arr.astype(np.float64)
        if arr.size and arr.max() <= 1.0:  # float images in [0, 1]
            arr = arr * 255
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if reverse_rgb:
        arr = arr[..., ::-1]
    return np.ascontiguousarray(arr)


def plot_image(img: Any, ax: Any = None, reverse_rgb: bool = False) -> Any:
    """Show an image on matplotlib axes (new axes when ``ax`` is None); returns the axes."""
    from matplotlib import pyplot as plt

    if ax is None:
        ax = plt.figure().add_subplot(1, 1, 1)
    ax.imshow(_hwc_image(img, reverse_rgb))
    return ax


def _color(c: Any) -> tuple[float, ...]:
    """A matplotlib colour from an RGB(A) tuple in [0, 1] or [0, 255], or a colour name."""
    if isinstance(c, str):
        return c  # type: ignore[return-value]
    c = tuple(float(v) for v in c)
    return tuple(v / 255 for v in c) if any(v > 1 for v in c) else c


def plot_bbox(img: Any, bboxes: Any, scores: Any = None, labels: Any = None, thresh: float = 0.5,
              class_names: Sequence[str] | None = None, colors: Mapping[int, Any] | None = None, ax: Any = None,
              reverse_rgb: bool = False, absolute_coordinates: bool = True) -> Any:
    """Draw boxes (with class names and scores) on an image, as GluonCV's ``plot_bbox``.

    Parameters
    ----------
    img : array or tensor
        (H, W, 3) array or (3, H, W) tensor, uint8 or float in [0, 1].
    bboxes : array or tensor (N, 4)
        XYXY boxes (a leading batch axis of 1, as detectors return, is dropped).
    scores : array or tensor (N,) or (N, 1), optional
        Boxes scoring below ``thresh`` are not drawn.
    labels : array or tensor (N,) or (N, 1), optional
        Class ids; negative ids (padding) are not drawn.
    thresh : float, default 0.5
        Display threshold on ``scores``.
    class_names : sequence of str, optional
        Names shown for the class ids.
    colors : dict, optional
        Class id -> colour ((r, g, b) in [0, 1] or [0, 255], or a name); missing
        classes get a colour from the ``hsv`` colormap over ``class_names``
        (``tab20`` without names), so the same class is always drawn alike.
    ax : matplotlib axes, optional
        Axes to draw on (new ones otherwise).
    reverse_rgb : bool, default False
        Treat the image as BGR.
    absolute_coordinates : bool, default True
        ``False``: box coordinates are fractions of the image size.

    Returns
    -------
    matplotlib axes
        The axes drawn on.
    """
    from matplotlib import pyplot as plt

    image = _hwc_image(img, reverse_rgb)
    boxes = _numpy(bboxes, "bboxes").astype(np.float64)
    if boxes.ndim == 3 and boxes.shape[0] == 1:
        boxes = boxes[0]
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"plot_bbox: bboxes must have shape (N, 4), got {boxes.shape}")
    flat = {}
    for name, val in (("scores", scores), ("labels", labels)):
        arr = _numpy(val, name)
        if arr is not None:
            arr = arr.reshape(-1)
            if len(arr) != len(boxes):
                raise ValueError(f"plot_bbox: {len(arr)} {name} for {len(boxes)} bboxes")
        flat[name] = arr
    scores, labels = flat["scores"], flat["labels"]
    ax = plot_image(image, ax=ax)
    if not absolute_coordinates:
        boxes = boxes * [image.shape[1], image.shape[0], image.shape[1], image.shape[0]]
    colors = dict(colors or {})
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        if scores is not None and scores[i] < thresh:
            continue
        cls = int(labels[i]) if labels is not None else -1
        if labels is not None and labels[i] < 0:
            continue
        if cls not in colors:
            colors[cls] = (plt.get_cmap("hsv")(cls / len(class_names)) if class_names
                           else plt.get_cmap("tab20")(cls % 20))
        color = _color(colors[cls])
        ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, linewidth=3.5))
        name = class_names[cls] if class_names is not None and 0 <= cls < len(class_names) else (
            str(cls) if cls >= 0 else "")
        text = " ".join(t for t in (name, f"{scores[i]:.3f}" if scores is not None else "") if t)
        if text:
            ax.text(x1, y1 - 2, text, bbox={"facecolor": color, "alpha": 0.5}, fontsize=12, color="white")
    return ax
