"""Layers and helpers shared by the vision model families.

Every classifier derives from :class:`ImageClassifier`, which fixes the graph
input/output names and fills the metadata contract shared with the deployment
code (task, input shape, class names, preprocessing).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..nn import HybridBlock

__all__ = [
    "CIFAR10_CLASSES",
    "ImageClassifier",
    "NormLayer",
    "SqueezeExcite",
    "check_input",
    "cifar_preprocessing",
    "conv_bn_act",
    "imagenet_preprocessing",
    "plain_norm",
]

#: A normalisation factory: called with the number of channels, returns a module
#: (``nn.BatchNorm2d``, ``functools.partial(nn.GroupNorm, 32)`` after swapping
#: the argument order, ``nn.SyncBatchNorm`` ...).
NormLayer = Callable[[int], nn.Module]

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
# The statistics GluonCV's CIFAR-10 training script normalised with.
CIFAR_MEAN = [0.4914, 0.4822, 0.4465]
CIFAR_STD = [0.2023, 0.1994, 0.2010]

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _stats(in_channels: int, mean: Sequence[float], std: Sequence[float]) -> tuple[list[float], list[float]]:
    """Per-channel statistics for ``in_channels``: the dataset's for RGB, identity otherwise.

    A model built with another number of channels (1 for grayscale) has no
    known statistics; published weights override them through their metadata.
    """
    if in_channels == len(mean):
        return list(mean), list(std)
    return [0.0] * in_channels, [1.0] * in_channels


def _color(in_channels: int) -> str:
    return "L" if in_channels == 1 else "RGB"


def imagenet_preprocessing(in_channels: int = 3, size: int = 224, resize: int = 256) -> dict[str, Any]:
    """The ImageNet evaluation pipeline: shorter side to ``resize``, center crop ``size``."""
    mean, std = _stats(in_channels, IMAGENET_MEAN, IMAGENET_STD)
    return {
        "type": "image",
        "layout": "NCHW",
        "color": _color(in_channels),
        "resize": int(resize),
        "crop": [int(size), int(size)],
        "interpolation": "bilinear",
        "scale": 255.0,
        "mean": mean,
        "std": std,
    }


def cifar_preprocessing(in_channels: int = 3, size: int = 32) -> dict[str, Any]:
    """The CIFAR evaluation pipeline: no resize, (center crop of) ``size`` x ``size``."""
    mean, std = _stats(in_channels, CIFAR_MEAN, CIFAR_STD)
    return {
        "type": "image",
        "layout": "NCHW",
        "color": _color(in_channels),
        "resize": 0,
        "crop": [int(size), int(size)],
        "interpolation": "bilinear",
        "scale": 255.0,
        "mean": mean,
        "std": std,
    }


def check_input(x: torch.Tensor, in_channels: int, name: str) -> None:
    """Raise a clear error for an input that is not ``(N, in_channels, H, W)``.

    Only plain Python checks on static facts (rank, channels) so that the
    check disappears from captured graphs instead of breaking them.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} takes a torch.Tensor, not {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name} takes a 4-d NCHW batch, got shape {tuple(x.shape)}")
    if x.shape[1] != in_channels:
        raise ValueError(
            f"{name} was built for {in_channels} input channel(s), got an input of shape {tuple(x.shape)} "
            "(build it with in_channels=... to change that)"
        )


