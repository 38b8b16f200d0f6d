"""Transform presets for training and evaluating classifiers, on ``torchvision.transforms.v2``.

Every preset takes uint8 ``tv_tensors.Image`` (or PIL) samples, as the datasets of
:mod:`toolkit.cv.data` return them, and yields a normalised float32 tensor.
:func:`preprocessing_metadata` gives the matching ``metadata["preprocessing"]``
dict of the vision metadata contract, so an exported model describes exactly
what its evaluation preset did.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "DATASET_STATS", "Lighting",
    "imagenet_train", "imagenet_eval", "cifar_train", "cifar_eval", "mnist_train", "mnist_eval",
    "train_preset", "eval_preset", "preprocessing_metadata", "load_test",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Per-dataset channel mean/std (of pixels scaled to [0, 1]), colour mode and native size.
DATASET_STATS: dict[str, dict[str, Any]] = {
    "imagenet": {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "color": "RGB", "size": 224},
    "folder": {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "color": "RGB", "size": 224},
    "cifar10": {"mean": (0.4914, 0.4822, 0.4465), "std": (0.2023, 0.1994, 0.2010), "color": "RGB", "size": 32},
    "cifar100": {"mean": (0.5071, 0.4865, 0.4409), "std": (0.2673, 0.2564, 0.2762), "color": "RGB", "size": 32},
    "mnist": {"mean": (0.1307,), "std": (0.3081,), "color": "L", "size": 28},
    "fashion-mnist": {"mean": (0.2860,), "std": (0.3530,), "color": "L", "size": 28},
}

# Principal components of ImageNet RGB pixels (values in [0, 255]) from the
# AlexNet paper, as used by fb.resnet.torch and GluonCV's RandomLighting.
_EIGVAL = torch.tensor([55.46, 4.794, 1.148]) / 255.0
_EIGVEC = torch.tensor([[-0.5675, 0.7192, 0.4009],
                        [-0.5808, -0.0045, -0.8140],
                        [-0.5836, -0.6948, 0.4203]])


class Lighting(v2.Transform):
    """AlexNet-style PCA lighting noise: add ``eigvec @ (alpha * eigval)`` to every pixel.

    ``alpha ~ N(0, alphastd)`` per image and component. Written here because
    ``torchvision.transforms.v2`` has no lighting transform. Expects float RGB
    images in [0, 1] (place it after ``ToDtype(float32, scale=True)``); other
    inputs (labels, masks) pass through.

    Parameters
    ----------
    alphastd : float, default 0.1
        Standard deviation of the noise coefficients (GluonCV's default).
    """

    def __init__(self, alphastd: float = 0.1) -> None:
        super().__init__()
        if alphastd < 0:
            raise ValueError(f"alphastd must be >= 0, got {alphastd}")
        self.alphastd = float(alphastd)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        alpha = torch.randn(3) * self.alphastd
        return {"rgb": _EIGVEC @ (alpha * _EIGVAL)}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        is_other_tv_tensor = isinstance(inpt, tv_tensors.TVTensor) and not isinstance(inpt, tv_tensors.Image)
        if not isinstance(inpt, torch.Tensor) or is_other_tv_tensor:  # labels, boxes, masks pass through
            return inpt
        if not inpt.is_floating_point():
            raise TypeError("Lighting expects a float image in [0, 1]; put it after v2.ToDtype(torch.float32, scale=True)")
        if inpt.shape[-3] != 3:
            raise ValueError(f"Lighting needs 3 RGB channels, got an image of shape {tuple(inpt.shape)}")
        rgb = params["rgb"].to(inpt.dtype).view(3, 1, 1)
        return inpt + rgb


def _to_float() -> v2.Transform:
    return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])


def imagenet_train(crop: int = 224, jitter: float = 0.4, lighting: float = 0.1,
                   mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> v2.Compose:
    """ImageNet training: random resized crop, flip, colour jitter, PCA lighting, normalise.

    The GluonCV ``train_imagenet.py`` recipe (jitter 0.4, lighting 0.1).
    """
    ops: list[v2.Transform] = [v2.ToImage(), v2.RandomResizedCrop(crop, antialias=True), v2.RandomHorizontalFlip()]
    if jitter > 0:
        ops.append(v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter))
    ops.append(v2.ToDtype(torch.float32, scale=True))
    if lighting > 0:
        ops.append(Lighting(lighting))
    ops.append(v2.Normalize(list(mean), list(std)))
    return v2.Compose(ops)


def imagenet_eval(resize: int = 256, crop: int = 224, mean: Sequence[float] = IMAGENET_MEAN,
                  std: Sequence[float] = IMAGENET_STD) -> v2.Compose:
    """ImageNet evaluation: shorter side to ``resize`` (bilinear), center crop ``crop``, normalise.

    Resize has no antialiasing, as the deployment pre-processing of exported
    models (``toolkit.deploy.preprocess``) does.
    """
    ops: list[v2.Transform] = [v2.ToImage()]
    if resize:
        ops.append(v2.Resize(resize, interpolation=v2.InterpolationMode.BILINEAR, antialias=False))
    ops += [v2.CenterCrop(crop), v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    return v2.Compose(ops)


def cifar_train(size: int = 32, padding: int = 4, flip: bool = True, mean: Sequence[float] = DATASET_STATS["cifar10"]["mean"],
                std: Sequence[float] = DATASET_STATS["cifar10"]["std"]) -> v2.Compose:
    """CIFAR-style training: random crop of ``size`` after zero padding, horizontal flip, normalise."""
    ops: list[v2.Transform] = [v2.ToImage(), v2.RandomCrop(size, padding=padding) if padding else v2.Identity()]
    if flip:
        ops.append(v2.RandomHorizontalFlip())
    ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    return v2.Compose(ops)


def cifar_eval(mean: Sequence[float] = DATASET_STATS["cifar10"]["mean"],
               std: Sequence[float] = DATASET_STATS["cifar10"]["std"]) -> v2.Compose:
    """CIFAR-style evaluation: normalise only."""
    return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])


def mnist_train(dataset: str = "fashion-mnist", padding: int = 2) -> v2.Compose:
    """(Fashion-)MNIST training: random crop with ``padding``; horizontal flip for Fashion-MNIST only
    (clothes are mirror-symmetric, digits are not)."""
    s = DATASET_STATS[dataset]
    return cifar_train(28, padding, flip=dataset == "fashion-mnist", mean=s["mean"], std=s["std"])


def mnist_eval(dataset: str = "fashion-mnist") -> v2.Compose:
    """(Fashion-)MNIST evaluation: normalise only."""
    s = DATASET_STATS[dataset]
    return cifar_eval(s["mean"], s["std"])


def _stats(dataset: str) -> dict[str, Any]:
    if dataset not in DATASET_STATS:
        raise ValueError(f"no preset for dataset {dataset!r}; known: {', '.join(DATASET_STATS)}")
    return DATASET_STATS[dataset]


def train_preset(dataset: str, crop: int | None = None, **kwargs: Any) -> v2.Compose:
    """The training preset of ``dataset`` (``imagenet``, ``folder``, ``cifar10``, ``cifar100``,
    ``mnist``, ``fashion-mnist``)."""
    s = _stats(dataset)
    if dataset in ("imagenet", "folder"):
        return imagenet_train(crop or 224, mean=s["mean"], std=s["std"], **kwargs)
    if dataset in ("cifar10", "cifar100"):
        return cifar_train(crop or 32, mean=s["mean"], std=s["std"], **kwargs)
    return mnist_train(dataset, **kwargs)


def eval_preset(dataset: str, crop: int | None = None, resize: int | None = None) -> v2.Compose:
    """The evaluation preset of ``dataset`` (see :func:`train_preset`)."""
    s = _stats(dataset)
    if dataset in ("imagenet", "folder"):
        crop = crop or 224
        return imagenet_eval(resize if resize is not None else int(round(crop / 0.875)), crop, s["mean"], s["std"])
    return cifar_eval(s["mean"], s["std"])


def preprocessing_metadata(dataset: str, crop: int | None = None, resize: int | None = None) -> dict[str, Any]:
    """``metadata["preprocessing"]`` describing :func:`eval_preset` (vision metadata contract)."""
    s = _stats(dataset)
    size = crop or s["size"]
    if dataset in ("imagenet", "folder"):
        resize = resize if resize is not None else int(round(size / 0.875))
    else:
        resize = 0
    return {
        "type": "image", "layout": "NCHW", "color": s["color"], "resize": int(resize),
        "crop": [int(size), int(size)], "interpolation": "bilinear", "scale": 255.0,
        "mean": [float(m) for m in s["mean"]], "std": [float(v) for v in s["std"]],
    }


def load_test(image_paths: str | os.PathLike | Sequence[str | os.PathLike], short: int = 256, crop: int = 224,
              mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
              mode: str = "RGB") -> torch.Tensor:
    """Read image files into one normalised batch, ready for a classifier (GluonCV's ``load_test``).

    Parameters
    ----------
    image_paths : path or sequence of paths
        One file or several.
    short : int, default 256
        Resize the shorter side to this (0: no resize).
    crop : int, default 224
        Center crop size.
    mean, std : sequence of float
        Normalisation of pixels scaled to [0, 1].
    mode : {"RGB", "L"}
        Colour or grayscale.

    Returns
    -------
    torch.Tensor
        ``(N, C, crop, crop)`` float32.

    Raises
    ------
    toolkit.cv.data.ImageDecodeError
        If a file is missing or not a decodable image (the message names it).
    """
    from ..data.folder import read_image

    if isinstance(image_paths, (str, os.PathLike)):
        image_paths = [image_paths]
    if len(image_paths) == 0:
        raise ValueError("load_test needs at least one image path")
    tf = imagenet_eval(short, crop, mean, std)
    return torch.stack([tf(read_image(p, mode)) for p in image_paths])
