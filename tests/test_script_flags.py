"""Issue 11: every reference script checks its flags up front and names the bad one (exit status 2).

The checks run before any data is read or model built (``scripts/common/validate.py``),
so these tests are fast: no dataset exists under the given folders.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = {
    "classification/train.py": ["--model", "cifar_resnet20_v1"],
    "classification/eval.py": ["--model", "cifar_resnet20_v1"],
    "text_classification/train_textcnn.py": [],
    "language_model/train_lm.py": [],
    "machine_translation/train_transformer.py": [],
    "bert/finetune_classifier.py": [],
    "bert/finetune_squad.py": [],
}


def _main(script: str):
    path = ROOT / "scripts" / script
    spec = importlib.util.spec_from_file_location(f"flags_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


def _refused(capsys, script: str, argv: list[str], flag: str, tmp_path: Path) -> str:
    before = set(tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as info:
        _main(script)([*SCRIPTS[script], *argv])
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    last = err.strip().splitlines()[-1]
    assert "error:" in last and flag in last, err
    assert "Traceback" not in err
    assert set(tmp_path.rglob("*")) == before, "files were written"
    return last


def _flags_of(script: str) -> set[str]:
    src = (ROOT / "scripts" / script).read_text()
    if "add_model_args" in src:
        src += (ROOT / "scripts" / "bert" / "bert_common.py").read_text()
    return {f for f in ("--batch-size", "--lr", "--num-epochs", "--epochs", "--log-interval", "--num-threads",
                        "--resume-from") if f'"{f}"' in src}


CASES = [
    ("--batch-size", ["--batch-size", "0"]), ("--lr", ["--lr", "-0.1"]), ("--lr", ["--lr", "nan"]),
    ("--num-epochs", ["--num-epochs", "0"]), ("--epochs", ["--epochs", "0"]),
    ("--log-interval", ["--log-interval", "0"]), ("--num-threads", ["--num-threads", "-1"]),
]


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_script_names_its_bad_numeric_flags(script, capsys, tmp_path):
    flags = _flags_of(script)
    tried = 0
    for flag, argv in CASES:
        if flag in flags:
            _refused(capsys, script, [*argv, "--save-dir", str(tmp_path / "run")] if "--resume-from" in flags
                     else argv, flag, tmp_path)
            tried += 1
    assert tried >= 2, f"{script}: only {tried} flags checked"


@pytest.mark.parametrize("script", ["classification/train.py", "text_classification/train_textcnn.py",
                                    "language_model/train_lm.py", "machine_translation/train_transformer.py",
                                    "bert/finetune_classifier.py", "bert/finetune_squad.py"])
def test_bad_resume_files_are_named(script, capsys, tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    for path, why in ((tmp_path / "absent.pt", "not found"), (empty, "is empty"), (corrupt, "not a torch checkpoint"),
                      (tmp_path, "is a directory")):
        line = _refused(capsys, script, ["--resume-from", str(path), "--save-dir", str(tmp_path / "run")],
                        "--resume-from", tmp_path)
        assert why in line


def test_train_unknown_model_is_named(capsys, tmp_path):
    line = _refused(capsys, "classification/train.py", ["--model", "resnet_does_not_exist",
                                                        "--save-dir", str(tmp_path / "run")], "--model", tmp_path)
    assert "resnet_does_not_exist" in line and "similar: resnet" in line  # close names are suggested


def test_train_bad_model_kwargs(capsys, tmp_path):
    _refused(capsys, "classification/train.py", ["--model-kwargs", "{not json", "--save-dir", str(tmp_path / "r")],
             "--model-kwargs", tmp_path)


def test_a_zip_that_is_not_a_checkpoint_ends_with_one_message(tmp_path):
    """Past the up-front checks: a zip file that torch cannot read as a checkpoint is still named, no traceback."""
    import zipfile

    fake = tmp_path / "fake.pt"
    with zipfile.ZipFile(fake, "w") as z:
        z.writestr("hello.txt", "not a checkpoint")
    from scripts.common import resume_checkpoint

    with pytest.raises(SystemExit, match="--resume-from: checkpoint .* is corrupt"):
        resume_checkpoint(fake, torch.nn.Linear(1, 1))


def test_the_command_line_prints_no_traceback(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "classification" / "train.py"), "--model",
                           "cifar_resnet20_v1", "--num-epochs", "0", "--save-dir", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 2 and "--num-epochs must be >= 1" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "r").exists()
