"""The classification training/eval scripts: exact resume, DDP parity, options, eval agreement."""
from __future__ import annotations

import gzip
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "scripts" / "classification" / "train.py"
EVAL = ROOT / "scripts" / "classification" / "eval.py"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _idx(arr: np.ndarray) -> bytes:
    return bytes([0, 0, 8, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape) + arr.tobytes()


@pytest.fixture(scope="module")
def tiny_mnist(tmp_path_factory) -> Path:
    """64 training and 32 test 28x28 images whose class is a bright square's position (learnable)."""
    root = tmp_path_factory.mktemp("tiny_mnist")
    rng = np.random.default_rng(0)
    for split, n in (("train", 64), ("t10k", 32)):
        labels = rng.integers(0, 4, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            r, q = divmod(int(c), 2)
            images[i, 4 + 12 * r: 12 + 12 * r, 4 + 12 * q: 12 + 12 * q] = 250
        (root / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(images)))
        (root / f"{split}-labels-idx1-ubyte").write_bytes(_idx(labels))
    return root


def _args(data: Path, save: Path, *extra: str) -> list[str]:
    return ["--model", "cifar_resnet20_v1", "--dataset", "mnist", "--data-dir", str(data), "--batch-size", "16",
            "--num-epochs", "2", "--lr", "0.05", "--warmup-epochs", "0.5", "--no-progress", "--log-interval", "2",
            "--num-threads", "1", "--save-dir", str(save), "--eval-batch-size", "32", *extra]


def _weights(folder: Path) -> dict:
    return load_file(str(folder / "cifar_resnet20_v1.safetensors"))


def test_resume_is_exact(tiny_mnist, tmp_path):
    train = _load(TRAIN, "train_script")
    straight = train.main(_args(tiny_mnist, tmp_path / "a"))
    train.main(_args(tiny_mnist, tmp_path / "b", "--stop-after-epoch", "1"))
    assert not (tmp_path / "b" / "metrics.json").exists()  # stopped, not finished
    resumed = train.main(_args(tiny_mnist, tmp_path / "b", "--resume-from", str(tmp_path / "b" / "checkpoint-epoch1.pt")))
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert wa.keys() == wb.keys()
    for k in wa:  # bit-identical: augmentation RNG, sampler order, optimizer and schedule all resumed
        assert (wa[k] == wb[k]).all(), k
    assert straight["sha256"] == resumed["sha256"]
    assert straight["top1"] == resumed["top1"]

    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert {"top1", "top5", "num_params", "wall_time_s", "hardware", "dataset", "sha256"} <= metrics.keys()
    assert metrics["num_params"] == sum(v.numel() for v in wa.values() if v.dtype.is_floating_point) - sum(
        v.numel() for k, v in wa.items() if "running" in k)
    sha_line = (tmp_path / "a" / "weights.sha256").read_text().split()
    assert sha_line == [metrics["sha256"], "cifar_resnet20_v1.safetensors"]
    records = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [0, 1] and epochs[-1]["val_top1"] == pytest.approx(metrics["top1"], abs=0.01)
    assert all({"loss", "lr", "train_acc", "throughput", "time"} <= r.keys() for r in records)
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["args"]["num_epochs"] == 2 and config["metadata"]["preprocessing"]["color"] == "L"
    # The log of the resumed run continues the stopped one: two epochs, in order.
    resumed_epochs = [json.loads(x)["epoch"] for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()
                      if '"epoch", ' in x or '"kind": "epoch"' in x]
    assert resumed_epochs == [0, 1]

    # eval.py feeds the model as its stored metadata says and must agree with training's numbers.
    ev = _load(EVAL, "eval_script")
    out = ev.main(["--model", "cifar_resnet20_v1", "--weights", str(tmp_path / "a" / "cifar_resnet20_v1.safetensors"),
                   "--dataset", "mnist", "--data-dir", str(tiny_mnist), "--num-threads", "1"])
    assert out["top1"] == metrics["top1"] and out["samples"] == 32


def test_resume_with_another_schedule_length(tiny_mnist, tmp_path):
    """Stopping after the warmup epoch of a 5-epoch run and resuming with --num-epochs 3 equals a
    3-epoch run: the resumed schedule follows the new flags, not the checkpoint's."""
    train = _load(TRAIN, "train_script4")
    flags = ("--warmup-epochs", "1", "--val-interval", "1")
    train.main(_args(tiny_mnist, tmp_path / "a", "--num-epochs", "3", *flags))
    train.main(_args(tiny_mnist, tmp_path / "b", "--num-epochs", "5", "--stop-after-epoch", "1", *flags))
    train.main(_args(tiny_mnist, tmp_path / "b", "--num-epochs", "3", *flags,
                     "--resume-from", str(tmp_path / "b" / "checkpoint-epoch1.pt")))
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    for k in wa:
        assert (wa[k] == wb[k]).all(), k
    lrs = [[json.loads(x)["lr"] for x in (tmp_path / d / "log.jsonl").read_text().splitlines()] for d in "ab"]
    assert lrs[0] == lrs[1]
    assert json.loads((tmp_path / "b" / "config.json").read_text())["args"]["num_epochs"] == 3
    assert json.loads((tmp_path / "b" / "config-before-resume-epoch1.json").read_text())["args"]["num_epochs"] == 5


def test_hybridized_resume_is_exact_without_autotune(tiny_mnist, tmp_path, monkeypatch):
    """--hybridize --no-autotune trains through the captured graph with aten's kernels, so a resumed
    run (which captures and would re-time anew) is bit-identical to an uninterrupted one."""
    from toolkit.nn import autotune

    def never(*_args, **_kwargs):
        raise AssertionError("--no-autotune must not time kernels")

    autotune.clear_cache()
    monkeypatch.setattr(autotune, "_measure", never)
    train = _load(TRAIN, "train_script5")
    flags = ("--hybridize", "--no-autotune")
    straight = train.main(_args(tiny_mnist, tmp_path / "a", *flags))
    train.main(_args(tiny_mnist, tmp_path / "b", "--stop-after-epoch", "1", *flags))
    resumed = train.main(_args(tiny_mnist, tmp_path / "b", *flags,
                               "--resume-from", str(tmp_path / "b" / "checkpoint-epoch1.pt")))
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    for k in wa:
        assert (wa[k] == wb[k]).all(), k
    assert straight["sha256"] == resumed["sha256"]


def test_learns_and_options_run(tiny_mnist, tmp_path):
    """mixup, label smoothing, no-wd, distillation from a trained teacher and the multi-scale VBS sampler."""
    train = _load(TRAIN, "train_script2")
    teacher = train.main(_args(tiny_mnist, tmp_path / "teacher", "--num-epochs", "4", "--lr", "0.1", "--hybridize"))
    assert teacher["top1"] > 40.0  # 4 classes: chance is 25%
    out = train.main(_args(tiny_mnist, tmp_path / "student", "--num-epochs", "1", "--mixup", "--label-smoothing", "0.1",
                           "--no-wd", "--teacher", "cifar_resnet20_v1", "--teacher-weights",
                           str(tmp_path / "teacher" / "cifar_resnet20_v1.safetensors"), "--temperature", "4",
                           "--sampler", "multiscale-vbs", "--num-scales", "3"))
    assert 0.0 <= out["top1"] <= 100.0
    logged = [json.loads(x) for x in (tmp_path / "student" / "log.jsonl").read_text().splitlines()]
    assert any(r["kind"] == "epoch" for r in logged)


def test_unsupported_option_is_a_clear_error(tiny_mnist, tmp_path):
    train = _load(TRAIN, "train_script3")
    with pytest.raises(SystemExit, match="does not take"):
        train.main(_args(tiny_mnist, tmp_path / "x", "--model-kwargs", '{"no_such_option": 1}'))


@pytest.mark.slow
def test_ddp_two_processes_match_one(tiny_mnist, tmp_path):
    """torchrun with 2 CPU processes x batch 8 == 1 process x batch 16.

    DistributedSampler strides one global permutation over the ranks, so the two
    ranks' batches together are the single process's batch, and DDP averages the
    gradients of the two per-rank mean losses, which is the mean loss of the
    combined batch. BatchNorm would break the equality (per-process batch
    statistics; SyncBatchNorm needs CUDA), so the model uses GroupNorm, which
    normalises each sample on its own. Augmentation is off: its random streams
    differ per process.
    """
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    common = ["--norm-layer", "group", "--no-augment", "--num-epochs", "1"]
    single = _args(tiny_mnist, tmp_path / "one", *common)
    single[single.index("--batch-size") + 1] = "16"
    double = _args(tiny_mnist, tmp_path / "two", *common)
    double[double.index("--batch-size") + 1] = "8"
    subprocess.run([sys.executable, str(TRAIN), *single], check=True, env=env, capture_output=True, timeout=300)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(TRAIN), *double],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    w1, w2 = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    start = load_file(str(tmp_path / "one" / "cifar_resnet20_v1.safetensors"))  # same keys
    assert w1.keys() == w2.keys() == start.keys()
    for k in w1:
        np.testing.assert_allclose(w1[k].numpy(), w2[k].numpy(), rtol=1e-4, atol=1e-5, err_msg=k)
    m2 = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert "x2 processes" in m2["hardware"]


