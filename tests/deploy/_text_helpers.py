"""Helpers shared by the native runners' text tests (C++ and Java against Python).

The session fixture ``text_exports`` is in tests/deploy/conftest.py (built once per session); the
helpers here are imported by name (conftest puts this folder on sys.path).
"""
from __future__ import annotations

import bz2
import importlib.util
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from _deploy_helpers import run_native

#: Relative tolerance on probabilities, log-probabilities and logits, runner against Python.
RTOL = 1e-4


def text_json(runner: Path, *args) -> list[dict]:
    """Run a native runner (which must succeed) and parse what it printed as JSON."""
    return json.loads(run_native(runner, *args).stdout)


def write_lines(path: Path, lines: list[str]) -> Path:
    """Write ``lines`` as UTF-8, each ended by "\\n", and return ``path``."""
    path.write_bytes("".join(line + "\n" for line in lines).encode("utf-8"))
    return path


def rel(got, ref) -> float:
    """Largest absolute difference relative to the largest magnitude of ``ref`` (shapes must match)."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got.shape == ref.shape
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30)) if ref.size else 0.0


def gensim_lines(names: tuple[str, ...], wiki_lines: int) -> list[str]:
    """Non-blank lines of real text shipped with gensim's test data, if gensim is installed.

    Parameters
    ----------
    names
        Plain-text files of ``gensim/test/test_data`` to read (those missing are passed over).
    wiki_lines
        How many lines of the shortened Bulgarian Wikipedia dump (wiki markup) to add.
    """
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.origin:
        return []
    data = Path(spec.origin).parent / "test" / "test_data"
    lines: list[str] = []
    for name in names:
        if (data / name).is_file():
            lines += (data / name).read_text(encoding="utf-8", errors="replace").split("\n")
    wiki = data / "bgwiki-latest-pages-articles-shortened.xml.bz2"
    if wiki.is_file():
        lines += bz2.decompress(wiki.read_bytes()).decode("utf-8", errors="replace").split("\n")[:wiki_lines]
    return [line.removesuffix("\r") for line in lines if line.strip()]


def copy_export(prefix: Path, folder: Path) -> Path:
    """Copy every ``PREFIX.*`` file into ``folder`` (created if needed); return the copy's prefix."""
    folder.mkdir(exist_ok=True)
    for f in prefix.parent.glob(prefix.name + ".*"):
        shutil.copy(f, folder / f.name)
    return folder / prefix.name


def edit_meta(prefix: Path, edit: Callable[[dict], object]) -> None:
    """Rewrite ``PREFIX.json`` after ``edit`` changed its parsed content in place."""
    path = prefix.with_suffix(".json")
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def failure_stderr(runner: Path, *args, crash_signs: tuple[str, ...]) -> str:
    """Run a native runner that must fail cleanly: exit status 1, nothing on stdout, no crash trace.

    Returns its stderr, whose form (one line, the program's prefix) each runner's tests check.
    """
    done = run_native(runner, *args, check=False)
    assert done.returncode == 1, f"exit {done.returncode}, stderr: {done.stderr}"
    assert done.stdout == ""
    assert not any(s in done.stderr for s in crash_signs), done.stderr
    return done.stderr
