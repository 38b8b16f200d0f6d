"""Helpers shared by the deployment tests (imported by name: conftest puts this folder on sys.path)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from toolkit.nn import HybridBlock

REPO = Path(__file__).resolve().parents[2]
#: PNG photos shipped inside the scikit-image wheel (no download): RGB, grey and RGBA.
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "camera.png", "horse.png")


def skimage_photo(name: str) -> Path:
    import skimage

    path = Path(skimage.__file__).parent / "data" / name
    if not path.is_file():
        pytest.fail(f"scikit-image ships no {name} under {path.parent}")
    return path


class TinyNet(HybridBlock):
    """A small classifier with the vision metadata contract, for fast tests."""

    input_names = ("data",)
    output_names = ("logits",)

    def __init__(self, classes: int = 10, channels: int = 3, size: int = 32, resize: int | None = None) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, classes),
        )
        grey = channels == 1
        self.metadata.update({
            "name": "tinynet", "task": "classification", "input_shape": [channels, size, size],
            "classes": [f"class{i}" for i in range(classes)],
            "preprocessing": {
                "type": "image", "layout": "NCHW", "color": "L" if grey else "RGB",
                "resize": int(round(size * 8 / 7)) if resize is None else resize, "crop": [size, size],
                "interpolation": "bilinear", "scale": 255.0,
                "mean": [0.5] if grey else [0.485, 0.456, 0.406], "std": [0.25] if grey else [0.229, 0.224, 0.225],
            },
        })

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        return self.body(data)


def run_native(runner: Path, *args, check: bool = True) -> subprocess.CompletedProcess:
    """Run a native runner; with check, assert success and return the process (stdout text)."""
    done = subprocess.run([str(runner), *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, f"{runner.name} failed ({done.returncode}): {done.stderr[-2000:]}"
    return done


def native_json(runner: Path, prefix, inputs, *extra) -> list[dict]:
    return json.loads(run_native(runner, prefix, *inputs, "--json", *extra).stdout)


def assert_same_ranking(ref_logits: np.ndarray, got_indices: list[int], k: int, tol: float) -> None:
    """``got_indices`` is a valid top-k of ``ref_logits``: exact where the reference's gaps exceed ``tol``.

    Random-init models give near-ties; an index may only differ from the reference's
    at rank r if its reference logit is within ``tol`` of the r-th largest.
    """
    order = np.argsort(-ref_logits, kind="stable")
    for r, idx in enumerate(got_indices[:k]):
        if idx != order[r]:
            assert abs(ref_logits[idx] - ref_logits[order[r]]) <= tol, (
                f"rank {r}: got class {idx} (logit {ref_logits[idx]:.6g}), reference {order[r]} "
                f"(logit {ref_logits[order[r]]:.6g})"
            )


def java_program(source: str, class_name: str, folder: Path) -> list[str]:
    """Compile a Java program against deploy/java's jar (built by ``java_runner``) into ``folder``.

    Returns the command line that runs it (append its arguments), with the jar and ``folder`` on
    the class path and the JNI library on ``java.library.path``.
    """
    import shutil

    build = REPO / "deploy" / "java" / "build"
    jar = build / "toolkit-deploy.jar"
    src = folder / f"{class_name}.java"
    src.write_text(source)
    subprocess.run([shutil.which("javac"), "-cp", str(jar), "-d", str(folder), str(src)], check=True)
    return [shutil.which("java"), f"-Djava.library.path={build}", "-cp", f"{jar}:{folder}", class_name]
