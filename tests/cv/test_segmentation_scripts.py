"""scripts/segmentation: exact resume, eval agreement, options; the fashion-scenes tutorial at tiny scale."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _seg_fixtures as fx  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "scripts" / "segmentation" / "train.py"
EVAL = ROOT / "scripts" / "segmentation" / "eval.py"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    return fx.make_scenes_like(tmp_path_factory.mktemp("seg") / "fashion_scenes", 8, 4, 48)


def _args(data: Path, save: Path, *extra: str) -> list[str]:
    return ["--model", "fcn", "--backbone", "resnet18_v1s", "--dataset", "fashion-scenes", "--data-dir", str(data),
            "--aux", "--base-size", "40", "--crop-size", "32", "--batch-size", "4", "--test-batch-size", "4",
            "--epochs", "2", "--lr", "0.01", "--num-threads", "1", "--no-progress", "--log-interval", "1",
            "--save-dir", str(save), *extra]


def test_resume_is_exact_and_eval_agrees(scenes, tmp_path):
    train = _load(TRAIN, "seg_train")
    # validation only after the last epoch: the first epoch's log line says so
    straight = train.main(_args(scenes, tmp_path / "a", "--val-interval", "2"))
    # validating after every epoch draws nothing from the training's random stream: same weights
    train.main(_args(scenes, tmp_path / "v", "--val-interval", "1"))
    wv = load_file(str(tmp_path / "v" / "fcn_resnet18_v1s_fashion-scenes.safetensors"))
    train.main(_args(scenes, tmp_path / "b", "--stop-after-epoch", "1", "--val-interval", "2"))
    assert not (tmp_path / "b" / "metrics.json").exists()
    epoch_line = (tmp_path / "b" / "train.log").read_text().splitlines()[-1]
    assert "[epoch 1/2]" in epoch_line and "no val" in epoch_line and "nan" not in epoch_line
    resumed = train.main(_args(scenes, tmp_path / "b", "--val-interval", "2", "--resume",
                               str(tmp_path / "b" / "checkpoint-last.pt")))
    wa = load_file(str(tmp_path / "a" / "fcn_resnet18_v1s_fashion-scenes.safetensors"))
    wb = load_file(str(tmp_path / "b" / "fcn_resnet18_v1s_fashion-scenes.safetensors"))
    assert wa.keys() == wb.keys() and all(bool((wa[k] == wb[k]).all()) for k in wa)
    assert all(bool((wa[k] == wv[k]).all()) for k in wa)
    assert straight["pixAcc"] == resumed["pixAcc"] and straight["mIoU"] == resumed["mIoU"]
    epochs = [json.loads(x) for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    epochs = [r for r in epochs if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [0, 1] and epochs[-1]["val_mIoU"] == pytest.approx(straight["mIoU"], abs=0.01)
    assert epochs[1]["lr"] < epochs[0]["lr"]  # poly decay
    # eval.py in val mode on the saved weights gives the training run's last validation numbers
    ev = _load(EVAL, "seg_eval")
    out = ev.main(["--model", "fcn", "--backbone", "resnet18_v1s", "--dataset", "fashion-scenes", "--data-dir",
                   str(scenes), "--aux", "--base-size", "40", "--crop-size", "32", "--weights",
                   str(tmp_path / "a" / "fcn_resnet18_v1s_fashion-scenes.safetensors"), "--eval", "--mode", "val",
                   "--no-progress"])
    assert out["pixAcc"] == straight["pixAcc"] and out["mIoU"] == straight["mIoU"]
    # train.py --eval from the checkpoint agrees too
    again = train.main(_args(scenes, tmp_path / "c", "--eval", "--resume", str(tmp_path / "a" / "checkpoint-last.pt")))
    assert round(again["mIoU"], 2) == straight["mIoU"]


def test_lraspp_final_multiscale_eval_and_predictions(scenes, tmp_path):
    train = _load(TRAIN, "seg_train2")
    res = train.main(["--model", "lraspp", "--backbone", "mobilenetv3_large", "--dataset", "fashion-scenes",
                      "--data-dir", str(scenes), "--base-size", "40", "--crop-size", "32", "--batch-size", "4",
                      "--epochs", "1", "--lr", "0.01", "--num-threads", "1", "--no-progress", "--save-dir",
                      str(tmp_path / "l"), "--final-eval", "--test-scales", "0.75,1.0", "--syncbn",
                      "--model-kwargs", '{"norm_momentum": 0.1}'])
    for k in ("pixAcc", "mIoU", "ss_pixAcc", "ss_mIoU", "ms_pixAcc", "ms_mIoU"):
        assert 0.0 <= res[k] <= 100.0
    assert res["kwargs"]["norm_momentum"] == 0.1
    # the run folder is a zoo row as it stands: its final log record backs every number of metrics.json
    config = json.loads((tmp_path / "l" / "config.json").read_text())
    assert config["num_classes"] == 11
    # (run in-process, so config.json names pytest's command line: make it the script's, as from a shell)
    config["env"]["command"] = "python scripts/segmentation/train.py --model lraspp"
    (tmp_path / "l" / "config.json").write_text(json.dumps(config))
    (tmp_path / "l" / "command.txt").write_text(config["env"]["command"] + "\n")
    zoo_table = _load(ROOT / "scripts" / "zoo_table.py", "zoo_table_seg")
    row = zoo_table.read_row(tmp_path / "l")
    assert row["scores"]["ms_mIoU"] == res["ms_mIoU"] and row["sha256"] == res["sha256"]
    final = [json.loads(x) for x in (tmp_path / "l" / "log.jsonl").read_text().splitlines()][-1]
    assert final["kind"] == "final" and final["ss_pixAcc"] == res["ss_pixAcc"]
    assert "plain BatchNorm kept" in (tmp_path / "l" / "train.log").read_text()
    ev = _load(EVAL, "seg_eval2")
    common = ["--model", "lraspp", "--backbone", "mobilenetv3_large", "--dataset", "fashion-scenes", "--data-dir",
              str(scenes), "--base-size", "40", "--crop-size", "32", "--weights",
              str(tmp_path / "l" / "lraspp_mobilenetv3_large_fashion-scenes.safetensors"), "--no-progress"]
    ms = ev.main([*common, "--eval", "--ms", "--test-scales", "0.75,1.0"])
    assert (ms["pixAcc"], ms["mIoU"]) == (res["ms_pixAcc"], res["ms_mIoU"])
    ev.main([*common, "--outdir", str(tmp_path / "pred")])
    assert len(list((tmp_path / "pred").glob("*.png"))) == 4


def test_script_errors_are_clear(scenes, tmp_path):
    train = _load(TRAIN, "seg_train3")
    with pytest.raises(SystemExit, match="takes a ResNet backbone"):
        train.main(_args(scenes, tmp_path / "x", "--backbone", "mobilenetv3_large"))
    with pytest.raises(SystemExit, match="--eval needs"):
        train.main(_args(scenes, tmp_path / "y", "--eval"))
    with pytest.raises(SystemExit, match="no full batch"):
        train.main(_args(scenes, tmp_path / "z", "--batch-size", "64"))


@pytest.mark.slow
def test_tutorial_runs_tiny(tmp_path):
    from toolkit.cv.data import FashionMNIST, MissingDatasetError

    try:
        FashionMNIST(train=False)
    except MissingDatasetError:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1", "TOOLKIT_DATA": str(tmp_path / "data"),
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, str(ROOT / "tutorials" / "segmentation_fashion_scenes.py"), "--tiny",
                           "--out", str(tmp_path / "out")], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(x) for x in (tmp_path / "out" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [0, 1]
    png = (tmp_path / "out" / "overlay.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5_000
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert 0.0 <= result["mIoU"] <= 100.0 and 0.0 <= result["pixAcc"] <= 100.0


@pytest.mark.slow
def test_torchrun_two_processes(scenes, tmp_path):
    """DDP on CPU (gloo): 2 processes train, rank 0 writes the outputs once."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    args = _args(scenes, tmp_path / "ddp", "--epochs", "1", "--batch-size", "2")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(TRAIN), *args], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert "x2 processes" in metrics["hardware"]
    config = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert config["world_size"] == 2 and config["steps_per_epoch"] == 2  # 8 images / (2 processes x 2)
