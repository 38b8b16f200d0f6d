"""The rewrite-rule filter (toolkit.deploy._onnx_optimize): onnxscript's optimizer gives the same graph,
byte for byte, trying its rules only on nodes of the op their pattern ends in (issue 16, export time)."""

import pytest
import torch

from toolkit.deploy import _onnx_optimize

from test_export_direct import ResidualCNN, export_digests_with_switch  # tests/deploy is on sys.path (conftest.py)

ir = pytest.importorskip("onnx_ir")
rewriter = pytest.importorskip("onnxscript.rewriter")
_rewrite_rule = pytest.importorskip("onnxscript.rewriter._rewrite_rule")


def _unoptimized(net):
    with torch.no_grad():
        program = torch.onnx.export(net, net.example_inputs(), dynamo=True, optimize=False, verbose=False,
                                    dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=18)
    return ir.serde.serialize_model(program.model)


def test_optimizer_gives_the_same_graph_and_skips_most_attempts():
    from onnxscript._framework_apis.torch_2_11 import optimize

    torch.manual_seed(0)
    proto = _unoptimized(ResidualCNN().eval())
    plain = optimize(ir.serde.deserialize_model(proto))
    with _onnx_optimize.rule_filter() as counts:
        filtered = optimize(ir.serde.deserialize_model(proto))
    assert ir.serde.serialize_model(filtered).SerializeToString() == ir.serde.serialize_model(plain).SerializeToString()
    assert counts["skipped"] > 5 * counts["tried"] > 0
    ops = [n.op_type for n in filtered.graph]
    assert "BatchNormalization" not in ops and ops.count("Conv") == 2  # the rules that apply still did


def test_rules_without_a_fixed_last_op_are_always_tried():
    by_name = {r.name: r for r in rewriter._DEFAULT_REWRITE_RULES}
    args = (_rewrite_rule.RewriteRule, rewriter._matcher.SimplePatternMatcher,
            rewriter._pattern_ir.StringConstantPattern)
    assert _onnx_optimize._root_op(by_name["FuseBatchNormIntoConv"], *args) == "BatchNormalization"
    assert _onnx_optimize._root_op(by_name["SlicesSplit"], *args) is None  # two output nodes

    class Custom(_rewrite_rule.RewriteRule):
        def match(self, *a, **k):  # a rule that matches its own way
            return super().match(*a, **k)

    rule = by_name["FuseBatchNormIntoConv"]
    custom = Custom.__new__(Custom)
    custom.__dict__.update(rule.__dict__)
    assert _onnx_optimize._root_op(custom, *args) is None


def test_export_writes_the_same_file_with_and_without(tmp_path, monkeypatch):
    digests = export_digests_with_switch("TOOLKIT_EXPORT_RULE_FILTER", tmp_path, monkeypatch)
    assert digests["1"] == digests["0"]
    assert _rewrite_rule.RewriteRule.__dict__["try_rewrite"].__module__ == _rewrite_rule.__name__  # restored


def test_switch_off(monkeypatch):
    monkeypatch.setenv("TOOLKIT_EXPORT_RULE_FILTER", "off")
    assert not _onnx_optimize.enabled()
    monkeypatch.delenv("TOOLKIT_EXPORT_RULE_FILTER")
    assert _onnx_optimize.enabled()


def test_garbage_collector_paused_during_the_export_only(tmp_path, monkeypatch):
    import gc

    from toolkit.deploy import export as export_mod

    seen = []
    real = torch.onnx.export

    def spy(*args, **kwargs):
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", spy)
    torch.manual_seed(0)
    ResidualCNN().eval().export(str(tmp_path / "m"))
    assert seen == [False] and gc.isenabled()
    monkeypatch.setenv("TOOLKIT_EXPORT_GC_PAUSE", "0")
    ResidualCNN().eval().export(str(tmp_path / "m0"))
    assert seen == [False, True]
    gc.disable()  # a caller that turned the collector off keeps it off
    try:
        with export_mod._gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
