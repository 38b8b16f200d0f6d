"""GluonCV ``.params`` -> zoo model.

The zoo's vision families mirror GluonCV's module structure, so names map
one to one once MXNet's ``gamma``/``beta`` become ``weight``/``bias``. The
few places where they differ on purpose are fixed here:

* GluonCV layers without a bias (MobileNetV2's 1x1-convolution classifier,
  MobileNetV3's head convolution) load as layers whose bias is zero.
* ``BatchNorm(scale=False, center=False)`` (input norm of ResNet v2, CIFAR
  ResNet v2 and Wide ResNet) stores a ``gamma`` that MXNet ignores
  (``fix_gamma``) and a ``beta`` that stays 0; our norm has no affine part,
  so both are dropped (a nonzero ``beta`` is an error).
* MobileNetV3: GluonCV's head convolution ``features.{L+7}`` is our
  ``head.1`` and ``output.0`` (1x1 convolution) our ``output`` (``Linear``).
"""
from __future__ import annotations

import os
import re
from typing import Any

import torch
from torch import nn

from ...zoo import WeightsError, get_entry, get_model
from ._common import assign_state, mxnet_norm_name, to_tensor
from ...zoo.mxnet_params import read_params

__all__ = ["from_gluoncv", "gluoncv_state"]


def _family(name: str) -> str:
    return str(get_entry(name).metadata.get("family", ""))


def _infer_kwargs(name: str, state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Builder arguments that the file fixes: classes, input channels, head width."""
    kwargs: dict[str, Any] = {}
    family = _family(name)
    out = state.get("output.0.weight" if family in ("mobilenetv2", "mobilenetv3") else "output.weight")
    if out is None:
        out = state.get("fc.weight")
    if out is not None:
        kwargs["classes"] = int(out.shape[0])
    for value in state.values():  # the first convolution fixes the input channels
        if value.dim() == 4:
            kwargs["in_channels"] = int(value.shape[1])
            break
    if family == "mobilenetv3" and out is not None:
        kwargs["last_channels"] = int(out.shape[1])
    return kwargs


def gluoncv_state(model: nn.Module, name: str, arrays: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Rename GluonCV parameters to ``model``'s names (see the module docstring)."""
    state = {mxnet_norm_name(k): to_tensor(v).float() if to_tensor(v).is_floating_point() else to_tensor(v)
             for k, v in arrays.items()}
    own = model.state_dict()
    family = _family(name)
    if family == "mobilenetv3":
        head = [k for k in state if re.fullmatch(r"features\.\d+\.weight", k) and state[k].dim() == 4]
        # the head convolution is the last plain conv of ``features``
        last = max(head, key=lambda k: int(k.split(".")[1]))
        state["head.1.weight"] = state.pop(last)
    if family in ("mobilenetv2", "mobilenetv3"):
        for suffix in ("weight", "bias"):
            if f"output.0.{suffix}" in state:
                state[f"output.{suffix}"] = state.pop(f"output.0.{suffix}")
    modules = dict(model.named_modules())
    for key in list(state):
        module_name, _, kind = key.rpartition(".")
        module = modules.get(module_name)
        if key not in own and kind in ("weight", "bias") and isinstance(module, nn.modules.batchnorm._NormBase):
            if kind == "bias" and bool(state[key].abs().max() > 0):
                raise WeightsError(f"{key}: GluonCV norm without 'center' has a nonzero beta; cannot drop it")
            del state[key]  # scale=False / center=False norm: MXNet ignores gamma, beta is 0
    for key, value in own.items():
        module_name, _, kind = key.rpartition(".")
        weight = state.get(f"{module_name}.weight")
        if (kind == "bias" and key not in state and weight is not None
                and isinstance(modules.get(module_name), (nn.Conv2d, nn.Linear))):
            state[key] = torch.zeros_like(value)  # GluonCV layer without bias
    return state


def from_gluoncv(params_path: str | os.PathLike, name: str, **kwargs: Any) -> nn.Module:
    """Build zoo model ``name`` with the weights of a GluonCV ``.params`` file.

    Parameters
    ----------
    params_path : str or path
        File written by GluonCV's ``net.save_parameters`` (or downloaded from
        its model store) for the GluonCV model of the same name.
    name : str
        Zoo name, which is GluonCV's (``resnet50_v1d``, ``mobilenet0.25``,
        ``cifar_resnet20_v1`` ...).
    **kwargs
        Builder arguments; by default ``classes``, ``in_channels`` (and
        MobileNetV3's ``last_channels``) are read from the file. Detectors
        (``ssd_512_*``, ``yolo3_*``; see ``_gluoncv_detection``) take class
        names through ``classes=`` unless the file has the name's default
        number of classes, and ``backbone=`` / ``filters=`` for reduced variants.

    Returns
    -------
    torch.nn.Module
        The zoo model (in training mode, as ``get_model`` returns it); call
        ``.eval()`` before inference.

    Raises
    ------
    WeightsError
        If the file is not a readable ``.params`` file or does not fit the model.
    """
    from ...zoo.mxnet_params import ParamsFormatError

    try:
        arrays = read_params(params_path)
    except ParamsFormatError as err:
        raise WeightsError(str(err)) from err
    if any(k.startswith(("arg:", "aux:")) for k in arrays):
        raise WeightsError(
            f"{params_path} is a symbol checkpoint (names start with arg:/aux:); from_gluoncv reads files "
            "written by net.save_parameters(), whose names follow the network's structure"
        )
    if get_entry(name).task == "detection":
        from ._gluoncv_detection import from_gluoncv_detection
        return from_gluoncv_detection(arrays, str(name).lower(), f"GluonCV file {os.fspath(params_path)}", **kwargs)
    if get_entry(name).task == "segmentation":
        from ._gluoncv_segmentation import from_gluoncv_segmentation
        return from_gluoncv_segmentation(arrays, str(name).lower(), f"GluonCV file {os.fspath(params_path)}", **kwargs)
    raw = {mxnet_norm_name(k): to_tensor(v) for k, v in arrays.items()}
    model = get_model(name, **{**_infer_kwargs(name, raw), **kwargs})
    state = gluoncv_state(model, name, arrays)
    return assign_state(model, state, f"GluonCV file {os.fspath(params_path)}")