@pytest.mark.slow
def test_tutorial_runs_tiny(tmp_path):
    """tutorials/classification_fashion_mnist.py at small scale: log, curves PNG, exported graph."""
    from toolkit.cv.data import FashionMNIST, MissingDatasetError

    try:
        FashionMNIST(train=False)
    except MissingDatasetError:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1", "TOOLKIT_TUTORIAL_TINY": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, str(ROOT / "tutorials" / "classification_fashion_mnist.py"),
                           "--out", str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1]
    png = (tmp_path / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert (tmp_path / "fashion_mnist.onnx").is_file()
    diff = float(proc.stdout.strip().rsplit("=", 1)[1])
    assert diff < 1e-4


def test_plot_rejects_logs_without_epochs(tmp_path):
    from toolkit.cv.utils import plot_training_curves

    (tmp_path / "log.jsonl").write_text('{"kind": "train", "loss": 1.0}\n')
    with pytest.raises(ValueError, match="no epoch record"):
        plot_training_curves(tmp_path / "log.jsonl", tmp_path / "x.png")
    (tmp_path / "log.jsonl").write_text('{"kind": "epoch"\n')
    with pytest.raises(ValueError, match=":1: not valid JSON"):
        plot_training_curves(tmp_path / "log.jsonl", tmp_path / "x.png")