class ImageClassifier(HybridBlock):
    """Base of every zoo classifier: ``data`` (N, C, H, W) in, raw ``logits`` (N, classes) out.

    Parameters
    ----------
    classes : int
        Number of output classes.
    in_channels : int
        Number of input channels (1 for grayscale images such as Fashion-MNIST).
    preprocessing : dict
        What the model expects of an image (see :func:`imagenet_preprocessing`).
    input_shape : sequence of int
        ``[C, H, W]`` used by ``export()`` / ``example_inputs()``.
    class_names : list of str, optional
        Names of the classes when known.
    """

    input_names = ("data",)
    output_names = ("logits",)

    def __init__(
        self,
        classes: int,
        in_channels: int,
        preprocessing: dict[str, Any],
        input_shape: Sequence[int],
        class_names: list[str] | None = None,
    ) -> None:
        super().__init__()
        if int(classes) < 1:
            raise ValueError(f"classes must be a positive number of classes, got {classes}")
        if int(in_channels) < 1:
            raise ValueError(f"in_channels must be positive, got {in_channels}")
        if class_names is not None and len(class_names) != classes:
            class_names = None
        self.classes = int(classes)
        self.in_channels = int(in_channels)
        self.metadata.update(
            {
                "task": "classification",
                "input_shape": [int(s) for s in input_shape],
                "classes": class_names,
                "num_classes": self.classes,
                "preprocessing": preprocessing,
            }
        )

    def _check(self, x: torch.Tensor) -> None:
        check_input(x, self.in_channels, type(self).__name__)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation gate: ``x * gate(fc2(act(fc1(avgpool(x)))))``.

    Written here rather than taken from ``torchvision.ops.SqueezeExcitation``
    because SE-ResNet's fully connected layers have no bias, which that class
    cannot express; the 1x1 convolutions keep weights in the layout of both
    torchvision's and GluonCV's MobileNetV3.

    Parameters
    ----------
    channels : int
        Channels of the gated tensor.
    squeeze : int
        Channels of the bottleneck.
    bias : bool
        Whether the two 1x1 convolutions have a bias.
    act, gate : callable
        Factories of the inner activation and of the gate.
    """

    def __init__(
        self,
        channels: int,
        squeeze: int,
        bias: bool = True,
        act: Callable[[], nn.Module] = nn.ReLU,
        gate: Callable[[], nn.Module] = nn.Sigmoid,
    ) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv1 = nn.Conv2d(channels, squeeze, 1, bias=bias)
        self.act1 = act()
        self.conv2 = nn.Conv2d(squeeze, channels, 1, bias=bias)
        self.act2 = gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.act2(self.conv2(self.act1(self.conv1(self.pool(x)))))
        return x * w


def conv_bn_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 1,
    stride: int = 1,
    padding: int | None = None,
    groups: int = 1,
    norm_layer: NormLayer = nn.BatchNorm2d,
    act: Callable[[], nn.Module] | None = nn.ReLU,
) -> list[nn.Module]:
    """``[Conv2d (no bias), norm, act]`` as a list, to be spread into a Sequential.

    A list rather than a Sequential keeps GluonCV's flat layer numbering
    (``features.0`` conv, ``features.1`` norm ...), which the weight converter relies on.
    """
    if padding is None:
        padding = kernel_size // 2
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False),
        norm_layer(out_channels),
    ]
    if act is not None:
        layers.append(act())
    return layers


def plain_norm(norm_layer: NormLayer, channels: int) -> nn.Module:
    """A normalisation without learned scale and shift (GluonCV's ``BatchNorm(scale=False, center=False)``).

    ``norm_layer`` is asked for ``affine=False``; a factory that does not take
    that argument, or cannot normalise ``channels`` (a GroupNorm with more
    groups than image channels), falls back to ``nn.BatchNorm2d(affine=False)``.
    """
    try:
        return norm_layer(channels, affine=False)  # type: ignore[call-arg]
    except (TypeError, ValueError):
        return nn.BatchNorm2d(channels, affine=False)


def zero_init_last_norm(norm: nn.Module) -> None:
    """Set a norm layer's scale to zero so its residual branch starts as identity (``last_gamma``)."""
    weight = getattr(norm, "weight", None)
    if isinstance(weight, torch.Tensor):
        nn.init.zeros_(weight)


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal convolutions (fan-out, ReLU gain), unit norms, small linear layers.

    Runs before ``last_gamma`` zeroes the last norm of each residual branch.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.SyncBatchNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
