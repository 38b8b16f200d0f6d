"""Export to ONNX + metadata, and running the export with toolkit.deploy.load."""
import json
import shutil

import numpy as np
import pytest
import torch

from toolkit.deploy import ExportError, load, read_metadata

from .test_hybridize import SmallCNN, TinyEncoder


@pytest.fixture(scope="module")
def exported_cnn(tmp_path_factory):
    torch.manual_seed(0)
    net = SmallCNN().eval()
    net.metadata.update(task="classification", classes=list("abcde"))
    prefix = tmp_path_factory.mktemp("export") / "cnn"
    meta = net.export(str(prefix))
    return net, prefix, meta


def test_export_writes_graph_and_metadata(exported_cnn):
    _, prefix, meta = exported_cnn
    assert prefix.with_suffix(".onnx").is_file()
    on_disk = json.loads(prefix.with_suffix(".json").read_text())
    assert on_disk == json.loads(json.dumps(meta))
    assert meta["model"] == "small_cnn" and meta["task"] == "classification"
    assert meta["classes"] == list("abcde")
    assert meta["inputs"] == [{"name": "x", "dtype": "float32", "shape": ["batch", 3, 12, 12]}]
    assert meta["outputs"] == [{"name": "output", "dtype": "float32", "shape": ["batch", 5]}]
    assert len(meta["sha256"]) == 64 and meta["toolkit_version"]


@pytest.mark.parametrize("batch", [1, 4, 9])
def test_loaded_graph_equals_eager(exported_cnn, batch):
    net, prefix, _ = exported_cnn
    block = load(prefix)
    x = torch.randn(batch, 3, 12, 12)
    with torch.no_grad():
        ref = net(x)
    out = block(x)
    assert isinstance(out, torch.Tensor)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    out_np = block(x.numpy())
    assert isinstance(out_np, np.ndarray)
    np.testing.assert_allclose(out_np, ref.numpy(), atol=1e-5, rtol=1e-5)


def test_text_block_exports_with_dynamic_batch_and_sequence(tmp_path):
    torch.manual_seed(0)
    net = TinyEncoder().eval()
    meta = net.export(str(tmp_path / "enc"), input_names=["tokens", "mask"], output_names=["hidden", "pooled"])
    assert meta["inputs"][0]["shape"] == ["batch", "seq"]
    assert meta["outputs"][0]["shape"][:2] == ["batch", "seq"]
    block = load(tmp_path / "enc")
    for batch, seq in ((1, 4), (3, 13)):
        tokens = torch.randint(0, 50, (batch, seq))
        mask = torch.ones(batch, seq, dtype=torch.bool)
        with torch.no_grad():
            ref = net(tokens, mask)
        for got, want in zip(block(tokens, mask=mask), ref):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_wrong_input_shape_is_a_clear_error(exported_cnn):
    _, prefix, _ = exported_cnn
    block = load(prefix)
    with pytest.raises(ExportError, match=r"shape \[2, 3, 10, 12\]"):
        block(torch.randn(2, 3, 10, 12))
    with pytest.raises(ExportError, match="missing inputs"):
        block()
    with pytest.raises(ExportError, match="unknown input"):
        block(torch.randn(2, 3, 12, 12), y=1)


def test_corrupt_graph_is_detected(exported_cnn, tmp_path):
    _, prefix, _ = exported_cnn
    data = bytearray(prefix.with_suffix(".onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "bad.onnx").write_bytes(bytes(data))
    meta = json.loads(prefix.with_suffix(".json").read_text())
    meta["onnx_file"] = "bad.onnx"
    (tmp_path / "bad.json").write_text(json.dumps(meta))
    with pytest.raises(ExportError, match="corrupt"):
        load(tmp_path / "bad")


def test_missing_or_malformed_metadata(exported_cnn, tmp_path):
    with pytest.raises(ExportError, match="not found"):
        load(tmp_path / "nothing")
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(ExportError, match="not valid JSON"):
        read_metadata(tmp_path / "m")
    (tmp_path / "m.json").write_text(json.dumps({"format": "toolkit-export/1"}))
    with pytest.raises(ExportError, match="lacks"):
        read_metadata(tmp_path / "m")


def test_metadata_that_does_not_match_graph(exported_cnn, tmp_path):
    _, prefix, _ = exported_cnn
    meta = json.loads(prefix.with_suffix(".json").read_text())
    meta["inputs"][0]["name"] = "image"
    shutil.copy(prefix.with_suffix(".onnx"), tmp_path / "mm.onnx")  # onnx_file must be a name beside the JSON
    meta["onnx_file"] = "mm.onnx"
    (tmp_path / "mm.json").write_text(json.dumps(meta))
    with pytest.raises(ExportError, match="do not match"):
        load(tmp_path / "mm")
