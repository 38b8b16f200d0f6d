"""torchvision segmentation checkpoint -> zoo segmentation model.

Supported: torchvision's ``fcn_resnet50``/``fcn_resnet101``,
``deeplabv3_resnet50``/``deeplabv3_resnet101``,
``deeplabv3_mobilenet_v3_large`` and ``lraspp_mobilenet_v3_large``.

Choices:

* torchvision's ResNet backbone is ResNet v1b (7x7 stem), while GluonCV's
  ``fcn_resnet50_*`` / ``deeplab_resnet*`` names default to the deep-stem v1s:
  the converted model is the zoo's model of that name built with
  ``backbone="resnet<depth>_v1b"`` (dilated), which holds torchvision's tensors;
* torchvision resizes with ``align_corners=False`` (GluonCV: True): the
  converted model is built with ``align_corners=False``;
* torchvision's DeepLabV3 head has no dropout after its 3x3 convolution,
  GluonCV's has one (0.1): no tensors, no effect in eval mode;
* the MobileNetV3 backbone's norms keep torchvision's eps 0.001, the heads' PyTorch's default.

Tensors are matched in order (torchvision's ``state_dict()`` order, recovered
from its model built on the meta device, against ours), with a strict check of
each pair's kind and shape, then loaded with :func:`._common.assign_state`.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...zoo import WeightsError, get_model
from ._common import assign_state

__all__ = ["TORCHVISION_SEGMENTATION_NAMES", "from_torchvision_segmentation"]

#: zoo (or torchvision) name -> (torchvision builder, zoo builder, ResNet backbone or None)
TORCHVISION_SEGMENTATION_NAMES: dict[str, tuple[str, str, str | None]] = {}
for _depth in (50, 101):
    for _suffix in ("voc", "coco"):
        TORCHVISION_SEGMENTATION_NAMES[f"fcn_resnet{_depth}_{_suffix}"] = (
            f"fcn_resnet{_depth}", f"fcn_resnet{_depth}_{_suffix}", f"resnet{_depth}_v1b")
        TORCHVISION_SEGMENTATION_NAMES[f"deeplab_resnet{_depth}_{_suffix}"] = (
            f"deeplabv3_resnet{_depth}", f"deeplab_resnet{_depth}_{_suffix}", f"resnet{_depth}_v1b")
    # torchvision's own names: its models were trained on COCO with VOC's 21 classes (GluonCV's *_coco).
    TORCHVISION_SEGMENTATION_NAMES[f"fcn_resnet{_depth}"] = (
        f"fcn_resnet{_depth}", f"fcn_resnet{_depth}_coco", f"resnet{_depth}_v1b")
    TORCHVISION_SEGMENTATION_NAMES[f"deeplabv3_resnet{_depth}"] = (
        f"deeplabv3_resnet{_depth}", f"deeplab_resnet{_depth}_coco", f"resnet{_depth}_v1b")
for _name in ("deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"):
    TORCHVISION_SEGMENTATION_NAMES[_name] = (_name, _name, None)


def _skip(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def _reference_order(arch: str, classes: int, aux: bool) -> list[str]:
    import torchvision.models.segmentation as tvseg

    kwargs: dict[str, Any] = {"weights": None, "weights_backbone": None, "num_classes": classes}
    if not arch.startswith("lraspp"):
        kwargs["aux_loss"] = aux
    with torch.device("meta"):
        reference = getattr(tvseg, arch)(**kwargs)
    return [k for k in reference.state_dict() if not _skip(k)]


def from_torchvision_segmentation(state: dict[str, torch.Tensor], name: str, **kwargs: Any) -> nn.Module:
    """Build the zoo segmentation model for ``name`` with a torchvision segmentation checkpoint's weights.

    Parameters
    ----------
    state : dict
        The checkpoint's tensors (already read by :func:`from_torchvision`).
    name : str
        A key of :data:`TORCHVISION_SEGMENTATION_NAMES`.
    **kwargs
        Builder arguments; ``classes`` and ``aux`` are read from the checkpoint by default.

    Returns
    -------
    torch.nn.Module
        The zoo model (training mode); its eval-mode logits equal torchvision's ``["out"]``.
    """
    arch, zoo_name, backbone = TORCHVISION_SEGMENTATION_NAMES[name]
    given = {k: v for k, v in state.items() if not _skip(k)}
    last = "classifier.high_classifier.weight" if arch.startswith("lraspp") else "classifier.4.weight"
    if last not in given:
        raise WeightsError(f"not a torchvision {arch} checkpoint: it has no {last}")
    classes = int(given[last].shape[0])
    aux = any(k.startswith("aux_classifier.") for k in given)
    order = _reference_order(arch, classes, aux)
    missing = [k for k in order if k not in given]
    unexpected = [k for k in given if k not in set(order)]
    if missing or unexpected:
        raise WeightsError(
            f"not a torchvision {arch} checkpoint: missing {missing[:5]}{' ...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}"
        )
    inferred: dict[str, Any] = {"classes": classes, "align_corners": False}
    if backbone is not None:
        inferred.update(backbone=backbone, aux=aux)
    elif arch.startswith("deeplabv3"):
        inferred["aux"] = aux
    model = get_model(zoo_name, **{**inferred, **kwargs})
    own = [(k, v) for k, v in model.state_dict().items() if not _skip(k)]
    source = f"torchvision {arch} checkpoint"
    if len(own) != len(order):
        raise WeightsError(f"{source} has {len(order)} tensors, {type(model).__name__} ({zoo_name}) has "
                           f"{len(own)}: not the same architecture")
    mapped: dict[str, torch.Tensor] = {}
    for (ok, ov), tk in zip(own, order):
        tv = given[tk]
        if ok.rpartition(".")[2] != tk.rpartition(".")[2] or tuple(ov.shape) != tuple(tv.shape):
            raise WeightsError(f"{source} does not fit {zoo_name}: {tk} {tuple(tv.shape)} falls on {ok} "
                               f"{tuple(ov.shape)}")
        mapped[ok] = tv
    return assign_state(model, mapped, source)
