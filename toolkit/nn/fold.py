"""Inference-only graph rewrite: fold batch norm into the convolution before it.

A captured graph for evaluation without gradients (``model.eval()`` under
``torch.no_grad()``/``inference_mode()``) computes ``bn(conv(x))`` with the
running statistics, an affine map per channel that can be merged into the
convolution's weight and bias: one kernel instead of two, and one intermediate
tensor less. This is what MXNet's and OpenVINO's graph passes do; PyTorch only
does it inside ``torch.compile`` (Inductor's freezing) or on ``call_module``
graphs (``torch.fx.experimental.optimization.fuse``), neither of which applies
to the ``aten``-level graphs that ``torch.export`` gives, hence this pass.

The folded tensors are derived from the live parameters and buffers, which
the graph shares with the eager module. :class:`FoldedGraph` remembers their
version counters and re-derives the folded tensors when any of them changed
(an optimizer step, ``load_state_dict``, running statistics updated by a
training pass), so an evaluation graph never runs on stale weights.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx

__all__ = ["FoldedGraph", "fold_batch_norms", "fold_for_inference", "get_attr_tensor"]

_aten = torch.ops.aten


@dataclass
class _Fold:
    """One conv + batch-norm pair and the tensors that replace the conv's weight and bias."""

    conv_weight: torch.Tensor
    conv_bias: torch.Tensor | None
    bn_weight: torch.Tensor | None
    bn_bias: torch.Tensor | None
    mean: torch.Tensor
    var: torch.Tensor
    eps: float
    weight: torch.Tensor  # folded, owned by the rewritten graph
    bias: torch.Tensor

    def sources(self) -> tuple[torch.Tensor, ...]:
        return tuple(t for t in (self.conv_weight, self.conv_bias, self.bn_weight, self.bn_bias, self.mean, self.var)
                     if t is not None)

    def refresh(self) -> None:
        """Recompute the folded weight and bias from the current source tensors (in place)."""
        # at least float32 (half-precision weights are folded in float32, then rounded once)
        dt = torch.promote_types(self.conv_weight.dtype, torch.float32)
        scale = torch.rsqrt(self.var.to(dt) + self.eps)
        if self.bn_weight is not None:
            scale = scale * self.bn_weight.to(dt)
        shift = -self.mean.to(dt) * scale
        if self.conv_bias is not None:
            shift = shift + self.conv_bias.to(dt) * scale
        if self.bn_bias is not None:
            shift = shift + self.bn_bias.to(dt)
        shape = (-1,) + (1,) * (self.conv_weight.dim() - 1)
        self.weight.copy_(self.conv_weight.to(dt) * scale.reshape(shape))
        self.bias.copy_(shift)


def get_attr_tensor(gm: fx.GraphModule, node: Any) -> torch.Tensor | None:
    """The tensor behind a ``get_attr`` node (``None`` for an absent optional argument)."""
    if node is None:
        return None
    if not isinstance(node, fx.Node) or node.op != "get_attr":
        raise LookupError(node)
    return functools.reduce(getattr, node.target.split("."), gm)


def _conv_bn_pairs(graph: fx.Graph) -> list[tuple[fx.Node, fx.Node]]:
    """(conv2d, batch_norm) pairs where the norm in inference mode is the conv output's only user."""
    pairs = []
    for bn in graph.nodes:
        if bn.op != "call_function" or bn.target is not _aten.batch_norm.default:
            continue
        conv = bn.args[0]
        training = bn.args[5] if len(bn.args) > 5 else bn.kwargs.get("training", False)
        if (isinstance(conv, fx.Node) and conv.op == "call_function" and conv.target is _aten.conv2d.default
                and len(conv.users) == 1 and not training):
            pairs.append((conv, bn))
    return pairs


def fold_batch_norms(gm: fx.GraphModule) -> tuple[fx.GraphModule, list[_Fold]]:
    """Rewrite ``gm`` in place so that ``batch_norm(conv2d(x))`` in inference mode becomes one ``conv2d``.

    Parameters
    ----------
    gm : torch.fx.GraphModule
        An unlifted ``torch.export`` graph (``ExportedProgram.module()``) captured
        in evaluation mode: weights are ``get_attr`` nodes, norms are
        ``aten.batch_norm`` calls with ``training=False``.

    Returns
    -------
    (GraphModule, list)
        The same module and the folds it now depends on (see :class:`FoldedGraph`).
        Pairs whose tensors are not plain attributes are left as they are.
    """
    folds: list[_Fold] = []
    for conv, bn in _conv_bn_pairs(gm.graph):
        x, w_node, b_node, *conv_rest = list(conv.args) + [None] * (3 - len(conv.args))
        try:
            conv_w, conv_b = get_attr_tensor(gm, w_node), get_attr_tensor(gm, b_node)
            bn_w, bn_b, mean, var = (get_attr_tensor(gm, bn.args[i]) for i in range(1, 5))
        except LookupError:
            continue
        if mean is None or var is None or conv_w is None or not conv_w.is_floating_point():
            continue
        eps = float(bn.args[7] if len(bn.args) > 7 else bn.kwargs.get("eps", 1e-5))
        with torch.inference_mode(False), torch.no_grad():  # this order: inference_mode(False) turns grad mode on
            weight = torch.empty_like(conv_w)
            bias = torch.empty(conv_w.shape[0], dtype=conv_w.dtype, device=conv_w.device)
        index = len(folds)
        fold = _Fold(conv_w, conv_b, bn_w, bn_b, mean, var, eps, weight, bias)
        folds.append(fold)
        names = (f"_folded{index}_weight", f"_folded{index}_bias")
        gm.register_buffer(names[0], weight, persistent=False)
        gm.register_buffer(names[1], bias, persistent=False)
        with gm.graph.inserting_before(conv):
            new_w, new_b = gm.graph.get_attr(names[0]), gm.graph.get_attr(names[1])
        conv.args = (x, new_w, new_b, *conv.args[3:])
        bn.replace_all_uses_with(conv)  # batch_norm returns one tensor in the export graph
        gm.graph.erase_node(bn)
    if folds:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return gm, folds


class FoldedGraph:
    """Calls a graph rewritten by :func:`fold_batch_norms`, refolding when a source tensor changed.

    The check reads the version counters of the shared parameters and buffers
    (tens of integers per call), far cheaper than the norm kernels it removes.
    """

    def __init__(self, gm: fx.GraphModule, folds: list[_Fold]) -> None:
        self.module = gm
        self.folds = folds
        self._sources = [t for f in folds for t in f.sources()]
        self._versions: tuple[int, ...] | None = None

    def _refresh_if_stale(self) -> None:
        versions = tuple(t._version for t in self._sources)
        if versions != self._versions:
            with torch.inference_mode(False), torch.no_grad():  # this order: inference_mode(False) turns grad mode on
                for fold in self.folds:
                    fold.refresh()
            self._versions = versions

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._refresh_if_stale()
        return self.module(*args, **kwargs)


def fold_for_inference(gm: fx.GraphModule) -> Callable[..., Any]:
    """``gm`` with its conv + batch-norm pairs folded, as a callable (``gm`` itself when there are none)."""
    gm, folds = fold_batch_norms(gm)
    return FoldedGraph(gm, folds) if folds else gm
