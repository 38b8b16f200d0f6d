"""int8 post-training quantization: static (QDQ, calibrated) for images, dynamic for token models."""
from __future__ import annotations

import glob
import json
import shutil
import warnings

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from _deploy_helpers import REPO, native_json
from toolkit.deploy import ExportError, cpu, load, load_openvino, quantize
from toolkit.deploy._emulation import qemu, run_emulated
from toolkit.deploy.cli import main
from toolkit.deploy.preprocess import preprocess_image
from toolkit.nn import HybridBlock


@pytest.fixture
def calib_dir(tmp_path, photos):
    folder = tmp_path / "calib"
    folder.mkdir()
    for p in photos:
        shutil.copy(p, folder / p.name)
    return folder


def _ops(path) -> list[str]:
    return [n.op_type for n in onnx.load(str(path)).graph.node]


@pytest.mark.parametrize("mode", ["naive", "entropy", "percentile"])
def test_static_int8_writes_a_checked_qdq_graph(tiny_copy, calib_dir, photos, mode):
    report = quantize(tiny_copy, calib=str(calib_dir), num_calib_batches=2, batch_size=2, calib_mode=mode,
                      latency_repeats=3)
    out = f"{tiny_copy}-int8"
    assert report["out"] == out and report["method"] == "static" and report["calib_batches"] == 2
    assert report["latency_ms"]["fp32"] > 0 and report["latency_ms"]["int8"] > 0
    ops = _ops(f"{out}.onnx")
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    meta = json.loads(open(f"{out}.json").read())
    assert meta["quantization"]["calib_mode"] == mode and meta["onnx_file"] == "tiny-int8.onnx"
    fp32_meta = load(tiny_copy).metadata
    assert meta["preprocessing"] == fp32_meta["preprocessing"] and meta["quantization"]["source_sha256"] == fp32_meta["sha256"]
    # the int8 graph approximates the float one (random weights: compare outputs, not labels)
    batch = np.stack([preprocess_image(p, fp32_meta, [3, 32, 32]) for p in photos])
    ref, got = load(tiny_copy)(batch), load(out)(batch)
    # measured with naive ranges (benchmarks/int8_schemes.py), max |int8 - fp32| / max |fp32|: Intel Xeon AVX-512
    # VNNI (auto = full-range) 0.9%; AMD EPYC-Rome AVX2 emulated by QEMU (auto = reduced-range) 1.2%, full-range
    # there 7.0%; entropy/percentile clip outliers, so the bound keeps room over the naive numbers
    assert np.abs(got - ref).max() <= 0.1 * np.abs(ref).max() + 1e-3


def _int8_weights(path) -> list[np.ndarray]:
    graph = onnx.load(str(path)).graph
    return [onnx.numpy_helper.to_array(t) for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]


