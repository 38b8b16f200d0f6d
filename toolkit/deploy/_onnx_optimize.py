"""onnxscript's graph optimizer, without trying rewrite rules on nodes whose op their pattern cannot match.

``torch.onnx.export`` ends with onnxscript's ``optimize_ir``, whose rewrite pass tries each of its ~46
default rules on each node: for a ResNet-50 ~25,000 attempts of which a few hundred can succeed, since
almost every rule's pattern ends in one fixed op (``FuseBatchNormIntoConv`` in ``BatchNormalization``) and
the matcher's first step is to compare that op with the node's. :func:`rule_filter` makes that comparison
before the matcher is set up, and skips the attempt when it fails. Exact by construction: the rule would
have failed at that comparison, with nothing changed; rules whose matching is anything else (several
output nodes, an op pattern other than a fixed name, an overridden ``match``/``try_rewrite``, a tracer or
verbose output asked for) are tried as before. ``TOOLKIT_EXPORT_RULE_FILTER=0`` turns it off.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator
from ._switches import switch_on

__all__ = ["enabled", "rule_filter"]

_lock = threading.Lock()


def enabled() -> bool:
    """Whether exports filter rewrite attempts by op (``TOOLKIT_EXPORT_RULE_FILTER``, default on)."""
    return switch_on("TOOLKIT_EXPORT_RULE_FILTER")


def _root_op(rule: Any, rule_cls: type, matcher_cls: type, constant_cls: type) -> str | None:
    """The op type a node must have for ``rule`` to match it, or ``None`` when that is not a fixed name."""
    if type(rule).match is not rule_cls.match:
        return None
    matcher = getattr(rule, "_matcher", None)
    if type(matcher) is not matcher_cls or not matcher.pattern.has_single_output_node:
        return None
    op = matcher.pattern.output_node.op
    return op.value() if type(op) is constant_cls else None


@contextlib.contextmanager
def rule_filter() -> Iterator[dict[str, int]]:
    """Within this context, onnxscript's ``RewriteRule.try_rewrite`` returns ``None`` at once for a node
    whose op type differs from the op the rule's pattern ends in (see the module docstring).

    Yields a dict counting ``skipped`` and ``tried`` attempts (for tests and benchmarks).
    """
    counts = {"skipped": 0, "tried": 0}
    try:
        from onnxscript.rewriter import _matcher, _pattern_ir, _rewrite_rule
        rule_cls = _rewrite_rule.RewriteRule
        original = rule_cls.__dict__["try_rewrite"]
        matcher_cls, constant_cls = _matcher.SimplePatternMatcher, _pattern_ir.StringConstantPattern
        constant_cls.value  # noqa: B018 - the accessor this relies on
    except (ImportError, AttributeError, KeyError):  # another onnxscript: its own matching
        yield counts
        return
    roots: dict[int, tuple[Any, str | None]] = {}  # id(rule) -> (rule, root op), for this context only

    def try_rewrite(self, model, graph_or_function, node, *, verbose=None, tracer=None):
        if tracer is None and not verbose:
            entry = roots.get(id(self))
            if entry is None or entry[0] is not self:
                entry = roots[id(self)] = (self, _root_op(self, rule_cls, matcher_cls, constant_cls))
            if entry[1] is not None and node.op_type != entry[1]:
                counts["skipped"] += 1
                return None
        counts["tried"] += 1
        return original(self, model, graph_or_function, node, verbose=verbose, tracer=tracer)

    with _lock:
        rule_cls.try_rewrite = try_rewrite
        try:
            yield counts
        finally:
            rule_cls.try_rewrite = original
