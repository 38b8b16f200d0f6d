"""The lazy torchlib registry (toolkit.deploy._onnx_registry): torch.onnx's registry, entry for entry and
signature for signature, with the signatures inferred on first lookup (issue 16, export time)."""

import pytest
import torch

from toolkit.deploy import _onnx_registry

from test_export_direct import export_digests_with_switch  # tests/deploy is on sys.path (conftest.py)

_registration = pytest.importorskip("torch.onnx._internal.exporter._registration")


def test_same_entries_and_signatures_as_from_torchlib():
    eager = _registration.ONNXRegistry.from_torchlib(18)
    lazy = _onnx_registry.lazy_torchlib_registry(18)
    assert lazy.opset_version == eager.opset_version == 18
    assert list(lazy.functions) == list(eager.functions)  # same ops, same order
    assert lazy._pending  # nothing inferred yet
    compared = 0
    for key, want in eager.functions.items():
        lazy._settle(key)
        got = lazy.functions[key]
        assert len(got) == len(want), key
        for a, b in zip(got, want):
            assert a.onnx_function is b.onnx_function and a.fx_target is b.fx_target, key
            assert (a.is_custom, a.is_complex, a.opset_introduced, a.device, a.skip_signature_inference) == \
                   (b.is_custom, b.is_complex, b.opset_introduced, b.device, b.skip_signature_inference), key
            assert str(a.signature) == str(b.signature), key  # None for torch's own higher-order ops
            compared += a.signature is not None
    assert compared > 400 and not lazy._pending


def test_signatures_are_inferred_for_the_ops_looked_up_only():
    lazy = _onnx_registry.lazy_torchlib_registry()
    before = len(lazy._pending)
    conv = torch.ops.aten.convolution.default
    decomps = lazy.get_decomps(conv)
    assert decomps and all(d.signature is not None for d in decomps)
    assert len(lazy._pending) == before - len(lazy.functions[conv.name()])
    relu = lazy.functions[torch.ops.aten.relu.default.name()]
    assert all(d.signature is None and id(d) in lazy._pending for d in relu)  # not asked about: untouched


def test_a_function_whose_signature_fails_is_left_out_as_from_torchlib_does():
    def broken(x: "NoSuchType"):  # noqa: F821 - the annotation cannot be resolved: inference raises
        return x

    registry = _onnx_registry._registry_class()()
    target = torch.ops.aten.relu.default
    meta = _registration.OnnxDecompMeta(onnx_function=broken, fx_target=target, signature=None,
                                        skip_signature_inference=True)
    registry._register(target, meta)
    registry._pending[id(meta)] = meta
    assert registry.get_decomps(target) == []
    assert not registry.is_registered(target) and target.name() not in registry.functions


def test_export_writes_the_same_file_with_and_without(tmp_path, monkeypatch):
    digests = export_digests_with_switch("TOOLKIT_EXPORT_LAZY_REGISTRY", tmp_path, monkeypatch)
    assert digests["1"] == digests["0"]  # byte for byte the same ONNX file
    # the patch is confined to the export
    assert _registration.ONNXRegistry.__dict__["from_torchlib"].__func__.__module__ == _registration.__name__


def test_switch_off(monkeypatch):
    monkeypatch.setenv("TOOLKIT_EXPORT_LAZY_REGISTRY", "0")
    assert not _onnx_registry.enabled()
    monkeypatch.setenv("TOOLKIT_EXPORT_LAZY_REGISTRY", "1")
    assert _onnx_registry.enabled()