def test_scheme_follows_the_cpu_and_is_recorded(tiny_copy, calib_dir, capsys):
    """auto = 7-bit weights exactly where onnxruntime's u8 x s8 kernels saturate; forced schemes are kept."""
    saturates = cpu.u8s8_saturates()
    isa = cpu.cpu_info()["isa"]
    if "AVX512VNNI" in isa or "AVX512_SPR" in isa:  # VPDPBUSD accumulates in int32
        assert not saturates
    elif "AVX2" in isa and not set(cpu.cpu_info()["proc_flags"]) & {"avx_vnni", "amx_int8"}:
        assert saturates  # VPMADDUBSW: two u8 x s8 products into a saturating int16
    expected = {"auto": "reduced-range" if saturates else "full-range", "full-range": "full-range",
                "reduced-range": "reduced-range"}
    for scheme, used in expected.items():
        out = tiny_copy.parent / f"tiny-{scheme}"
        assert main(["quantize", str(tiny_copy), "--calib", str(calib_dir), "--num-calib-batches", "1",
                     "--batch-size", "2", "--scheme", scheme, "--out", str(out), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        q = json.loads(open(f"{out}.json").read())["quantization"]
        assert q["scheme"] == report["scheme"] == used and q["reduce_range"] == (used == "reduced-range")
        assert q["chosen_by"] == ("auto" if scheme == "auto" else "user")
        assert q["quantized_on"]["u8s8_saturates"] == saturates and q["quantized_on"]["cpu"]
        weights = np.concatenate([w.ravel() for w in _int8_weights(f"{out}.onnx")])
        # per-channel symmetric: each channel's largest weight maps to 127 (8-bit) or 64 (7-bit: a pair of
        # u8 x s8 products then fits VPMADDUBSW's int16, 2 x 255 x 64 = 32,640 <= 32,767)
        assert np.abs(weights.astype(int)).max() == (64 if used == "reduced-range" else 127)
    with pytest.raises(SystemExit):
        main(["quantize", str(tiny_copy), "--calib", str(calib_dir), "--scheme", "vnni"])
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(ExportError, match="scheme 'int7'"):
        quantize(tiny_copy, calib=str(calib_dir), scheme="int7")


def test_full_range_graph_warns_on_a_saturating_cpu(tiny_copy, calib_dir, monkeypatch):
    quantize(tiny_copy, calib=str(calib_dir), num_calib_batches=1, batch_size=2, scheme="full-range", latency_repeats=1)
    quantize(tiny_copy, calib=str(calib_dir), num_calib_batches=1, batch_size=2, scheme="reduced-range",
             out=f"{tiny_copy}-r", latency_repeats=1)
    # the real probe's answer on this CPU (the emulated test below runs it on an AVX2 CPU)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load(f"{tiny_copy}-int8")
        load(f"{tiny_copy}-r")
        load(tiny_copy)
    assert len([w for w in caught if issubclass(w.category, cpu.Int8SchemeWarning)]) == int(cpu.u8s8_saturates())
    monkeypatch.setattr(cpu, "u8s8_saturates", lambda: True)  # as on an AMD EPYC (AVX2, no VNNI)
    with pytest.warns(cpu.Int8SchemeWarning, match="full-range .*no VNNI.*--scheme auto"):
        load(f"{tiny_copy}-int8")
    with warnings.catch_warnings():
        warnings.simplefilter("error", cpu.Int8SchemeWarning)
        load(f"{tiny_copy}-r")  # 7-bit weights: nothing to warn about
        load(tiny_copy)  # float


@pytest.mark.slow
def test_auto_scheme_on_an_emulated_avx2_cpu(tiny_copy, calib_dir, photos, tmp_path):
    """Under QEMU as an AMD EPYC-Rome (AVX2, no VNNI) onnxruntime saturates; auto picks 7-bit weights there."""
    if qemu() is None:
        pytest.skip("qemu-x86_64 is not installed (tools/setup.sh installs Debian's qemu-user)")
    meta = load(tiny_copy).metadata
    batch = np.stack([preprocess_image(p, meta, [3, 32, 32]) for p in photos])
    np.savez(tmp_path / "in.npz", **{f"0:{meta['inputs'][0]['name']}": batch})
    np.savez(tmp_path / "ref.npz", **{"0": load(tiny_copy)(batch)})
    graphs = {}
    for scheme in ("full-range", "reduced-range"):
        quantize(tiny_copy, calib=str(calib_dir), num_calib_batches=2, batch_size=2, scheme=scheme,
                 out=tmp_path / scheme, latency_repeats=1)
        graphs[scheme] = f"{scheme}.onnx"
    (tmp_path / "cases.json").write_text(json.dumps(
        [{"name": "tiny", "kind": "rows", "calls": 1, "inputs": "in.npz", "refs": "ref.npz", "graphs": graphs}]))
    emulated = run_emulated(tmp_path, timeout=120)  # raises unless onnxruntime there clips int16 sums
    assert emulated["cpu"]["isa"] == ["AVX2", "FMA3"] and emulated["auto_scheme"] == "reduced-range"
    drift = {s: emulated["results"][f"tiny/{s}"]["max_rel_drift"] for s in graphs}
    # measured: reduced-range 1.2% (bit-identical to the native run: no sum saturates), full-range 7.0%
    assert drift["reduced-range"] <= 0.05, drift
    assert drift["full-range"] > 2 * drift["reduced-range"], drift  # what the saturation costs


def test_exclude_first_last_keeps_them_float(tiny_copy, calib_dir):
    report = quantize(tiny_copy, calib=str(calib_dir), num_calib_batches=1, batch_size=2, exclude_first_last=True,
                      latency_repeats=1)
    graph = onnx.load(f"{tiny_copy}-int8.onnx").graph
    assert len(report["excluded_nodes"]) == 2
    producers = {o: n.op_type for n in graph.node for o in n.output}
    by_name = {n.name: n for n in graph.node}
    for name in report["excluded_nodes"]:
        node = by_name[name]
        weight = node.input[1]
        assert producers.get(weight) != "DequantizeLinear", f"{name} still reads an int8 weight"
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert any(producers.get(n.input[1]) == "DequantizeLinear" for n in convs), "the middle conv should be int8"


def test_quantize_errors(tiny_copy, tmp_path, capsys):
    with pytest.raises(ExportError, match="calibration mode"):
        quantize(tiny_copy, calib=str(tmp_path), calib_mode="kl")
    with pytest.raises(ExportError, match="needs calibration data"):
        quantize(tiny_copy)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ExportError, match="no image files"):
        quantize(tiny_copy, calib=str(empty))
    with pytest.raises(ExportError, match="neither a folder nor a known dataset"):
        quantize(tiny_copy, calib="imagenet-22k")
    assert main(["quantize", str(tmp_path / "missing"), "--calib", str(empty)]) == 1
    assert "not found" in capsys.readouterr().err


class TokenNet(HybridBlock):
    """A token-input stand-in for the text models: dynamic batch and sequence axes."""

    dynamic_axes = {0: "batch", 1: "seq"}
    input_names = ("tokens",)
    output_names = ("scores",)

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 32)
        self.ff = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 4))
        self.metadata.update({"name": "tokennet", "task": "text_classification"})

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.ff(self.embed(tokens)).mean(dim=1)


