"""tutorials/deploy_detection_segmentation.py at tiny scale: train, export, int8, Python, C++ and Java, pictures."""
from __future__ import annotations

import importlib.util

import pytest

from _deploy_helpers import REPO

pytest.importorskip("torchvision")


@pytest.mark.slow
@pytest.mark.native
def test_tutorial_runs_tiny(tmp_path, monkeypatch, cpp_runner, java_runner):
    monkeypatch.setenv("TOOLKIT_DATA", str(tmp_path / "data"))  # the tutorial points it at its tiny set; undone after
    spec = importlib.util.spec_from_file_location("detseg_tutorial", REPO / "tutorials" / "deploy_detection_segmentation.py")
    tutorial = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tutorial)
    out = tutorial.main(["--tiny", "--workdir", str(tmp_path / "work")])
    work = tmp_path / "work"

    # fp32 and int8 were evaluated on the tiny validation set
    det, seg = out["detection_map"], out["segmentation_miou"]
    assert det["samples"] == 4 and 0.0 <= det["fp32_mAP"] <= 1.0 and 0.0 <= det["int8_mAP"] <= 1.0
    assert seg["samples"] == 4 and 0.0 <= seg["fp32_mIoU"] <= 1.0 and seg["int8_pixel_agreement"] > 0.5
    assert out["seg_fp32_agreement"] >= 0.999  # onnxruntime and OpenVINO on the same fp32 graph

    # the C++ runner prints what Python prints on OpenVINO for the fp32 graphs
    native = out["native"]
    assert native["C++ det fp32"]["same_labels"] and native["C++ det fp32"]["max_diff"] < 1e-3, native
    assert native["C++ seg fp32"]["pixel_agreement"] >= 0.9999, native
    # Java: the same, or a refusal in the runner's own words (it serves no dense task yet), never a crash
    for key in ("Java det fp32", "Java seg fp32"):
        got = native[key]
        if isinstance(got, str):
            assert got.startswith("refused:") and any(r in got for r in tutorial.REFUSALS), got
        elif "det" in key:
            assert got["same_labels"] and got["max_diff"] < 1e-3, got
        else:
            assert got["pixel_agreement"] >= 0.9999, got
    # int8 detection on OpenVINO: either it ran, or its refusal is reported (and the C++ runner's as well)
    if "openvino_int8_detection" in out:
        assert out["openvino_int8_detection"].startswith("refused:")

    # the pictures
    for picture in ("drawn-onnxruntime/val0.png", "masks-onnxruntime/val0_overlay.png", "cpp-detections.png",
                    "cpp-overlay.png", "drawn-int8/val0.png"):
        assert (work / picture).stat().st_size > 500, picture
