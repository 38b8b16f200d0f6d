"""Dynamic int8 for transformer text models: the fused-graph (``text_fusion``) and per-channel options."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from toolkit.deploy import ExportError, load, quantize
from toolkit.deploy.cli import main


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from toolkit.zoo import get_model

    torch.manual_seed(0)
    net = get_model("bert_2_128_2", head="classification", num_classes=3, vocab_size=100, max_length=32).eval()
    prefix = tmp_path_factory.mktemp("bert") / "bert"
    ids = torch.randint(1, 100, (2, 8))
    net.export(str(prefix), example_inputs=(ids, torch.zeros_like(ids), torch.ones_like(ids)))
    return prefix


def _feed(batch: int, seq: int) -> tuple[np.ndarray, ...]:
    ids = np.random.default_rng(1).integers(1, 100, size=(batch, seq))
    mask = np.ones_like(ids)
    mask[-1, seq - 3:] = 0  # one padded row: the mask path must survive the fusion
    return ids, np.zeros_like(ids), mask


def _ops(path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


@pytest.mark.parametrize("per_channel", [False, True])
def test_text_fusion_fuses_the_float_ops_and_keeps_the_logits(tiny_bert, tmp_path, per_channel):
    out = tmp_path / ("fused-pc" if per_channel else "fused")
    report = quantize(tiny_bert, text_fusion=True, per_channel=per_channel, out=out, latency_repeats=1)
    assert report["method"] == "dynamic"
    assert report["text_fusion"].get("SkipLayerNormalization", 0) >= 2  # 2 layers x 2 residual LayerNorms
    assert report["text_fusion"].get("BiasGelu", 0) == 2
    ops = _ops(f"{out}.onnx")
    assert {"SkipLayerNormalization", "BiasGelu"} <= ops and "Erf" not in ops
    assert ops & {"MatMulInteger", "DynamicQuantizeMatMul"}
    assert report["weights"] == ("int8 per-channel" if per_channel else "int8")
    feed = _feed(3, 11)  # other batch and length than traced
    ref, got = load(tiny_bert)(*feed), load(out)(*feed)
    assert got.shape == ref.shape == (3, 3)
    assert np.abs(got - ref).max() <= 0.05 * np.abs(ref).max() + 1e-3
    # the same weights without fusion: fusion changes only how the float ops run
    plain = load(quantize(tiny_bert, per_channel=per_channel, out=tmp_path / "plain", latency_repeats=1)["out"])(*feed)
    assert np.abs(got - plain).max() <= 0.02 * np.abs(ref).max() + 1e-4


def test_text_options_refuse_static_quantization_and_reach_the_cli(tiny_bert, tmp_path, capsys):
    with pytest.raises(ExportError, match="dynamic"):
        quantize(tiny_bert, dynamic=False, text_fusion=True, calib=str(tmp_path))
    assert main(["quantize", str(tiny_bert), "--text-fusion", "--out", str(tmp_path / "cli"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["text_fusion"]["BiasGelu"] == 2 and report["weights"] == "int8"
