"""The three distributions install alone: core + cv without the text stack, core + nlp without torchvision.

The wheels are built one after another in one copy of the source (each part
has its own build directory, so none carries another's packages); each case makes a fresh
virtual environment and installs them with ``pip --no-index``: if a wheel
declared a dependency of the other half, pip could not resolve it and the
install would fail. Re-installing torch (several GB) into every environment
would take minutes, so the environment sees the machine's packages through a
folder of links that leaves out the other half's packages (and the toolkit's
own development install).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

CV_ONLY = {"sentencepiece", "tokenizers", "transformers"}
NLP_ONLY = {"torchvision"}


def _dist_name(entry: str) -> str:
    """Normalised distribution / package name of a site-packages entry."""
    name = re.split(r"-\d", entry, maxsplit=1)[0]
    name = name.split(".")[0] if not entry.endswith((".dist-info", ".egg-info")) else name
    return name.lower().replace("-", "_")


def _build_wheels(out: Path, work: Path) -> dict[str, Path]:
    """Build every distribution one after another in ONE copy of the source, as a release does.

    The full ``toolkit`` wheel goes first, so a part build that reused its
    build directory would carry every package (the wheel-content test below
    catches that).
    """
    src = work / "src"
    shutil.copytree(ROOT / "toolkit", src / "toolkit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "setup.py", src / "setup.py")
    wheels = {}
    for part in ("", "core", "cv", "nlp"):
        env = {**os.environ, "TOOLKIT_PART": part}
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
            check=True,
            env=env,
            cwd=src,
        )
        (found,) = out.glob(f"toolkit_{part}-*.whl" if part else "toolkit-*.whl")
        wheels[part or "all"] = found
    return wheels


def _make_env(path: Path, leave_out: set[str]) -> Path:
    venv.EnvBuilder(with_pip=False, symlinks=True).create(path)
    python = path / "bin" / "python"
    site = Path(subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    shown = path / "machine-packages"
    shown.mkdir()
    system_site = Path(sysconfig.get_paths()["purelib"])
    hidden = leave_out | {"toolkit", "toolkit_core", "toolkit_cv", "toolkit_nlp", "__editable__"}
    for entry in system_site.iterdir():
        name = _dist_name(entry.name)
        if name in hidden or name.startswith("__editable__") or entry.suffix == ".pth":
            continue
        (shown / entry.name).symlink_to(entry)
    (site / "machine-packages.pth").write_text(str(shown) + "\n")
    return python


def _pip_install(python: Path, wheels: list[Path], find_links: Path) -> None:
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-index", "--find-links", str(find_links), "-q", *map(str, wheels)],
        check=True,
    )


CHECK = r"""
import importlib, importlib.util, json, sys
report = {"absent": {}, "import_error": None}
for mod in sys.argv[2].split(","):
    report["absent"][mod] = importlib.util.find_spec(mod) is None
import toolkit, toolkit.nn, toolkit.data, toolkit.zoo, toolkit.deploy
importlib.import_module(sys.argv[1])
try:
    importlib.import_module(sys.argv[3])
except ModuleNotFoundError as err:
    report["import_error"] = str(err)
report["file"] = toolkit.__file__
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    work = tmp_path_factory.mktemp("wheels")
    out = work / "dist"
    out.mkdir()
    return out, _build_wheels(out, work)


def test_wheel_contents_are_split(wheels):
    import zipfile

    _, built = wheels
    names = {part: zipfile.ZipFile(path).namelist() for part, path in built.items()}
    assert any(n.startswith("toolkit/cv/") for n in names["all"]) and any(n.startswith("toolkit/nlp/") for n in names["all"])
    assert any(n == "toolkit/__init__.py" for n in names["core"])
    assert not any(n.startswith(("toolkit/cv/", "toolkit/nlp/")) for n in names["core"])
    assert all(n.startswith("toolkit/cv/") or ".dist-info/" in n for n in names["cv"])
    assert all(n.startswith("toolkit/nlp/") or ".dist-info/" in n for n in names["nlp"])


@pytest.mark.parametrize(
    "half, other, leave_out, other_dist",
    [("toolkit.cv", "toolkit.nlp", CV_ONLY, "toolkit-nlp"), ("toolkit.nlp", "toolkit.cv", NLP_ONLY, "toolkit-cv")],
)
def test_half_installs_alone(wheels, tmp_path, half, other, leave_out, other_dist):
    import json

    dist, built = wheels
    part = half.split(".")[1]
    python = _make_env(tmp_path / "env", leave_out)
    _pip_install(python, [built["core"], built[part]], dist)
    result = subprocess.run(
        [str(python), "-c", CHECK, half, ",".join(sorted(leave_out)), other],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert str(tmp_path) in report["file"], "the test must import the installed wheel, not the checkout"
    assert all(report["absent"].values()), f"{half} pulled in {report['absent']}"
    assert report["import_error"] and other_dist in report["import_error"]
