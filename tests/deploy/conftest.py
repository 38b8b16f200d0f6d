"""Fixtures for the deployment tests: sample photos, stand-in models, native runners built once."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _deploy_helpers import PHOTOS, REPO, TinyNet, skimage_photo  # noqa: E402


@pytest.fixture(scope="session")
def photos() -> list[Path]:
    return [skimage_photo(n) for n in PHOTOS]


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory) -> Path:
    """An exported TinyNet (RGB, 32x32 after resize 37 + crop), shared by the session; do not modify."""
    torch.manual_seed(0)
    prefix = tmp_path_factory.mktemp("tiny") / "tiny"
    TinyNet().export(prefix)
    return prefix


@pytest.fixture
def tiny_copy(tiny_export, tmp_path) -> Path:
    """A private copy of the tiny export that a test may corrupt."""
    for suffix in (".onnx", ".json"):
        shutil.copy(f"{tiny_export}{suffix}", tmp_path / f"tiny{suffix}")
    return tmp_path / "tiny"


def _missing_tools(*tools: str) -> list[str]:
    return [t for t in tools if shutil.which(t) is None]


def _openvino_ok() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="session")
def cpp_runner() -> Path:
    """deploy/cpp/build/toolkit-predict, configured and built once per session."""
    missing = _missing_tools("cmake", "c++")
    if missing or not _openvino_ok():
        pytest.skip(f"cannot build the C++ runner: missing {missing or ['openvino (pip)']}")
    build = REPO / "deploy" / "cpp" / "build"
    env = dict(os.environ)
    subprocess.run(["cmake", "-S", str(REPO / "deploy" / "cpp"), "-B", str(build),
                    f"-DTOOLKIT_PYTHON={sys.executable}", "-DCMAKE_BUILD_TYPE=Release"],
                   check=True, capture_output=True, env=env)
    done = subprocess.run(["nice", "-n", "10", "cmake", "--build", str(build), "-j", "2"], capture_output=True, text=True)
    assert done.returncode == 0, f"C++ runner build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return build / "toolkit-predict"


@pytest.fixture(scope="session")
def java_runner() -> Path:
    """deploy/java/predict after deploy/java/build.sh, built once per session."""
    missing = _missing_tools("javac", "java", "jar", "cc")
    if missing or not _openvino_ok():
        pytest.skip(f"cannot build the Java runner: missing {missing or ['openvino (pip)']}")
    env = dict(os.environ, TOOLKIT_PYTHON=sys.executable)
    done = subprocess.run(["bash", str(REPO / "deploy" / "java" / "build.sh")], capture_output=True, text=True, env=env)
    assert done.returncode == 0, f"Java runner build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return REPO / "deploy" / "java" / "predict"


@pytest.fixture(scope="session")
def text_exports(tmp_path_factory) -> dict[str, Path]:
    """The BERT classifier and Transformer fixtures and their input file, shared by the session.

    Tests may add files of their own to the folder (metadata beside a tokenizer) but must not
    change the ones written here; to corrupt an export, copy it first (:func:`copy_export`).
    """
    from _text_fixtures import export_bert_classifier, export_transformer, text_inputs

    folder = tmp_path_factory.mktemp("text")
    return {"bert": export_bert_classifier(folder), "transformer": export_transformer(folder),
            "inputs": text_inputs(folder)}


@pytest.fixture(scope="session")
def det_export(tmp_path_factory, photos):
    """(prefix, eager model) of the tiny SSD export (``_vision_fixtures``), shared by the session; do not modify."""
    pytest.importorskip("torchvision")
    from _vision_fixtures import export_detector

    return export_detector(tmp_path_factory.mktemp("det"), photos)


@pytest.fixture(scope="session")
def rcnn_export(tmp_path_factory, photos):
    """(prefix, eager model) of the tiny Faster R-CNN export (``_vision_fixtures``, ~1 min); do not modify."""
    pytest.importorskip("torchvision")
    from _vision_fixtures import export_frcnn

    return export_frcnn(tmp_path_factory.mktemp("rcnn"), photos)


@pytest.fixture(scope="session")
def rcnn_int8_export(rcnn_export, photos, tmp_path_factory) -> Path:
    """The tiny Faster R-CNN quantized (static int8, the photos as calibration images); do not modify."""
    from _vision_fixtures import quantized

    return quantized(rcnn_export[0], photos, tmp_path_factory.mktemp("rcnn-int8"))


@pytest.fixture(scope="session")
def seg_export(tmp_path_factory) -> Path:
    """The tiny FCN export (``_vision_fixtures``), shared by the session; do not modify."""
    pytest.importorskip("torchvision")
    from _vision_fixtures import export_segmenter

    return export_segmenter(tmp_path_factory.mktemp("seg"))


@pytest.fixture(scope="session")
def det_int8_export(det_export, photos, tmp_path_factory) -> Path:
    """The tiny SSD quantized (static int8, the photos as calibration images); do not modify."""
    from _vision_fixtures import quantized

    return quantized(det_export[0], photos, tmp_path_factory.mktemp("det-int8"))


@pytest.fixture(scope="session")
def seg_int8_export(seg_export, photos, tmp_path_factory) -> Path:
    """The tiny FCN quantized (static int8, the photos as calibration images); do not modify."""
    from _vision_fixtures import quantized

    return quantized(seg_export, photos, tmp_path_factory.mktemp("seg-int8"))
