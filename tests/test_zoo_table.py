"""The zoo table: generated from model_zoo_logs, and the committed one agrees with the logs."""
from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("zoo_table", ROOT / "scripts" / "zoo_table.py")
zoo_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(zoo_table)


def test_committed_table_agrees_with_logs(capsys):
    """Fails when a row's files disagree, or MODEL_ZOO.md/.csv are stale: rerun scripts/zoo_table.py."""
    assert zoo_table.main(["--check"]) == 0, capsys.readouterr().err


COMMAND = "python scripts/classification/train.py --model m --dataset fashion-mnist"


def _row(logs: Path, task: str, name: str, top1: float, weights: bytes = b"weights", records=None) -> Path:
    folder = logs / task / name
    folder.mkdir(parents=True)
    sha = hashlib.sha256(weights).hexdigest()
    (folder / "m.safetensors").write_bytes(weights)
    (folder / "command.txt").write_text(f"OMP_WAIT_POLICY=PASSIVE {COMMAND}\n")
    (folder / "config.json").write_text(json.dumps({
        "args": {"model": "m", "dataset": "fashion-mnist"}, "num_params": 1234567,
        "env": {"command": COMMAND, "hardware": "CPU: test (1 thread)"}}))
    if records is None:
        records = [{"kind": "train", "loss": 1.0, "time": 100.0},
                   {"kind": "epoch", "epoch": 0, "val_top1": None, "val_top5": None, "epoch_time_s": 600.0, "time": 700.0},
                   {"kind": "epoch", "epoch": 1, "val_top1": top1 - 1, "val_top5": 98.0, "time": 1300.0},
                   {"kind": "epoch", "epoch": 2, "val_top1": top1 + 0.004, "val_top5": 99.0, "time": 4300.0}]
    (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "metrics.json").write_text(json.dumps({
        "model": "m", "dataset": "fashion-mnist", "top1": top1, "top5": 99.0, "num_params": 1234567,
        "epochs": 3, "hardware": "CPU: test (1 thread)", "wall_time_s": 4321.0, "sha256": sha}))
    (folder / "weights.sha256").write_text(f"{sha}  m.safetensors\n")
    return folder


def test_generate_then_check(tmp_path):
    row = _row(tmp_path, "classification", "m-fmnist", 94.25)
    _row(tmp_path, "classification", "m2-fmnist", 90.5, b"other")
    assert zoo_table.main(["--logs", str(tmp_path)]) == 0
    md = (tmp_path / "MODEL_ZOO.md").read_text()
    assert "| [m-fmnist](classification/m-fmnist/) | m | fashion-mnist | 94.25 | 99.00 | 1.23M | 3 | CPU: test (1 thread) | 72.0 min |" in md
    csv_lines = (tmp_path / "MODEL_ZOO.csv").read_text().splitlines()
    assert csv_lines[0].startswith("task,row,model,dataset,top1,top5") and len(csv_lines) == 3
    assert zoo_table.main(["--logs", str(tmp_path), "--check"]) == 0

    # The table is stale once a row changes ...
    metrics = json.loads((row / "metrics.json").read_text())
    (row / "metrics.json").write_text(json.dumps({**metrics, "wall_time_s": 10.0}))
    assert zoo_table.main(["--logs", str(tmp_path), "--check"]) == 1
    # ... and a number that the log does not back is refused outright.
    (row / "metrics.json").write_text(json.dumps({**metrics, "top1": 95.0}))
    with pytest.raises(zoo_table.ZooTableError, match="top1=95.0 but the log"):
        zoo_table.read_row(row)


def test_row_errors(tmp_path):
    row = _row(tmp_path, "classification", "r", 90.0)
    (row / "m.safetensors").write_bytes(b"tampered")
    with pytest.raises(zoo_table.ZooTableError, match="does not match"):
        zoo_table.read_row(row)
    (row / "m.safetensors").unlink()  # a large file is not committed: the sha alone is fine
    assert not zoo_table.read_row(row)["weights_committed"]
    (row / "weights.sha256").write_text("0" * 64 + "  m.safetensors\n")
    with pytest.raises(zoo_table.ZooTableError, match="differs from metrics.json"):
        zoo_table.read_row(row)
    (row / "command.txt").unlink()
    with pytest.raises(zoo_table.ZooTableError, match="missing command.txt"):
        zoo_table.read_row(row)
    assert zoo_table.main(["--logs", str(tmp_path), "--check"]) == 1


