"""Exact float rewrites that let onnxruntime keep a static int8 graph in uint8 between convolutions.

onnxruntime fuses a QDQ graph into integer kernels only for the ops it has uint8 kernels for
(QLinearConv, QLinearAdd, QLinearMul, QLinearGlobalAveragePool, ...). Any other op between two
convolutions runs in float: a ``DequantizeLinear`` before it and a ``QuantizeLinear`` after it, two
more passes over the tensor, in the NHWC layout that the int8 convolutions use. In MobileNetV3
graphs (LR-ASPP, SSDlite, Faster R-CNN-MobileNetV3-FPN backbones) two such ops sit after nearly
every convolution, and at 512x512 their float passes cost more than int8 convolutions save
(profiled in ``benchmarks/int8_mobile.py``):

* ``HardSigmoid`` (the exporter writes ``HardSwish`` as ``x * HardSigmoid(x)``, and squeeze-excite
  gates use it): no uint8 kernel. Rewritten as ``Clip(x * alpha + beta, 0, 1)``: Mul and Add
  have uint8 kernels and the Clip disappears into the quantization range.
* ``ReduceMean`` over H and W with ``keepdims`` (``AdaptiveAvgPool2d(1)``, the squeeze-excite
  pooling): no uint8 kernel, and in NHWC onnxruntime's float reduction over the two middle axes is
  slow (7x the NCHW time here). Rewritten as ``GlobalAveragePool`` (the same numbers), which has one.

Both rewrites are exact in float; a graph without these patterns (ResNet, DeepLab-ResNet
classifiers with no HardSigmoid) is unchanged apart from its H/W means.

:func:`float_output_nodes` names a third fix: the quantizer also puts a QuantizeLinear/
DequantizeLinear pair on the graph's outputs. A segmentation model's last op is a bilinear
``Resize`` to the input size (21 x 512 x 512 logits), which onnxruntime then runs in float
anyway, followed by a quantize and a dequantize of the full-size logits (~1/3 of the int8
LR-ASPP's non-convolution time) that only cost accuracy. Such nodes stay float.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["REWRITES", "uint8_friendly", "float_output_nodes"]

#: the names under which :func:`uint8_friendly` counts its rewrites (stored in the metadata)
REWRITES = ("ReduceMean->GlobalAveragePool", "HardSigmoid->Mul+Add+Clip")


def _opset(model: Any) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _attr(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _types(graph: Any) -> tuple[dict[str, int], dict[str, int]]:
    """Tensor name -> rank and -> element type, where shape inference (onnxruntime's pre-processing) recorded them."""
    ranks: dict[str, int] = {}
    dtypes: dict[str, int] = {}
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        t = vi.type.tensor_type
        dtypes[vi.name] = t.elem_type
        if t.HasField("shape"):
            ranks[vi.name] = len(t.shape.dim)
    return ranks, dtypes


def _constants(graph: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            values[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return values


def _is_spatial_mean(node: Any, ranks: dict[str, int], constants: dict[str, np.ndarray]) -> bool:
    """A ReduceMean of a rank-4 NCHW tensor over exactly H and W, keeping the dims."""
    if node.op_type != "ReduceMean" or _attr(node, "keepdims", 1) != 1 or ranks.get(node.input[0]) != 4:
        return False
    if len(node.input) > 1 and node.input[1]:  # opset 18: axes as an input
        axes = constants.get(node.input[1])
    else:
        axes = _attr(node, "axes", None)
    if axes is None:  # no axes: all of them (or, with noop_with_empty_axes, none)
        return False
    return sorted(int(a) % 4 for a in np.asarray(axes).ravel()) == [2, 3]


def uint8_friendly(model: Any) -> dict[str, int]:
    """Rewrite ``model`` (an ``onnx.ModelProto``, in place) so that static int8 stays in uint8.

    Parameters
    ----------
    model : onnx.ModelProto
        A float graph after shape inference (``quant_pre_process``), before ``quantize_static``.

    Returns
    -------
    dict
        How many nodes each rewrite replaced, keyed by :data:`REWRITES`.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    counts = dict.fromkeys(REWRITES, 0)
    if _opset(model) < 13:  # Clip with min/max inputs, ReduceMean semantics as handled here
        return counts
    (ranks, dtypes), constants = _types(graph), _constants(graph)
    taken = {n.name for n in graph.node} | {i.name for i in graph.initializer}

    def fresh(base: str) -> str:
        name, k = base, 0
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        return name

    nodes = []
    for node in graph.node:
        if _is_spatial_mean(node, ranks, constants):
            counts[REWRITES[0]] += 1
            nodes.append(helper.make_node("GlobalAveragePool", [node.input[0]], list(node.output),
                                          name=fresh(f"{node.name or 'mean'}_gap")))
        elif (node.op_type == "HardSigmoid" and node.domain in ("", "ai.onnx")
              and dtypes.get(node.input[0]) == TensorProto.FLOAT):  # the constants below are float32
            counts[REWRITES[1]] += 1
            base = fresh(node.name or "hardsigmoid")
            alpha, beta = float(_attr(node, "alpha", 0.2)), float(_attr(node, "beta", 0.5))
            names = {k: fresh(f"{base}_{k}") for k in ("alpha", "beta", "zero", "one", "scaled", "shifted")}
            for key, value in (("alpha", alpha), ("beta", beta), ("zero", 0.0), ("one", 1.0)):
                graph.initializer.append(numpy_helper.from_array(np.array(value, dtype=np.float32), names[key]))
            nodes += [
                helper.make_node("Mul", [node.input[0], names["alpha"]], [names["scaled"]], name=fresh(f"{base}_mul")),
                helper.make_node("Add", [names["scaled"], names["beta"]], [names["shifted"]], name=fresh(f"{base}_add")),
                helper.make_node("Clip", [names["shifted"], names["zero"], names["one"]], list(node.output),
                                 name=fresh(f"{base}_clip")),
            ]
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    if counts[REWRITES[0]]:
        _drop_unused_initializers(graph)
    return counts


def _drop_unused_initializers(graph: Any) -> None:
    """Remove initializers no node reads any more (a replaced ReduceMean's ``axes``).

    onnxruntime would otherwise warn about each one on stderr at every session start.
    """
    used = {name for node in graph.node for name in node.input}
    used |= {o.name for o in graph.output}
    for attr_graph in (a.g for node in graph.node for a in node.attribute if a.g.node):
        used |= {name for node in attr_graph.node for name in node.input}
    keep = [i for i in graph.initializer if i.name in used]
    if len(keep) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(keep)


#: ops that onnxruntime fuses with a float output (QGemm, MatMulIntegerToFloat...) or whose int8 output
#: is the point: never left float by :func:`float_output_nodes`
_COMPUTE = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def float_output_nodes(model: Any) -> list[str]:
    """Names of the non-compute nodes that write a graph output, to keep out of quantization.

    Their float inputs come from one DequantizeLinear of the (smaller) tensor before them, and the
    graph's outputs stay exact float instead of a uint8 round trip at full size.
    """
    outputs = {o.name for o in model.graph.output}
    return [n.name for n in model.graph.node
            if n.name and n.op_type not in _COMPUTE and outputs.intersection(n.output)]
