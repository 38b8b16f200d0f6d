"""ONNX export without the second trace, for graphs whose ops ONNX translates directly.

``torch.onnx.export(..., dynamo=True)`` captures the model with ``torch.export`` and then
prepares the captured program with ``ExportedProgram.run_decompositions``: a second full
trace (fake tensors, functionalization, make_fx) that for a ResNet-50 costs about as much
as the capture itself, and more than everything else in the export together. What it
achieves for a typical vision network is small: in-place ops (``relu_``, ``add_``) become
their functional forms, and the few ops torchlib has no ONNX translation for
(``batch_norm``, ``adaptive_avg_pool2d``) become ones it has
(``_native_batch_norm_legit_no_training``, ``mean.dim``).

:func:`direct_preparation` makes those rewrites on the captured graph itself, node by node,
when it can prove them safe, and hands every other graph to torch.onnx's own preparation
unchanged (anything unfamiliar: an op without a translation and without a rewrite here, an
in-place op whose tensor may be aliased, a sub-graph, a mutated input or buffer). It swaps
one private step of ``torch.onnx`` for the duration of an export; everything else
(capture, registry, custom translations, translation, optimizer, names) is torch.onnx's.
Set ``TOOLKIT_EXPORT_DIRECT=0`` to always take torch.onnx's path.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import operator
import threading
from typing import Any, Iterator

import torch
from ._switches import switch_on

__all__ = ["direct_preparation", "enabled", "prepare_without_retrace"]

_log = logging.getLogger(__name__)
_lock = threading.Lock()

#: preparations so far in this process, by path: ``direct`` or ``full`` (torch.onnx's decompositions)
COUNTS = {"direct": 0, "full": 0}

#: assertion ops torch.onnx drops before translating (its ``remove_assertion_nodes``)
_ASSERTIONS = {
    torch.ops.aten.sym_constrain_range_for_size.default,
    torch.ops.aten._assert_async.default,
    torch.ops.aten._assert_async.msg,
    torch.ops.aten._assert_scalar.default,
    torch.ops.aten._assert_tensor_metadata.default,
}


def enabled() -> bool:
    """Whether exports try the direct preparation (``TOOLKIT_EXPORT_DIRECT``, default on)."""
    return switch_on("TOOLKIT_EXPORT_DIRECT")


def _returns_alias(target: Any) -> bool:
    """Whether ``target`` may return (a view of) one of its inputs; unknown callables count as aliasing."""
    if target is operator.getitem:
        return False  # of a multi-output op's tuple; never applied to a tensor in these graphs
    schema = getattr(target, "_schema", None)
    if schema is None:
        return True
    return any(r.alias_info is not None for r in schema.returns)


def _fresh(node: torch.fx.Node) -> bool:
    """Whether ``node``'s tensor is newly allocated by its op (no other name can see it change)."""
    if node.op != "call_function":
        return False  # inputs, parameters, buffers, constants
    if node.target is operator.getitem:
        src = node.args[0]
        return isinstance(src, torch.fx.Node) and src.op == "call_function" and not _returns_alias(src.target)
    return isinstance(node.target, torch._ops.OpOverload) and not _returns_alias(node.target)


def _functional_of(target: torch._ops.OpOverload) -> torch._ops.OpOverload | None:
    """``aten.relu`` for ``aten.relu_`` (same overload): in-place ops that write their first argument only."""
    schema = target._schema
    name = target._opname
    if not name.endswith("_") or name.startswith("_") or not schema.arguments:
        return None
    writes = [a for a in schema.arguments if a.alias_info is not None and a.alias_info.is_write]
    if len(writes) != 1 or writes[0] is not schema.arguments[0]:
        return None
    packet = getattr(torch.ops.aten, name[:-1], None) if target.namespace == "aten" else None
    functional = getattr(packet, target._overloadname, None) if packet is not None else None
    if functional is None or functional._schema.is_mutable:
        return None
    return functional


