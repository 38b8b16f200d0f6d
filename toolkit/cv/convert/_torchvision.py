"""torchvision checkpoint -> zoo model.

Below the classifier, each supported zoo model holds the same tensors as its
torchvision counterpart in the same order (ResNet v1b *is* torchvision's
ResNet; ResNeXt, MobileNetV2 and MobileNetV3 differ only in module names), so
the body is matched position by position with a strict check of every pair:
same kind of tensor (``weight``, ``bias``, ``running_mean`` ...) and same
shape. The classifier layers are mapped by name. Builder arguments that
torchvision fixes differently from our defaults are set here: MobileNetV3's
norms use ``eps=0.001``.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ...zoo import WeightsError, get_model, register_source
from ._common import assign_state, to_tensor
from ._torchvision_detection import TORCHVISION_DETECTION_NAMES, from_torchvision_detection

__all__ = ["TORCHVISION_NAMES", "from_torchvision", "load_torchvision_weights", "torchvision_catalog"]

#: zoo name -> (torchvision builder name, {torchvision classifier key prefix: our prefix})
TORCHVISION_NAMES: dict[str, tuple[str, dict[str, str]]] = {
    "resnet18_v1b": ("resnet18", {"fc": "fc"}),
    "resnet34_v1b": ("resnet34", {"fc": "fc"}),
    "resnet50_v1b": ("resnet50", {"fc": "fc"}),
    "resnet101_v1b": ("resnet101", {"fc": "fc"}),
    "resnet152_v1b": ("resnet152", {"fc": "fc"}),
    "resnext50_32x4d": ("resnext50_32x4d", {"fc": "output"}),
    "resnext101_64x4d": ("resnext101_64x4d", {"fc": "output"}),
    "mobilenetv2_1.0": ("mobilenet_v2", {"classifier.1": "output"}),
    "mobilenetv3_large": ("mobilenet_v3_large", {"classifier.0": "head.1", "classifier.3": "output"}),
    "mobilenetv3_small": ("mobilenet_v3_small", {"classifier.0": "head.1", "classifier.3": "output"}),
}


def _load_state(source: Any) -> dict[str, torch.Tensor]:
    if isinstance(source, nn.Module):
        return dict(source.state_dict())
    if isinstance(source, Mapping):
        if "state_dict" in source and isinstance(source["state_dict"], Mapping):
            source = source["state_dict"]
        return {str(k): to_tensor(v) for k, v in source.items()}
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise WeightsError(f"torchvision checkpoint {path} not found")
        try:
            if path.suffix == ".safetensors":
                from safetensors.torch import load_file

                return _load_state(load_file(str(path)))
            # weights_only: tensors and containers only, no arbitrary pickled code
            return _load_state(torch.load(path, map_location="cpu", weights_only=True))
        except WeightsError:
            raise
        except Exception as err:  # torch/safetensors raise many types for a bad file
            raise WeightsError(f"cannot read torchvision checkpoint {path}: {err}") from err
    raise TypeError(f"expected a state dict, a module or a path, not {type(source).__name__}")


def _in_torchvision_order(state: dict[str, torch.Tensor], arch: str) -> dict[str, torch.Tensor]:
    """``state`` in the order of torchvision's own ``state_dict()`` for ``arch``.

    Files do not keep it (safetensors sorts its tensors), and the body is
    matched by position. The reference order comes from torchvision's model
    built on the meta device (no memory, no weights). ``num_batches_tracked``
    counters are left out: old checkpoints lack them and they do not affect outputs.
    """
    import torchvision

    with torch.device("meta"):
        reference = getattr(torchvision.models, arch)(weights=None)
    order = [k for k in reference.state_dict() if not k.endswith("num_batches_tracked")]
    given = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    missing = [k for k in order if k not in given]
    unexpected = [k for k in given if k not in set(order)]
    if missing or unexpected:
        raise WeightsError(
            f"not a torchvision {arch} checkpoint: missing {missing[:5]}{' ...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}"
        )
    return {k: given[k] for k in order}


def _kind(key: str) -> str:
    return key.rpartition(".")[2]


def _builder_kwargs(theirs: dict[str, torch.Tensor], arch: str, head_map: dict[str, str],
                    body: list[tuple[str, torch.Tensor]]) -> dict[str, Any]:
    """Builder arguments read from a torchvision checkpoint (classes, input channels, MobileNetV3's head)."""
    inferred: dict[str, Any] = {}
    last_prefix = next(p for p, ours in head_map.items() if ours in ("fc", "output"))
    if f"{last_prefix}.weight" in theirs:
        inferred["classes"] = int(theirs[f"{last_prefix}.weight"].shape[0])
    first_conv = next((v for _, v in body if v.dim() == 4), None)
    if first_conv is not None:
        inferred["in_channels"] = int(first_conv.shape[1])
    if arch.startswith("mobilenet_v3"):
        if "classifier.0.weight" in theirs:
            inferred["last_channels"] = int(theirs["classifier.0.weight"].shape[0])
        inferred["norm_layer"] = functools.partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
    return inferred


def from_torchvision(state_dict: Any, name: str, **kwargs: Any) -> nn.Module:
    """Build zoo model ``name`` with the weights of a torchvision classifier.

    Parameters
    ----------
    state_dict : mapping, torch.nn.Module or path
        The torchvision model's ``state_dict()`` (or the model, or a
        ``.pth``/``.safetensors`` file of it, read without unpickling code).
    name : str
        Zoo name: ``resnet18_v1b`` ... ``resnet152_v1b`` (torchvision's
        ``resnet18`` ... ``resnet152``), ``resnext50_32x4d``,
        ``resnext101_64x4d``, ``mobilenetv2_1.0``, ``mobilenetv3_large``,
        ``mobilenetv3_small``.
    **kwargs
        Builder arguments; ``classes`` and ``in_channels`` (and MobileNetV3's
        ``last_channels``) are read from the checkpoint by default.

    Returns
    -------
    torch.nn.Module
        The zoo model (training mode); its eval-mode logits equal torchvision's.

    Raises
    ------
    ValueError
        For a zoo name without a torchvision counterpart.
    WeightsError
        If the checkpoint does not fit the model.
    """
    key = str(name).lower()
    from ._torchvision_segmentation import TORCHVISION_SEGMENTATION_NAMES, from_torchvision_segmentation
    if key in TORCHVISION_SEGMENTATION_NAMES:
        return from_torchvision_segmentation(_load_state(state_dict), key, **kwargs)
    if key in TORCHVISION_DETECTION_NAMES:  # detectors: see _torchvision_detection.py
        return from_torchvision_detection(_load_state(state_dict), key, **kwargs)
    if key not in TORCHVISION_NAMES:
        raise ValueError(f"no torchvision counterpart known for {name!r}; supported: {', '.join(TORCHVISION_NAMES)}")
    arch, head_map = TORCHVISION_NAMES[key]
    theirs = _in_torchvision_order(_load_state(state_dict), arch)
    head = {k: v for k, v in theirs.items() if any(k.startswith(p + ".") for p in head_map)}
    body = [(k, v) for k, v in theirs.items() if k not in head]

    inferred = _builder_kwargs(theirs, arch, head_map, body)
    model = get_model(key, **{**inferred, **kwargs})

    ours_head = {ours for ours in head_map.values()}
    own = [(k, v) for k, v in model.state_dict().items()
           if not any(k.startswith(p + ".") for p in ours_head) and not k.endswith("num_batches_tracked")]
    source = f"torchvision {arch} checkpoint"
    if len(own) != len(body):
        raise WeightsError(
            f"{source} has {len(body)} tensors below the classifier, {type(model).__name__} "
            f"({key}) has {len(own)}: not the same architecture"
        )
    state: dict[str, torch.Tensor] = {}
    for (ok, ov), (tk, tv) in zip(own, body):
        if _kind(ok) != _kind(tk) or tuple(ov.shape) != tuple(tv.shape):
            raise WeightsError(
                f"{source} does not fit {key}: {tk} {tuple(tv.shape)} falls on {ok} {tuple(ov.shape)}"
            )
        state[ok] = tv
    for tk, tv in head.items():
        prefix = next(p for p in head_map if tk.startswith(p + "."))
        state[head_map[prefix] + tk[len(prefix):]] = tv
    return assign_state(model, state, source)


# ----------------------------------------------------------------------------- pretrained="torchvision"
def _torchvision_weights(arch: str, spec: str):
    import torchvision

    enum = torchvision.models.get_model_weights(arch)
    if spec in ("", "DEFAULT"):
        return enum.DEFAULT
    try:
        return enum[spec]
    except KeyError:
        raise WeightsError(f"torchvision publishes no weights {spec!r} for {arch}; "
                           f"choose from {', '.join(enum.__members__)}") from None


def torchvision_state_dict(weights: Any) -> dict[str, torch.Tensor]:
    """The state dict of torchvision ``weights`` through torchvision's own API and cache
    (``$TORCH_HOME/hub/checkpoints``; it downloads there when missing and checks the hash prefix)."""
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as err:  # urllib/OSError offline, or a corrupt cached file
        from torch.hub import get_dir

        raise WeightsError(f"cannot load torchvision weights {weights} (cache {get_dir()}/checkpoints, "
                           f"set by $TORCH_HOME): {err}") from err


def _check_outputs(model: nn.Module, state: dict[str, torch.Tensor], arch: str) -> None:
    """The converted model's eval logits equal torchvision's own model with the same state dict."""
    import torchvision

    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    was_training = model.training
    with torch.no_grad():
        got = model.eval()(x)
        reference = getattr(torchvision.models, arch)(weights=None, num_classes=got.shape[1])
        reference.load_state_dict(state)
        want = reference.eval()(x)
    model.train(was_training)
    err = (got - want).abs().max().item()
    if err > 1e-3 * max(1.0, want.abs().max().item()):
        raise WeightsError(f"converted torchvision {arch} weights disagree with torchvision by {err:.3g}")


def load_torchvision_weights(name: str, spec: str = "", **kwargs: Any) -> tuple[nn.Module, dict[str, Any]]:
    """Zoo model ``name`` with torchvision's published weights ``spec`` (default: torchvision's ``DEFAULT``).

    The checkpoint comes through torchvision's own weights API and cache
    (``$TORCH_HOME/hub/checkpoints``; torchvision downloads it there when
    missing and checks its hash prefix). It is converted with
    :func:`from_torchvision` and checked output for output against
    torchvision's model. This is the loader behind
    ``get_model(name, pretrained="torchvision")`` and ``"torchvision:IMAGENET1K_V2"``.

    Returns
    -------
    (torch.nn.Module, dict)
        The model in training mode (as ``get_model`` returns), and what the
        zoo records as ``metadata["weights"]``: torchvision's weights name,
        URL and published metrics (``weights.meta["_metrics"]``, numbers of
        torchvision, not measured here).
    """
    key = name.lower()
    if key not in TORCHVISION_NAMES:
        raise WeightsError(f"torchvision publishes no weights for {name!r}")
    arch, _ = TORCHVISION_NAMES[key]
    weights = _torchvision_weights(arch, spec)
    state = torchvision_state_dict(weights)
    model = from_torchvision(state, key, **kwargs)
    _check_outputs(model, dict(state), arch)
    model.train()
    preset = weights.transforms()
    crop, resize = int(preset.crop_size[0]), int(preset.resize_size[0])
    categories = list(weights.meta.get("categories") or [])
    metadata = {
        "dataset": "imagenet", "input_shape": [3, crop, crop], "classes": categories, "num_classes": len(categories),
        "preprocessing": {"type": "image", "layout": "NCHW", "color": "RGB", "resize": resize, "crop": [crop, crop],
                          "interpolation": preset.interpolation.value, "scale": 255.0,
                          "mean": [float(m) for m in preset.mean], "std": [float(v) for v in preset.std]},
    }
    model.metadata.update(metadata)
    # What a model with another classifier needs to hold the same body (fine-tuning).
    theirs = _in_torchvision_order(_load_state(dict(state)), arch)
    head_map = TORCHVISION_NAMES[key][1]
    body = [(k, v) for k, v in theirs.items() if not any(k.startswith(p + ".") for p in head_map)]
    inferred = {**_builder_kwargs(theirs, arch, head_map, body), **kwargs}
    inferred.pop("classes", None)
    info = {"name": str(weights), "url": weights.url, "metrics": weights.meta.get("_metrics", {}),
            "metadata": metadata, "kwargs": inferred}
    return model, info


def catalog_rows(arch: str, metrics: Callable[[dict[str, Any]], dict[str, Any]] = dict) -> list[dict[str, Any]]:
    """torchvision's published weights of builder ``arch``, one row per weights and dataset, with the
    numbers torchvision publishes (``weights.meta["_metrics"]``, in the torchvision package: no
    download) mapped through ``metrics``."""
    import torchvision

    enum = torchvision.models.get_model_weights(arch)
    rows = []
    for member in enum:
        for dataset, published in member.meta.get("_metrics", {}).items():
            rows.append({"pretrained": f"torchvision:{member.name}", "default": member is enum.DEFAULT,
                         "dataset": dataset, "metrics": metrics(published),
                         "num_params": member.meta.get("num_params"), "source": str(member)})
    return rows


def torchvision_catalog(name: str) -> list[dict[str, Any]]:
    """torchvision's published weights for zoo classifier ``name``, its top-1/top-5 as published."""
    arch, _ = TORCHVISION_NAMES[name.lower()]
    return catalog_rows(arch, lambda m: {"top1": m.get("acc@1"), "top5": m.get("acc@5")})


for _name in TORCHVISION_NAMES:
    register_source("torchvision", _name, load_torchvision_weights, catalog=torchvision_catalog)
