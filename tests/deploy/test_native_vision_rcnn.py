"""The C++ and Java runners on a Faster R-CNN export, fp32 and int8 (issue 14).

The session's tiny Faster R-CNN (``rcnn_export``: MobileNetV3-Large-320-FPN at 128x128 through the batched
fixed-shape eval path, two NMS blocks and RoiAlign in the graph, conftest.py) and its ``toolkit quantize``
twin, run by both native runners and by Python's ``toolkit predict --runtime openvino`` (the runtime the
runners use) on the scikit-image photos: the same classes in the same order, scores within 1e-5, boxes
(original image pixels) within 1e-3 px, and the plain-text output equal to Python's.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torchvision")

from _deploy_helpers import run_native  # noqa: E402
from test_native_vision_java import _edited_copy, _python, _refused, _same_detections  # noqa: E402

pytestmark = [pytest.mark.native, pytest.mark.slow]  # a two-stage detector export (~1 min), its quantization


@pytest.fixture(params=["cpp", "java"])
def runner(request) -> Path:
    return request.getfixturevalue(f"{request.param}_runner")


def test_fp32_detections_equal_python(runner, rcnn_export, photos, capsys):
    prefix, _ = rcnn_export
    got = json.loads(run_native(runner, prefix, *photos, "--threshold", "0.05", "--json").stdout)
    ref = json.loads(_python(capsys, prefix, *photos, "--threshold", "0.05", "--json"))
    _same_detections(got, ref)
    text = run_native(runner, prefix, *photos[:2], "--threshold", "0.05").stdout
    assert text == _python(capsys, prefix, *photos[:2], "--threshold", "0.05")


def test_int8_detections_equal_python(runner, rcnn_int8_export, photos, capsys):
    meta = json.loads(Path(f"{rcnn_int8_export}.json").read_text())
    assert meta["task"] == "detection" and meta["detection"]["nms"] == "NonMaxSuppression"
    done = run_native(runner, rcnn_int8_export, *photos, "--threshold", "0.05", "--json", check=False)
    assert done.returncode == 0, done.stderr
    ref = json.loads(_python(capsys, rcnn_int8_export, *photos, "--threshold", "0.05", "--json"))
    _same_detections(json.loads(done.stdout), ref)


def test_bad_input_is_one_clear_line(runner, rcnn_export, photos, tmp_path):
    """Issue 14's refusals on the two-stage export too: no NMS block, a threshold outside [0, 1], --draw under a file."""
    prefix, photo = rcnn_export[0], photos[0]
    watch = tmp_path / "watch"
    watch.mkdir()
    blocker = watch / "a-file"
    blocker.write_text("x")
    no_nms = _edited_copy(prefix, tmp_path / "no-nms", lambda m: m.pop("detection"))
    cases = {
        "no NMS block": ([no_nms, photo, "--json"], "NMS"),
        "threshold above 1": ([prefix, photo, "--threshold", "1.5"], "--threshold"),
        "--draw under a file": ([prefix, photo, "--draw", blocker / "d"], "cannot be created"),
    }
    failed = {name: p for name, (args, expected) in cases.items() if (p := _refused(runner, args, expected, watch))}
    assert not failed, failed