def _rewrite_inplace(graph: torch.fx.Graph, node: torch.fx.Node, functional: Any, order: dict) -> bool:
    """Turn ``node`` (``x.op_(...)``) into ``op(x, ...)`` and point every later use of ``x`` at it.

    Safe when ``x`` is a fresh tensor (no input, parameter, buffer or view of one) and no view of it
    was taken before: then the only observers of the write are the uses after ``node``.
    """
    target = node.args[0] if node.args else None
    if not isinstance(target, torch.fx.Node) or not _fresh(target):
        return False
    users = list(target.users)
    if any(u is not node and order[u] < order[node] and _returns_alias(u.target) for u in users):
        return False
    node.target = functional
    for user in users:
        if user is not node and order[user] > order[node]:
            user.replace_input_with(target, node)
    return True


def _fake_run(target: Any, node: torch.fx.Node, args: tuple) -> Any:
    """``target(*args)`` on the fake tensors of the graph (for the ``val`` of a new node)."""
    vals = torch.fx.node.map_arg(args, lambda n: n.meta["val"])
    fake_mode = torch._guards.detect_fake_mode(
        [v for v in torch.utils._pytree.tree_leaves(vals) if isinstance(v, torch.Tensor)])
    if fake_mode is None:
        raise RuntimeError(f"no fake tensors on the inputs of {node.name}")
    with fake_mode:
        return target(*vals)


def _rewrite_batch_norm(graph: torch.fx.Graph, node: torch.fx.Node) -> bool:
    """``batch_norm(x, w, b, mean, var, training=False, momentum, eps, cudnn)`` ->
    ``_native_batch_norm_legit_no_training(...)[0]``, what the decomposition makes of it."""
    args = node.args
    if node.kwargs or len(args) < 8:
        return False
    x, weight, bias, mean, var, training, momentum, eps = args[:8]
    if training is not False or not isinstance(mean, torch.fx.Node) or not isinstance(var, torch.fx.Node):
        return False
    op = torch.ops.aten._native_batch_norm_legit_no_training.default
    new_args = (x, weight, bias, mean, var, momentum, eps)
    val = _fake_run(op, node, new_args)
    with graph.inserting_before(node):
        bn = graph.call_function(op, new_args)
    bn.meta.update({k: v for k, v in node.meta.items() if k != "val"})
    bn.meta["val"] = val
    node.target = operator.getitem
    node.args, node.kwargs = (bn, 0), {}
    return True


def _rewrite_adaptive_avg_pool2d(graph: torch.fx.Graph, node: torch.fx.Node) -> bool:
    """``adaptive_avg_pool2d(x, (1, 1))`` -> ``mean(x, [-1, -2], keepdim=True)`` (its decomposition)."""
    if node.kwargs or len(node.args) != 2:
        return False
    size = node.args[1]
    size = [size] if isinstance(size, int) else list(size)
    if size not in ([1], [1, 1]):
        return False
    node.target = torch.ops.aten.mean.dim
    node.args = (node.args[0], [-1, -2], True)
    return True


#: ops without a torchlib translation that become ones with one, as their decompositions do
_REWRITES = {
    torch.ops.aten.batch_norm.default: _rewrite_batch_norm,
    torch.ops.aten.adaptive_avg_pool2d.default: _rewrite_adaptive_avg_pool2d,
}


def prepare_without_retrace(program: torch.export.ExportedProgram, registry: Any) -> bool:
    """Rewrite ``program``'s graph in place into what torch.onnx translates, without tracing it again.

    Returns ``False`` (graph untouched) when the graph needs torch.onnx's full preparation.
    """
    from torch.export.graph_signature import InputKind, OutputKind

    sig = program.graph_signature
    if any(spec.kind != OutputKind.USER_OUTPUT for spec in sig.output_specs):
        return False  # buffer or input mutations: functionalization's job
    if any(spec.kind not in (InputKind.USER_INPUT, InputKind.PARAMETER, InputKind.BUFFER,
                             InputKind.CONSTANT_TENSOR) for spec in sig.input_specs):
        return False
    gm = program.graph_module
    if any(isinstance(m, torch.fx.GraphModule) for _, m in gm.named_children()):
        return False  # control flow / wrapped sub-graphs
    plan: list[tuple[str, Any]] = []
    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target in _ASSERTIONS:
            continue
        target = node.target
        if target in _REWRITES:
            plan.append((node.name, _REWRITES[target]))
            continue
        if isinstance(target, torch._ops.OpOverload) and target._schema.is_mutable:
            functional = _functional_of(target)
            if functional is None or not registry.is_registered(functional):
                return False
            plan.append((node.name, functional))
            continue
        if isinstance(target, torch._ops.HigherOrderOperator) or not registry.is_registered(target):
            return False
    # every op is known: rewrite a copy of the graph (nodes and names; meta dicts copied, values shared),
    # so that a refusal half-way leaves the program as captured for the full preparation
    graph = copy.deepcopy(gm.graph)  # node_copy copies each meta dict; the fake tensors in it are shared
    nodes = {n.name: n for n in graph.nodes}
    order = {n: i for i, n in enumerate(graph.nodes)}
    for name, how in plan:
        node = nodes[name]
        if isinstance(how, torch._ops.OpOverload):
            ok = _rewrite_inplace(graph, node, how, order)
        else:
            ok = how(graph, node)
            order = {n: i for i, n in enumerate(graph.nodes)}
        if not ok:
            return False
    for node in list(graph.nodes):
        if node.op == "call_function" and node.target in _ASSERTIONS:
            graph.erase_node(node)
    graph.lint()
    gm.graph = graph  # recompiles
    return True