def _rewrite(folder: Path, name: str, **changes) -> None:
    data = json.loads((folder / name).read_text())
    (folder / name).write_text(json.dumps({**data, **changes}))


def test_every_number_must_be_backed_by_the_log(tmp_path):
    row = _row(tmp_path, "classification", "r", 90.0)
    zoo_table.read_row(row)
    # A score only the train records mention (no epoch/eval/final record): the row cannot be checked.
    _row(tmp_path, "nlp", "no-eval", 90.0, records=[{"kind": "train", "loss": 1.0, "top1": 90.0}])
    with pytest.raises(zoo_table.ZooTableError, match="top1=90.0 is in no final, eval or epoch record"):
        zoo_table.read_row(tmp_path / "nlp" / "no-eval")
    assert zoo_table.main(["--logs", str(tmp_path), "--check"]) == 1
    # Hand-edited counts are refused: epochs against the epoch records, num_params against config.json.
    _rewrite(row, "metrics.json", epochs=2.45)
    with pytest.raises(zoo_table.ZooTableError, match="epochs=2.45 but the log has 3 epoch records"):
        zoo_table.read_row(row)
    _rewrite(row, "metrics.json", epochs=3, num_params=99)
    with pytest.raises(zoo_table.ZooTableError, match="num_params=99 but config.json"):
        zoo_table.read_row(row)
    _rewrite(row, "metrics.json", num_params=1234567, wall_time_s=100.0)
    with pytest.raises(zoo_table.ZooTableError, match="wall_time_s=100.0 but the log spans 4200s"):
        zoo_table.read_row(row)
    _rewrite(row, "metrics.json", wall_time_s=4321.0, planned_epochs=10)
    with pytest.raises(zoo_table.ZooTableError, match="planned_epochs=10 is in no final"):
        zoo_table.read_row(row)


def test_resumed_run_counts_each_process_not_the_gap(tmp_path):
    """A run resumed at epoch 2 after a 10,000 s gap: its wall time is the two processes' spans; the steps the
    first process logged after its last checkpoint (killed mid-epoch) are not counted either."""
    records = [{"kind": "train", "epoch": 0, "step": 1, "time": 100.0},
               {"kind": "epoch", "epoch": 0, "step": 2, "epoch_time_s": 600.0, "time": 700.0},
               {"kind": "epoch", "epoch": 1, "step": 4, "time": 1300.0},
               {"kind": "train", "epoch": 2, "step": 5, "time": 1500.0},  # killed here, before epoch 2's checkpoint
               {"kind": "train", "epoch": 2, "step": 5, "time": 11500.0},
               {"kind": "epoch", "epoch": 2, "step": 6, "val_top1": 90.0, "val_top5": 99.0, "time": 11700.0}]
    row = _row(tmp_path, "classification", "resumed", 90.0, records=records)
    (row / "config-before-resume-epoch2.json").write_text("{}")
    _rewrite(row, "metrics.json", wall_time_s=1500.0)  # 1200 s + 200 s spans, plus the second start
    zoo_table.read_row(row)
    _rewrite(row, "metrics.json", wall_time_s=11600.0)  # the gap counted: refused
    with pytest.raises(zoo_table.ZooTableError, match="spans 1400s in 2 processes"):
        zoo_table.read_row(row)
    (row / "config-before-resume-epoch2.json").unlink()  # the repeated step alone also marks the new process
    _rewrite(row, "metrics.json", wall_time_s=1500.0)
    zoo_table.read_row(row)


def test_eval_and_final_records_are_checked(tmp_path):
    final = {"kind": "final", "top1": 80.0, "top5": 99.0, "num_params": 1234567, "epochs": 3,
             "wall_time_s": 4321.0}
    row = _row(tmp_path, "nlp", "evals", 80.0, records=[{"kind": "eval", "top1": 79.0, "top5": 98.0}, final])
    assert zoo_table.read_row(row)["scores"] == {"top1": 80.0, "top5": 99.0}
    _rewrite(row, "metrics.json", top1=79.0)  # the eval record's number, but the run's final record says 80
    with pytest.raises(zoo_table.ZooTableError, match="top1=79.0 but the log.s final record .line 2. says 80.0000"):
        zoo_table.read_row(row)
    row2 = _row(tmp_path, "nlp", "eval-only", 70.0, records=[
        {"kind": "eval", "val_top1": 70.0, "top5": 99.0, "time": 0.0}, {"kind": "eval", "top1": 71.0, "time": 4300.0}])
    with pytest.raises(zoo_table.ZooTableError, match="top1=70.0 but the log's eval record .line 2. says 71.0000"):
        zoo_table.read_row(row2)


def test_config_must_come_from_the_run(tmp_path):
    row = _row(tmp_path, "classification", "r", 90.0)
    _rewrite(row, "config.json", env={"command": "python scripts/other.py", "hardware": "CPU: test (1 thread)"})
    with pytest.raises(zoo_table.ZooTableError, match="command is not in command.txt"):
        zoo_table.read_row(row)
    _rewrite(row, "config.json", env={"command": COMMAND, "hardware": "CPU: test (1 thread)",
                                      "git_commit": zoo_table.subprocess.run(
                                          ["git", "-C", str(ROOT), "rev-list", "--max-parents=0", "HEAD"],
                                          capture_output=True, text=True).stdout.split()[-1]})
    # the repository's first commit has no scripts/classification/train.py
    with pytest.raises(zoo_table.ZooTableError, match="has no scripts/classification/train.py"):
        zoo_table.read_row(row)
    _rewrite(row, "config.json", env={"command": COMMAND, "hardware": "CPU: other"})
    with pytest.raises(zoo_table.ZooTableError, match="hardware="):
        zoo_table.read_row(row)


def test_family_model_flag_names_the_run(tmp_path):
    """--model fcn --backbone b --dataset d (GluonCV's segmentation flags) trains the model fcn_b_d."""
    row = _row(tmp_path, "segmentation", "r", 90.0)
    _rewrite(row, "config.json", args={"model": "m", "backbone": "b", "dataset": "fashion-mnist"})
    _rewrite(row, "metrics.json", model="m_b_fashion-mnist")
    assert zoo_table.read_row(row)["metrics"]["model"] == "m_b_fashion-mnist"
    _rewrite(row, "metrics.json", model="m_other_fashion-mnist")
    with pytest.raises(zoo_table.ZooTableError, match="model='m_other_fashion-mnist' but config.json says 'm'"):
        zoo_table.read_row(row)


def test_a_folder_without_metrics_is_not_skipped(tmp_path):
    _row(tmp_path, "classification", "r", 90.0)
    (tmp_path / "classification" / "half-done").mkdir()
    (tmp_path / "classification" / "half-done" / "log.jsonl").write_text("")
    assert zoo_table.main(["--logs", str(tmp_path), "--check"]) == 1
    with pytest.raises(zoo_table.ZooTableError, match="half-done: missing command.txt"):
        zoo_table.collect(tmp_path)


def test_release_assets_layout(tmp_path):
    _row(tmp_path / "logs", "classification", "r", 90.0, b"abc")
    out = tmp_path / "assets"
    assert zoo_table.main(["--logs", str(tmp_path / "logs"), "--release-assets", str(out)]) == 0
    sha = hashlib.sha256(b"abc").hexdigest()
    assert (out / f"m-{sha[:8]}.safetensors").read_bytes() == b"abc"
    assert (out / "SHA256SUMS").read_text() == f"{sha}  m-{sha[:8]}.safetensors\n"
    (tmp_path / "logs" / "classification" / "r" / "m.safetensors").unlink()
    assert zoo_table.main(["--logs", str(tmp_path / "logs"), "--release-assets", str(out)]) == 1


def test_converted_entries_are_marked_and_numbers_are_torchvisions():
    pytest.importorskip("torchvision")
    import torchvision

    md = (ROOT / "model_zoo_logs" / "MODEL_ZOO.md").read_text()
    assert "numbers published by torchvision, not measured here" in md
    acc = torchvision.models.ResNet50_Weights.IMAGENET1K_V2.meta["_metrics"]["ImageNet-1K"]["acc@1"]
    assert f"| resnet50_v1b | `torchvision:IMAGENET1K_V2` (`torchvision`, DEFAULT) | ImageNet-1K | {acc} |" in md