def test_token_models_get_dynamic_quantization(tmp_path):
    torch.manual_seed(0)
    prefix = tmp_path / "tok"
    TokenNet().export(prefix, example_inputs=(torch.randint(0, 50, (2, 7)),))
    report = quantize(prefix, latency_repeats=2)
    assert report["method"] == "dynamic"
    assert any(op.startswith(("MatMulInteger", "DynamicQuantize")) for op in _ops(f"{prefix}-int8.onnx"))
    tokens = np.random.default_rng(0).integers(0, 50, size=(3, 11))  # other batch and length than traced
    ref, got = load(prefix)(tokens), load(f"{prefix}-int8")(tokens)
    assert got.shape == (3, 4) and np.abs(got - ref).max() <= 0.05 * np.abs(ref).max() + 1e-3


@pytest.mark.native
def test_int8_graph_runs_in_cpp_and_java(tiny_copy, calib_dir, photos, cpp_runner, java_runner):
    quantize(tiny_copy, calib=str(calib_dir), num_calib_batches=2, batch_size=2, latency_repeats=1)
    prefix = f"{tiny_copy}-int8"
    meta = load(prefix).metadata
    batch = np.stack([preprocess_image(p, meta, [3, 32, 32]) for p in photos])
    ov = load_openvino(prefix)(batch)
    for runner in (cpp_runner, java_runner):
        results = native_json(runner, prefix, photos, "--logits")
        got = np.array([r["logits"] for r in results])
        # same engine (OpenVINO u8) on the same tensors
        assert np.abs(got - ov).max() <= 1e-4 * np.abs(ov).max()


# --------------------------------------------------------------------------- the zoo's Fashion-MNIST model
ZOO_GLOB = "model_zoo_logs/classification/*fashion-mnist*/metrics.json"


#: the zoo's reference Fashion-MNIST run (scripts/classification/train.py); other published runs are used if it is not
PREFERRED = "cifar_resnet20_v1"


def _zoo_fashion_mnist():
    found = sorted(glob.glob(str(REPO / ZOO_GLOB)))
    if not found:
        pytest.skip(f"no trained Fashion-MNIST zoo model yet (expected {ZOO_GLOB} with its safetensors beside it)")
    found.sort(key=lambda p: PREFERRED not in p)
    metrics_path = found[0]
    metrics = json.loads(open(metrics_path).read())
    weights = REPO / metrics_path.rsplit("/", 1)[0].removeprefix(str(REPO) + "/") / metrics["weights"]
    # published: the weights must be there (a missing file is an error, not a skip)
    assert weights.is_file(), f"{metrics_path} names {metrics['weights']}, which is missing"
    return metrics, weights


@pytest.mark.slow
def test_int8_keeps_the_zoo_fashion_mnist_model_within_one_point(tmp_path, capsys):
    metrics, weights = _zoo_fashion_mnist()
    prefix = tmp_path / "fmnist"
    assert main(["export", str(weights), "--out", str(prefix)]) == 0, capsys.readouterr().err
    # first and last layers in float: on an epoch-1 cifar_resnet20_v1 checkpoint agreement went 98.5% -> 99.2%
    report = quantize(prefix, calib="fashion-mnist", num_calib_batches=16, batch_size=32, calib_mode="naive",
                      exclude_first_last=True, val="fashion-mnist", latency_repeats=3)
    acc = report["accuracy"]
    assert acc["samples"] == 10000
    assert report["scheme"] == ("reduced-range" if cpu.u8s8_saturates() else "full-range")
    # fp32 through ONNX reproduces the published top-1 (percent, 2 decimals)
    assert abs(acc["fp32_top1"] * 100 - metrics["top1"]) <= 0.05, (acc, metrics["top1"])
    assert acc["fp32_top1"] - acc["int8_top1"] < 0.01, acc
    if acc["int8_agreement"] < 0.99 and metrics["model"].startswith("mobilenetv3"):
        # measured on the 1-epoch mobilenetv3_small row: 97.6-97.8% with every calibration mode (naive, entropy,
        # percentile, 16-64 batches, first/last float); MobileNetV3 (hard-swish, SE) needs more than onnxruntime PTQ
        pytest.xfail(f"known gap: int8 agrees with fp32 on {acc['int8_agreement']:.2%} < 99% for {metrics['model']}")
    # cifar_resnet20_v1 (model_zoo_logs/quantization/benchmark.md, int8_schemes.md), agreement with fp32 top-1:
    #   Intel Xeon AVX-512 VNNI, auto = full-range: 99.69% (reduced-range forced: 99.67%), int8 top-1 94.53%
    #   AMD EPYC AVX2, auto = reduced-range: 7-bit sums never saturate int16, so the integers are those of the VNNI
    #   run: 99.67% expected; QEMU EPYC-Rome on the first 1000 test images gave the native numbers exactly (99.60%
    #   reduced-range, and 99.40% full-range too: this model's activations rarely meet saturating weight pairs)
    assert acc["int8_agreement"] >= 0.99, acc