def _promotion_needed(gm: torch.fx.GraphModule) -> bool:
    """Whether torch.onnx's type-promotion pass would insert a cast anywhere in ``gm``.

    The pass runs every node again on fake tensors (about a tenth of an export of a ResNet) to
    find the few ops with mixed-dtype arguments; this asks its own rules the same question from
    the ``val`` already on each node, and the pass runs only where the answer is yes.
    """
    from torch.onnx._internal.fx import type_utils
    from torch.onnx._internal.fx.passes import type_promotion as tp

    table = tp.TypePromotionTable()

    def val(arg):
        return arg.meta["val"] if isinstance(arg, torch.fx.Node) else arg

    def changes(arg, dtype) -> bool:  # mirrors _TypePromotionInterpreter._maybe_promote_arg
        if dtype is None:
            return False
        if isinstance(arg, (tuple, list)):
            return any(changes(a, dtype) for a in arg)
        v = val(arg)
        if isinstance(v, torch.Tensor):
            return v.dtype != dtype
        if v is None:
            return False
        return type_utils.from_scalar_type_to_torch_dtype(type(v)) != dtype

    for node in gm.graph.nodes:
        if node.op != "call_function":
            continue
        rule = tp.get_type_promotion_rule(node, table)
        if rule is None:
            continue
        args = torch.fx.node.map_arg(node.args, val)
        kwargs = torch.fx.node.map_arg(node.kwargs, val)
        info = rule.preview_type_promotion(args, kwargs)
        if any(changes(a, info.args_dtypes.get(i)) for i, a in enumerate(node.args)):
            return True
        if any(changes(a, info.kwargs_dtypes.get(k)) for k, a in node.kwargs.items()):
            return True
    return False


@contextlib.contextmanager
def direct_preparation() -> Iterator[dict[str, int]]:
    """Within this context, torch.onnx prepares captured programs with :func:`prepare_without_retrace`
    where it can (falling back to its own ``run_decompositions`` otherwise).

    Yields a dict counting ``direct`` and ``full`` preparations (for tests and benchmarks).
    """
    counts = {"direct": 0, "full": 0}
    try:
        from torch.onnx._internal.exporter import _core, _fx_passes
        original = _core._prepare_exported_program_for_export
        type_promotion = _fx_passes.insert_type_promotion_nodes
    except (ImportError, AttributeError):  # another torch: its own path
        yield counts
        return

    def prepare(exported_program, *, registry):
        try:
            with torch.fx.experimental._config.patch(backed_size_oblivious=True):
                done = prepare_without_retrace(exported_program, registry)
                if done and _promotion_needed(exported_program.graph_module):
                    type_promotion(exported_program.graph_module)
        except Exception:  # noqa: BLE001 - an unforeseen graph: torch.onnx's own preparation decides
            _log.debug("direct ONNX preparation failed; running the decompositions", exc_info=True)
            done = False
        counts["direct" if done else "full"] += 1
        COUNTS["direct" if done else "full"] += 1
        return exported_program if done else original(exported_program, registry=registry)

    with _lock:
        _core._prepare_exported_program_for_export = prepare
        try:
            yield counts
        finally:
            _core._prepare_exported_program_for_export = original
