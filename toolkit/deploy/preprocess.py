"""Image preprocessing recorded in an export's metadata, done the same way everywhere.

The Python, C++ (``deploy/cpp``) and Java (``deploy/java``) runners must feed
a graph the *same* tensor for the same image file, bit for bit. Image libraries
(Pillow, OpenCV, javax.imageio, torchvision) all resize differently (antialias
filters, fixed-point weights, size rounding), so the three steps after decoding
are written here by hand, and again, operation for operation, in
``deploy/cpp/src/preprocess.cpp`` and ``deploy/java/src/.../Preprocess.java``:

1. **colour**: decoded 8-bit pixels become RGB (grey replicated, alpha dropped,
   palette expanded) or single-channel ``L`` with the integer ITU-R 601
   weights ``(299 R + 587 G + 114 B + 500) // 1000``;
2. **resize** (``resize > 0``): the shorter side becomes ``resize``, the longer
   ``floor(long * resize / short + 1/2)`` (exact integer arithmetic); bilinear
   with half-pixel centres and no antialias, computed in float64 and rounded
   half-up to uint8 like the image libraries used during training;
3. **center crop** ``[ch, cw]``: ``top = (H - ch) // 2``, ``left = (W - cw) // 2``;
4. **normalise** in float32: ``x = p / scale``, then ``(x - mean[c]) / std[c]``.

Only decoding is left to a library. PNG is lossless, so every decoder gives
the same pixels; JPEG decoders may differ by one level here and there, so
cross-runtime bit-identity is only promised for PNG.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "MAX_PREPROCESS_SIZE",
    "MAX_IMAGE_SIDE",
    "MAX_IMAGE_PIXELS",
    "ImageError",
    "ImagePreprocessing",
    "read_image",
    "to_color",
    "resize_to",
    "resize_shorter",
    "resized_size",
    "center_crop",
    "normalize",
    "preprocess_image",
]


#: Shared bounds of all three runners (Python, ``deploy/cpp``, ``deploy/java``), so that a
#: hostile or careless metadata file or image gives one clear error instead of a multi-GiB
#: allocation. ``resize`` (when not 0) and each ``crop`` side must be 1..MAX_PREPROCESS_SIZE.
MAX_PREPROCESS_SIZE = 8192
#: Largest width or height of a decoded image, and of the image after the resize step.
MAX_IMAGE_SIDE = 65535
#: Largest width * height of a decoded image (Pillow's default ``Image.MAX_IMAGE_PIXELS``,
#: checked from the header before decoding) and of the image after the resize step.
MAX_IMAGE_PIXELS = 89_478_485


class ImageError(ValueError):
    """An image cannot be read or does not fit the model's preprocessing."""


def _check_image_size(where: str, height: int, width: int, step: str = "") -> None:
    if height > MAX_IMAGE_SIDE or width > MAX_IMAGE_SIDE or height * width > MAX_IMAGE_PIXELS:
        raise ImageError(
            f"image {where} is too large: {width}x{height}{step} (limits: {MAX_IMAGE_SIDE} pixels a side, "
            f"{MAX_IMAGE_PIXELS} pixels in all)"
        )


