"""The uint8-friendly rewrites static quantization applies first (toolkit.deploy._int8_rewrite)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from toolkit.deploy import load, quantize
from toolkit.deploy._int8_rewrite import REWRITES, float_output_nodes, uint8_friendly
from toolkit.deploy.preprocess import preprocess_image
from toolkit.nn import HybridBlock

GAP, HSIG = REWRITES


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def _graph(nodes, inits, out_shape, opset=18) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model)


def _mobile_block(opset: int = 18) -> onnx.ModelProto:
    """Depthwise conv -> HardSwish as the exporter writes it (x * HardSigmoid(x)) -> squeeze-excite."""
    rng = np.random.default_rng(0)
    w = lambda *s: numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), f"w{len(s)}_{s[0]}_{s[1]}")  # noqa: E731
    dw, fc = w(4, 1, 3, 3), w(4, 4, 1, 1)
    axes = numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "axes")
    mean = (helper.make_node("ReduceMean", ["h", "axes"], ["m"], keepdims=1) if opset >= 18
            else helper.make_node("ReduceMean", ["h"], ["m"], axes=[2, 3], keepdims=1))
    nodes = [
        helper.make_node("Conv", ["x", dw.name], ["c"], group=4, pads=[1, 1, 1, 1], name="dw"),
        helper.make_node("HardSigmoid", ["c"], ["hs"], alpha=1 / 6, beta=0.5, name="hsig"),
        helper.make_node("Mul", ["c", "hs"], ["h"], name="hswish"),
        mean,
        helper.make_node("Conv", ["m", fc.name], ["f"], name="fc"),
        helper.make_node("HardSigmoid", ["f"], ["gate"], alpha=0.2, beta=0.5, name="gate"),  # ONNX default alpha
        helper.make_node("Mul", ["h", "gate"], ["y"], name="scale"),
    ]
    return _graph(nodes, [dw, fc] + ([axes] if opset >= 18 else []), [1, 4, 6, 6], opset)


@pytest.mark.parametrize("opset", [13, 18])  # ReduceMean's axes: an attribute before opset 18, an input since
def test_rewrites_are_exact_and_counted(opset):
    model = _mobile_block(opset)
    x = np.random.default_rng(1).standard_normal((1, 4, 6, 6)).astype(np.float32) * 4  # past HardSigmoid's knees
    ref = _run(model, x)
    counts = uint8_friendly(model)
    assert counts == {GAP: 1, HSIG: 2}
    onnx.checker.check_model(model, full_check=True)
    ops = [n.op_type for n in model.graph.node]
    assert "HardSigmoid" not in ops and "ReduceMean" not in ops and ops.count("GlobalAveragePool") == 1
    assert ops.count("Clip") == 2 and len({n.name for n in model.graph.node}) == len(ops)  # names stay unique
    read = {name for n in model.graph.node for name in n.input}
    assert all(i.name in read for i in model.graph.initializer)  # ReduceMean's axes go (onnxruntime warns otherwise)
    np.testing.assert_allclose(_run(model, x), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mean", [
    dict(axes=[2, 3], keepdims=0),  # drops H and W: not a GlobalAveragePool
    dict(axes=[1, 2, 3], keepdims=1),  # channels too
    dict(axes=[3], keepdims=1),
])
def test_other_means_are_left_alone(mean):
    model = _graph([helper.make_node("ReduceMean", ["x"], ["y"], **mean)], [],
                   None, opset=13)
    before = model.SerializeToString()
    assert uint8_friendly(model) == {GAP: 0, HSIG: 0}
    assert model.SerializeToString() == before


def test_negative_axes_count_as_h_and_w():
    model = _graph([helper.make_node("ReduceMean", ["x"], ["y"], axes=[-1, -2], keepdims=1)], [], [1, 4, 1, 1], 13)
    assert uint8_friendly(model)[GAP] == 1


def test_old_opsets_are_left_alone():
    model = _mobile_block(13)
    model.opset_import[0].version = 12
    assert uint8_friendly(model) == {GAP: 0, HSIG: 0}


class MobileTiny(HybridBlock):
    """A MobileNetV3-style classifier (HardSwish, depthwise conv, squeeze-excite) with the vision metadata."""

    input_names = ("data",)
    output_names = ("logits",)

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.Hardswish())
        self.dw = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.BatchNorm2d(16), nn.Hardswish())
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(16, 8, 1), nn.ReLU(), nn.Conv2d(8, 16, 1),
                                nn.Hardsigmoid())
        self.head = nn.Sequential(nn.Conv2d(16, 24, 1), nn.Hardswish(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(24, 10))
        self.metadata.update({
            "name": "mobiletiny", "task": "classification", "input_shape": [3, 32, 32],
            "classes": [f"class{i}" for i in range(10)],
            "preprocessing": {"type": "image", "layout": "NCHW", "color": "RGB", "resize": 37, "crop": [32, 32],
                              "interpolation": "bilinear", "scale": 255.0, "mean": [0.485, 0.456, 0.406],
                              "std": [0.229, 0.224, 0.225]},
        })

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        x = self.dw(self.stem(data))
        return self.head(x * self.se(x))


@pytest.fixture(scope="module")
def mobile_export(tmp_path_factory):
    torch.manual_seed(0)
    prefix = tmp_path_factory.mktemp("mobile") / "mobile"
    MobileTiny().eval().export(prefix)
    return prefix


@pytest.mark.slow  # exports a model (tens of seconds on a loaded 2-core machine)
def test_quantize_keeps_mobilenet_blocks_in_uint8(mobile_export, photos, tmp_path):
    calib = tmp_path / "calib"
    calib.mkdir()
    for p in photos:
        shutil.copy(p, calib / p.name)
    outs = {}
    for rewrites in (False, True):
        out = tmp_path / f"mobile-{rewrites}"
        report = quantize(mobile_export, calib=str(calib), num_calib_batches=2, batch_size=2, latency_repeats=2,
                          out=out, graph_rewrites=rewrites)
        outs[rewrites] = out
        ops = [n.op_type for n in onnx.load(f"{out}.onnx").graph.node]
        if rewrites:
            # 3 HardSwish + the SE gate; the SE pool and the head's pool
            assert report["graph_rewrites"] == {GAP: 2, HSIG: 4}
            assert "HardSigmoid" not in ops and "ReduceMean" not in ops
            assert report["float_output_nodes"] == []  # the classifier's Gemm stays int8
            assert json.loads(open(f"{out}.json").read())["quantization"]["graph_rewrites"] == report["graph_rewrites"]
        else:
            assert "graph_rewrites" not in report and "HardSigmoid" in ops
    # every op between the convolutions runs on a uint8 kernel: onnxruntime's optimised int8 graph has no
    # float HardSigmoid/ReduceMean left, and fewer float<->uint8 conversions than the old recipe's
    def optimised_ops(prefix):
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(tmp_path / f"{prefix.name}-opt.onnx")
        ort.InferenceSession(f"{prefix}.onnx", options, providers=["CPUExecutionProvider"])
        return [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]

    old, new = optimised_ops(outs[False]), optimised_ops(outs[True])
    assert "HardSigmoid" in old and "HardSigmoid" not in new and "ReduceMean" not in new
    conversions = lambda ops: sum(op in ("QuantizeLinear", "DequantizeLinear") for op in ops)  # noqa: E731
    assert conversions(new) < conversions(old)
    # and it still computes the model: int8 within the bound test_quantize.py uses for the old recipe
    meta = load(mobile_export).metadata
    batch = np.stack([preprocess_image(p, meta, [3, 32, 32]) for p in photos])
    ref = load(mobile_export)(batch)
    for out in outs.values():
        got = load(out)(batch)
        assert np.abs(got - ref).max() <= 0.1 * np.abs(ref).max() + 1e-3


def test_float_output_nodes_are_the_non_compute_writers_of_outputs():
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 4, 1, 1)).astype(np.float32), "w")
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], dtype=np.float32), "scales")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Resize", ["c", "", "scales"], ["y"], mode="linear", name="upsample")]
    model = _graph(nodes, [w, scales], [1, 4, 12, 12])
    assert float_output_nodes(model) == ["upsample"]
    model = _graph(nodes[:1], [w], [1, 4, 6, 6])  # a graph that ends in a Conv keeps it int8
    model.graph.node[0].output[0] = "y"
    assert float_output_nodes(model) == []
