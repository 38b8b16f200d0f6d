"""Multi-scale features from any classification-zoo backbone (one ``backbone=`` argument).

A classifier is cut into its ordered stages (its own modules, no copy), each
stage's output stride and channels are measured once on a dummy image, and a
:class:`BackboneFeatures` returns the last stage output at each requested
stride. torchvision's ``create_feature_extractor`` is not used because it
FX-traces the model, and the zoo classifiers' input checks (plain Python on
``x.dim()``/``x.shape``) do not trace symbolically.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["BackboneFeatures", "build_backbone", "classifier_stages"]

_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten, nn.Linear, nn.Dropout)


def build_backbone(backbone: str | nn.Module, pretrained_base: bool | str = False, **kwargs) -> nn.Module:
    """A zoo classifier from its name (``pretrained_base`` as ``get_model``'s ``pretrained``), or the module given."""
    if isinstance(backbone, nn.Module):
        return backbone
    if not isinstance(backbone, str):
        raise TypeError(f"backbone must be a zoo model name or a module, not {type(backbone).__name__}")
    from ....zoo import get_entry, get_model

    entry = get_entry(backbone)
    if entry.task not in ("classification", None):
        raise ValueError(f"backbone {backbone!r} is a {entry.task} model, not a classifier")
    return get_model(backbone, pretrained=pretrained_base, **kwargs)


def classifier_stages(model: nn.Module) -> list[nn.Module]:
    """The modules of ``model`` that run in order from the image to the last feature map.

    Supported: classifiers whose ``features`` Sequential holds the body (ResNet v1/v2,
    MobileNet v1/v2/v3, VGG, Darknet) and torchvision-style ResNets (``conv1 ... layer4``).
    """
    if all(hasattr(model, n) for n in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer4")):
        stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
        return [stem, model.layer1, model.layer2, model.layer3, model.layer4]
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential):
        stages = []
        for m in features:
            if isinstance(m, _POOLS):
                break
            stages.append(m)
        return stages
    raise ValueError(
        f"cannot take features from a {type(model).__name__}: a detection backbone needs a `features` "
        "Sequential or ResNet-style conv1/bn1/relu/maxpool/layer1..layer4"
    )


@torch.no_grad()
def _probe(stages: Sequence[nn.Module], in_channels: int, size: int = 256) -> list[tuple[int, int]]:
    """(stride, channels) after each stage, measured on one dummy image."""
    was = [m.training for m in stages]
    for m in stages:
        m.eval()
    x = torch.zeros(1, in_channels, size, size)
    out = []
    for m in stages:
        x = m(x)
        out.append((round(size / x.shape[-1]), int(x.shape[1])))
    for m, t in zip(stages, was):
        m.train(t)
    return out


class BackboneFeatures(nn.Module):
    """The last output at each of ``strides`` (and the input channels of each).

    Parameters
    ----------
    model : nn.Module
        A zoo classifier (see :func:`classifier_stages`).
    strides : sequence of int
        Output strides wanted, increasing (e.g. ``(8, 16, 32)``).
    in_channels : int
        Image channels.
    cuts : sequence of int, optional
        Instead of ``strides``: indices into :func:`classifier_stages` whose outputs are returned.

    Attributes
    ----------
    channels : list of int
        Channels of each returned feature map.
    """

    def __init__(
        self, model: nn.Module, strides: Sequence[int] | None = None, in_channels: int = 3,
        cuts: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        stages = classifier_stages(model)
        info = _probe(stages, in_channels)
        if (strides is None) == (cuts is None):
            raise ValueError("give either strides or cuts")
        if cuts is not None:
            cuts = [c % len(stages) for c in cuts]
            strides = [info[c][0] for c in cuts]
        else:
            cuts = []
        for s in strides if not cuts else []:
            idx = [i for i, (st, _) in enumerate(info) if st == s]
            if not idx:
                have = sorted({st for st, _ in info})
                raise ValueError(f"{type(model).__name__} has no feature map at stride {s} (strides: {have})")
            cuts.append(idx[-1])
        if cuts != sorted(cuts) or len(set(cuts)) != len(cuts):
            raise ValueError(f"strides must increase, got {list(strides)}")
        self.channels = [info[i][1] for i in cuts]
        self.strides = list(strides)
        segments, start = [], 0
        for c in cuts:
            segments.append(nn.Sequential(*stages[start:c + 1]))
            start = c + 1
        self.stages = nn.ModuleList(segments)
        #: the classifier stages after the last cut (e.g. ResNet's layer4 for a C4 R-CNN head)
        self.rest = list(stages[start:])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats
