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


def _row(logs: Path, task: str, name: str, top1: float, weights: bytes = b"weights") -> Path:
    folder = logs / task / name
    folder.mkdir(parents=True)
    sha = hashlib.sha256(weights).hexdigest()
    (folder / "m.safetensors").write_bytes(weights)
    (folder / "command.txt").write_text("python train.py\n")
    (folder / "config.json").write_text("{}\n")
    (folder / "log.jsonl").write_text(json.dumps({"kind": "train", "loss": 1.0}) + "\n"
                                      + json.dumps({"kind": "epoch", "val_top1": top1 + 0.004, "val_top5": 99.0}) + "\n")
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
