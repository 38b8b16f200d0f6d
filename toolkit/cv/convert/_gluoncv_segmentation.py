"""GluonCV ``.params`` of FCN / PSPNet / DeepLabV3 -> zoo segmentation model.

The backbone (``conv1`` ... ``layer4``) and the auxiliary head keep GluonCV's
names; the heads are renamed (GluonCV's containers -> ours):

* ``head.block.N`` / ``auxlayer.block.N`` (FCN head) -> ``head.N`` / ``auxlayer.N``;
* PSPNet: ``head.psp.convK.N`` -> ``head.0.stages.{K-1}.{N+1}`` (after the
  pooling), ``head.block.N`` -> ``head.{N+1}``;
* DeepLabV3: ``head.aspp.concurent.K.N`` -> ``head.0.convs.K.N`` (branch 4:
  ``concurent.4.gap.N`` -> ``convs.4.N``), ``head.aspp.project.N`` ->
  ``head.0.project.N``, ``head.block.N`` -> ``head.{N+1}``.

GluonCV resizes logits to the ``crop_size`` it was built with, ours to the
input's size: the same for inputs of that size (which GluonCV requires),
whatever ``crop_size`` the file's model had. Corner-aligned resizing (GluonCV's)
is our default.
"""
from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from ...zoo import WeightsError, get_model
from ._common import assign_state, mxnet_norm_name, rename_by_rules, to_tensor

__all__ = ["gluoncv_segmentation_state", "from_gluoncv_segmentation"]

_RULES = {
    "fcn": [(r"^head\.block\.(\d+)\.", lambda m: f"head.{m.group(1)}.")],
    "psp": [(r"^head\.psp\.conv(\d)\.(\d+)\.", lambda m: f"head.0.stages.{int(m.group(1)) - 1}.{int(m.group(2)) + 1}."),
            (r"^head\.block\.(\d+)\.", lambda m: f"head.{int(m.group(1)) + 1}.")],
    "deeplab": [(r"^head\.aspp\.concurent\.4\.gap\.(\d+)\.", lambda m: f"head.0.convs.4.{m.group(1)}."),
                (r"^head\.aspp\.concurent\.(\d)\.(\d+)\.", lambda m: f"head.0.convs.{m.group(1)}.{m.group(2)}."),
                (r"^head\.aspp\.project\.(\d+)\.", lambda m: f"head.0.project.{m.group(1)}."),
                (r"^head\.block\.(\d+)\.", lambda m: f"head.{int(m.group(1)) + 1}.")],
}


def _family(name: str) -> str:
    family = name.split("_", 1)[0]
    if family not in _RULES:
        raise ValueError(f"from_gluoncv reads FCN, PSPNet and DeepLabV3 (fcn_*, psp_*, deeplab_*), not {name!r}")
    return family


def gluoncv_segmentation_state(name: str, arrays: dict[str, Any]) -> dict[str, torch.Tensor]:
    """GluonCV parameter names -> ours (see the module docstring); ``gamma``/``beta`` -> ``weight``/``bias``."""
    rules = _RULES[_family(name)] + [(r"^auxlayer\.block\.(\d+)\.", lambda m: f"auxlayer.{m.group(1)}.")]
    state: dict[str, torch.Tensor] = {}
    for key, value in arrays.items():
        new = mxnet_norm_name(key)
        state[rename_by_rules(new, rules) or new] = to_tensor(value).float()
    return state


def from_gluoncv_segmentation(arrays: dict[str, Any], name: str, source: str, **kwargs: Any) -> nn.Module:
    """Build zoo model ``name`` (GluonCV's name) with GluonCV's parameters ``arrays``.

    ``classes`` and ``aux`` are read from the file unless given.
    """
    state = gluoncv_segmentation_state(name, arrays)
    head = max((k for k in state if re.fullmatch(r"head\.\d+\.weight", k)), key=lambda k: int(k.split(".")[1]),
               default=None)
    if head is None:
        raise WeightsError(f"{source} has no {_family(name).upper()} head (head.block.*): not a GluonCV {name} file")
    inferred = {"classes": int(state[head].shape[0]), "aux": any(k.startswith("auxlayer.") for k in state)}
    model = get_model(name, **{**inferred, **kwargs})
    return assign_state(model, state, source)
