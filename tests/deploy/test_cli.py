"""`toolkit export / predict` from the command line, and their errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from _deploy_helpers import REPO, TinyNet
from toolkit.deploy import load, predict
from toolkit.deploy.cli import main
from toolkit.deploy.preprocess import preprocess_image


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_input_size_moves_crop_and_keeps_the_resize_ratio():
    from toolkit.deploy.cli import build_model

    block = build_model("mobilenetv3_small", classes=5, input_size=[96])
    assert block.metadata["input_shape"] == [3, 96, 96]
    assert block.metadata["preprocessing"]["crop"] == [96, 96]
    assert block.metadata["preprocessing"]["resize"] == 110  # 256 * 96 / 224 = 109.7: the zoo's ratio kept
    with pytest.raises(SystemExit):
        main(["export", "mobilenetv3_small", "--out", "x", "--input-size", "0"])


def test_predict_json_format(tiny_export, photos, capsys):
    code, out, _ = run_cli(capsys, "predict", tiny_export, *photos[:2], "--json", "--topk", "3")
    assert code == 0
    results = json.loads(out)
    assert [r["input"] for r in results] == [str(p) for p in photos[:2]]
    for r in results:
        assert set(r) == {"input", "topk"} and len(r["topk"]) == 3
        probs = [t["prob"] for t in r["topk"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-9
        assert all(t["label"] == f"class{t['index']}" for t in r["topk"])
    # the same numbers as the model on the same preprocessed tensor
    meta = json.loads(tiny_export.with_suffix(".json").read_text())
    logits = load(tiny_export)(preprocess_image(photos[0], meta, [3, 32, 32])[None])[0]
    assert results[0]["topk"][0]["index"] == int(np.argmax(logits))


def test_predict_plain_text_and_python_api(tiny_export, photos, capsys):
    code, out, _ = run_cli(capsys, "predict", tiny_export, photos[0], "--topk", "2")
    assert code == 0 and out.startswith(f"{photos[0]}:") and out.count("class") == 2
    api = predict(tiny_export, [photos[0]], k=2, with_logits=True)
    assert len(api[0]["logits"]) == 10


def test_export_a_training_checkpoint(tmp_path, capsys, photos):
    """The classification script's safetensors (header: model + metadata JSON) exports without extra flags."""
    from toolkit.zoo import get_model, save_weights

    torch.manual_seed(0)
    model = get_model("cifar_resnet20_v1", classes=10, in_channels=1)
    model.metadata.update({
        "input_shape": [1, 28, 28], "classes": [f"c{i}" for i in range(10)],
        "preprocessing": {"type": "image", "layout": "NCHW", "color": "L", "resize": 0, "crop": [28, 28],
                          "interpolation": "bilinear", "scale": 255.0, "mean": [0.286], "std": [0.353]},
    })
    ckpt = tmp_path / "cifar_resnet20_v1.safetensors"
    # the header as scripts/classification/train.py writes it: one key, JSON {model, dataset, metadata}
    header = {"toolkit": json.dumps({"model": "cifar_resnet20_v1", "dataset": "fashion-mnist", "metadata": model.metadata})}
    save_weights(model, ckpt, metadata=header)
    prefix = tmp_path / "ck"
    code, out, err = run_cli(capsys, "export", ckpt, "--out", prefix)
    assert code == 0 and "wrote" in out, err
    meta = json.loads(prefix.with_suffix(".json").read_text())
    assert meta["model"] == "cifar_resnet20_v1" and meta["task"] == "classification"
    assert meta["preprocessing"]["color"] == "L" and meta["classes"][3] == "c3"
    assert meta["inputs"][0]["shape"] == ["batch", 1, 28, 28] and meta["outputs"][0]["shape"] == ["batch", 10]
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)  # dynamic batch: 3 != 2
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(load(prefix)(x), ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize(
    "args, message",
    [
        (["export", "resnet_nope", "--out", "{tmp}/x"], "unknown model name"),
        (["export", "cifar_resnet20_v1", "--out", "{tmp}/x", "--pretrained", "deadbeef"], "no weights tagged"),
        (["predict", "{tmp}/missing", "{photo}"], "not found"),
        (["export", "{tmp}/bad.safetensors", "--out", "{tmp}/x"], "not a readable safetensors"),
        (["export", "{tmp}/noname.pt", "--out", "{tmp}/x"], "does not record its model name"),
        (["export", "{tmp}/noname.pt", "--model", "cifar_resnet20_v1", "--out", "{tmp}/x"], "does not fit"),
        (["export", "{tmp}/pickle.pt", "--out", "{tmp}/x"], "cannot be read as a torch checkpoint"),
    ],
)
def test_cli_errors_are_one_line_and_exit_1(tmp_path, capsys, photos, args, message):
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 10)
    torch.save({"model": {"w": torch.zeros(2)}, "epoch": 1}, tmp_path / "noname.pt")
    torch.save({"model": object()}, tmp_path / "pickle.pt")  # needs unpickling code: refused by weights_only
    args = [a.format(tmp=tmp_path, photo=photos[0]) for a in args]
    code, out, err = run_cli(capsys, *args)
    assert code == 1 and out == ""
    assert err.startswith("toolkit: error:") and message in err


def test_predict_rejects_corrupt_graph_mismatched_json_bad_image_and_other_tasks(tiny_copy, photos, tmp_path, capsys):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    code, _, err = run_cli(capsys, "predict", tiny_copy, junk)
    assert code == 1 and "cannot read image" in err

    meta_path = tiny_copy.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "task": "question_answering"}))
    code, _, err = run_cli(capsys, "predict", tiny_copy, photos[0])
    assert code == 1 and "does not yet support task 'question_answering'" in err

    meta_path.write_text(json.dumps({**meta, "input_shape": [3, 48, 48],
                                     "preprocessing": {**meta["preprocessing"], "crop": [48, 48], "resize": 50}}))
    code, _, err = run_cli(capsys, "predict", tiny_copy, photos[0])
    assert code == 1 and "graph takes" in err  # preprocessing gives 48x48, the graph takes 32x32

    meta_path.write_text(json.dumps({**meta, "inputs": [{**meta["inputs"][0], "name": "images"}]}))
    code, _, err = run_cli(capsys, "predict", tiny_copy, photos[0])
    assert code == 1 and "do not match the graph" in err

    meta_path.write_text(json.dumps(meta))
    graph = tiny_copy.with_suffix(".onnx")
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    code, _, err = run_cli(capsys, "predict", tiny_copy, photos[0])
    assert code == 1 and "corrupt" in err


def test_bad_command_line_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["predict", "x", "y", "--topk", "0"])
    assert info.value.code == 2


def test_python_dash_m_toolkit(tiny_export, photos):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-m", "toolkit", "predict", str(tiny_export), str(photos[1]), "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["input"] == str(photos[1])


def test_predict_with_the_openvino_runtime(tiny_export, photos, capsys):
    pytest.importorskip("openvino")
    code, out, _ = run_cli(capsys, "predict", tiny_export, *photos[:3], "--json", "--logits", "--runtime", "openvino")
    assert code == 0
    ov = json.loads(out)
    ort = predict(tiny_export, photos[:3], with_logits=True)
    for a, b in zip(ov, ort):
        assert [t["index"] for t in a["topk"]] == [t["index"] for t in b["topk"]]
        np.testing.assert_allclose(a["logits"], b["logits"], rtol=1e-4, atol=1e-5)
    with pytest.raises(Exception, match="unknown runtime"):
        predict(tiny_export, photos[:1], runtime="tensorrt")