def _size_value(value: Any, label: str, low: int) -> int:
    """A metadata size: an integer (an integral float is accepted) in ``low..MAX_PREPROCESS_SIZE``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= MAX_PREPROCESS_SIZE:
        raise ImageError(f"preprocessing {label} must be between {low} and {MAX_PREPROCESS_SIZE}, got {value!r}")
    return int(value)


def _finite_values(value: Any, label: str) -> tuple[float, ...]:
    values = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise ImageError(f"preprocessing {label} must be numbers, got {v!r}")
        if not np.isfinite(v):
            raise ImageError(f"preprocessing {label} has a non-finite value ({v})")
        out.append(float(v))
    if not out:
        raise ImageError(f"preprocessing {label} is empty")
    return tuple(out)


@dataclass(frozen=True)
class ImagePreprocessing:
    """The ``preprocessing`` entry of an exported classification model.

    Attributes
    ----------
    color : str
        ``"RGB"`` or ``"L"`` (single-channel grey).
    resize : int
        Shorter side after resizing; ``0`` means no resize.
    crop : tuple of int or None
        Center crop ``(H, W)`` after resizing; ``None`` for no crop.
    scale : float
        uint8 pixel ``p`` becomes ``p / scale``.
    mean, std : tuple of float
        Per-channel normalisation, one value per channel (or one for all).
    interpolation : str
        Only ``"bilinear"`` is implemented.
    layout : str
        Only ``"NCHW"`` is implemented.
    """

    color: str = "RGB"
    resize: int = 0
    crop: tuple[int, int] | None = None
    scale: float = 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    interpolation: str = "bilinear"
    layout: str = "NCHW"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def channels(self) -> int:
        return 1 if self.color == "L" else 3

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any]) -> "ImagePreprocessing":
        """Read and check ``meta["preprocessing"]`` (``meta`` is the export's JSON).

        Raises
        ------
        ImageError
            If the entry is missing or holds values no runner implements.
        """
        pre = meta.get("preprocessing")
        if not isinstance(pre, Mapping):
            raise ImageError(f"model {meta.get('model')!r} has no 'preprocessing' entry in its metadata")
        kind = pre.get("type", "image")
        if kind != "image":
            raise ImageError(f"preprocessing type {kind!r} is not an image pipeline")
        color = str(pre.get("color", "RGB")).upper()
        if color not in ("RGB", "L"):
            raise ImageError(f"preprocessing color {color!r} is not supported (RGB or L)")
        layout = str(pre.get("layout", "NCHW")).upper()
        if layout != "NCHW":
            raise ImageError(f"preprocessing layout {layout!r} is not supported (NCHW)")
        interp = str(pre.get("interpolation", "bilinear")).lower()
        if interp != "bilinear":
            raise ImageError(f"preprocessing interpolation {interp!r} is not supported (bilinear)")
        resize = pre.get("resize", 0)
        if isinstance(resize, (list, tuple)):
            raise ImageError("preprocessing resize must be one int (the shorter side), not a size pair")
        resize = 0 if resize is None else _size_value(resize, "resize", 0)
        crop = pre.get("crop")
        if crop is not None:
            if not isinstance(crop, (list, tuple)):
                crop = [crop, crop]
            if len(crop) != 2:
                raise ImageError(f"preprocessing crop must be [H, W] with sizes between 1 and {MAX_PREPROCESS_SIZE}, "
                                 f"got {crop}")
            crop = (_size_value(crop[0], "crop", 1), _size_value(crop[1], "crop", 1))
        channels = 1 if color == "L" else 3
        mean = _finite_values(pre.get("mean", 0.0), "mean")
        std = _finite_values(pre.get("std", 1.0), "std")
        for label, values in (("mean", mean), ("std", std)):
            if len(values) not in (1, channels):
                raise ImageError(f"preprocessing {label} has {len(values)} values for {channels} channels")
        if any(s == 0 for s in std):
            raise ImageError("preprocessing std has a zero")
        (scale,) = _finite_values(pre.get("scale", 255.0), "scale")
        if scale == 0:
            raise ImageError("preprocessing scale is zero")
        return cls(color, resize, crop, scale, mean, std, interp, layout)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to uint8 pixels, ``(H, W)`` grey or ``(H, W, 3|4)`` RGB(A).

    16-bit images keep their high byte; palette images are expanded to RGB(A).
    EXIF orientation is ignored (so are the C++ and Java runners told to).

    Raises
    ------
    ImageError
        If the file is missing, not an image, or truncated.
    """
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as err:  # pillow comes with toolkit-cv
        raise ImageError("reading images needs Pillow: pip install pillow") from err
    import warnings

    path = Path(path)
    if path.is_dir():
        raise ImageError(f"image file {path} is a directory, not an image")
    if not path.is_file():
        raise ImageError(f"image file {path} not found")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that: refuse both the same way
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                _check_image_size(str(path), img.height, img.width)  # from the header, before decoding
                if img.format == "JPEG" and img.mode == "CMYK":
                    raise ImageError(f"image {path} is a CMYK/YCCK JPEG, which is not supported: convert it to RGB")
                img.load()
                mode = img.mode
                if mode == "P":
                    img = img.convert("RGBA" if "transparency" in img.info else "RGB")
                    mode = img.mode
                if mode in ("I;16", "I;16B", "I;16L", "I"):
                    array = np.asarray(img).astype(np.int64)
                    return (np.clip(array, 0, 65535) >> 8).astype(np.uint8)
                if mode == "1":
                    img = img.convert("L")
                elif mode == "LA":
                    img = img.convert("L")  # drops alpha, keeps the grey level as is
                elif mode not in ("L", "RGB", "RGBA"):
                    raise ImageError(f"image {path} has pixel mode {mode}, which is not supported")
                array = np.asarray(img, dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"image {path} is too large: {err}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        if isinstance(err, ImageError):
            raise
        raise ImageError(f"cannot read image {path}: {err}") from err
    if array.size == 0:
        raise ImageError(f"image {path} is empty")
    return array


def to_color(pixels: np.ndarray, color: str) -> np.ndarray:
    """uint8 ``(H, W)``/``(H, W, 3|4)`` pixels -> ``(H, W, C)`` in ``color`` (RGB or L)."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4):
        raise ImageError(f"pixels must be (H, W), (H, W, 3) or (H, W, 4), got {pixels.shape}")
    if pixels.shape[2] == 4:
        pixels = pixels[:, :, :3]  # alpha is dropped, not composited: as OpenCV and Java do here
    if color == "RGB":
        return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels
    if pixels.shape[2] == 1:
        return pixels
    rgb = pixels.astype(np.int64)
    grey = (rgb[:, :, 0] * 299 + rgb[:, :, 1] * 587 + rgb[:, :, 2] * 114 + 500) // 1000
    return grey.astype(np.uint8)[:, :, None]


def resized_size(height: int, width: int, shorter: int) -> tuple[int, int]:
    """``(H, W)`` after resizing the shorter side to ``shorter``, rounding half up."""
    if height <= width:
        return shorter, (2 * width * shorter + height) // (2 * height)
    return (2 * height * shorter + width) // (2 * width), shorter


def _axis_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices (i0, i1) and weight of i1 for each output position (half-pixel centres)."""
    ratio = in_size / out_size
    src = (np.arange(out_size, dtype=np.float64) + 0.5) * ratio - 0.5
    src = np.maximum(src, 0.0)
    i0 = np.floor(src).astype(np.int64)
    i0 = np.minimum(i0, in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    return i0, i1, src - i0


def resize_to(pixels: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear resize of uint8 ``(H, W, C)`` pixels to ``(out_h, out_w)``.

    Per output pixel, in float64: ``top = a + (b - a) * wx``, ``bottom = c + (d - c) * wx``,
    ``v = top + (bottom - top) * wy``, then ``floor(v + 0.5)`` to uint8 (the arithmetic the
    C++ and Java runners repeat).
    """
    height, width = pixels.shape[:2]
    if (out_h, out_w) == (height, width):
        return pixels
    y0, y1, wy = _axis_taps(height, out_h)
    x0, x1, wx = _axis_taps(width, out_w)
    src = pixels.astype(np.float64)
    wx = wx[None, :, None]
    top = src[y0][:, x0] + (src[y0][:, x1] - src[y0][:, x0]) * wx
    bottom = src[y1][:, x0] + (src[y1][:, x1] - src[y1][:, x0]) * wx
    value = top + (bottom - top) * wy[:, None, None]
    return np.clip(np.floor(value + 0.5), 0, 255).astype(np.uint8)


def resize_shorter(pixels: np.ndarray, shorter: int) -> np.ndarray:
    """Bilinear resize of uint8 ``(H, W, C)`` pixels so the shorter side is ``shorter`` (:func:`resize_to`)."""
    height, width = pixels.shape[:2]
    return resize_to(pixels, *resized_size(height, width, shorter))


def center_crop(pixels: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Center crop ``(H, W, C)`` pixels to ``size = (h, w)``: ``top = (H - h) // 2``."""
    height, width = pixels.shape[:2]
    ch, cw = int(size[0]), int(size[1])
    if ch > height or cw > width:
        raise ImageError(f"image of {height}x{width} is smaller than the crop {ch}x{cw}")
    top, left = (height - ch) // 2, (width - cw) // 2
    return pixels[top : top + ch, left : left + cw]


def normalize(pixels: np.ndarray, scale: float, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """uint8 ``(H, W, C)`` -> float32 ``(C, H, W)``: ``(p / scale - mean) / std`` in float32."""
    channels = pixels.shape[2]
    x = pixels.astype(np.float32).transpose(2, 0, 1)
    x = x / np.float32(scale)
    m = np.broadcast_to(np.asarray(mean, dtype=np.float32), (channels,))[:, None, None]
    s = np.broadcast_to(np.asarray(std, dtype=np.float32), (channels,))[:, None, None]
    return np.ascontiguousarray((x - m) / s, dtype=np.float32)


def preprocess_image(
    image: str | os.PathLike | np.ndarray,
    pre: ImagePreprocessing | Mapping[str, Any],
    input_shape: Sequence[int] | None = None,
) -> np.ndarray:
    """Decode (if a path) and preprocess one image to a float32 ``(C, H, W)`` array.

    Parameters
    ----------
    image : path or ndarray
        Image file, or uint8 pixels ``(H, W)`` / ``(H, W, 3|4)``.
    pre : ImagePreprocessing or mapping
        The pipeline, or the export metadata to read it from.
    input_shape : sequence of int, optional
        ``[C, H, W]`` the graph takes; checked against the result.

    Raises
    ------
    ImageError
        Unreadable image, image smaller than the crop, or a result whose shape
        is not ``input_shape``.
    """
    if not isinstance(pre, ImagePreprocessing):
        pre = ImagePreprocessing.from_metadata(pre)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ImageError(f"pixels must be uint8, got {image.dtype}")
        pixels, where = image, "pixels"
    else:
        pixels, where = read_image(image), str(image)
    _check_image_size(where, pixels.shape[0], pixels.shape[1])
    pixels = to_color(pixels, pre.color)
    if pre.resize:
        out_h, out_w = resized_size(pixels.shape[0], pixels.shape[1], pre.resize)
        _check_image_size(where, out_h, out_w, f" after resizing the shorter side to {pre.resize}")
        pixels = resize_shorter(pixels, pre.resize)
    if pre.crop is not None:
        try:
            pixels = center_crop(pixels, pre.crop)
        except ImageError as err:
            raise ImageError(f"{where}: {err}") from None
    out = normalize(pixels, pre.scale, pre.mean, pre.std)
    if input_shape is not None:
        want = [int(v) if isinstance(v, (int, np.integer)) else None for v in input_shape]
        bad = len(want) != 3 or any(w is not None and w != g for w, g in zip(want, out.shape))
        if bad:
            raise ImageError(
                f"{where}: preprocessing gives a {list(out.shape)} tensor but the graph takes {list(input_shape)} "
                "(check 'resize'/'crop' in the metadata)"
            )
    return out
