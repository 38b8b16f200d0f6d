"""Faster R-CNN exports (issue 12/14): the batched eval path through torch's exporter, ORT/OpenVINO alike.

One tiny torchvision-style MobileNetV3-FPN detector at 128x128 (BatchNorm statistics from photos,
20 detections per image) is exported once with ``toolkit export`` and compared, on real photos,
with the eager model (onnxruntime) and onnxruntime with OpenVINO; the C++ and Java runners against Python:
test_native_vision_rcnn.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("torchvision")

from test_vision_detection import _assert_same_detections, _run  # noqa: E402

SIZE = 128  # _vision_fixtures.RCNN_SIZE

pytestmark = pytest.mark.slow  # one export of a whole two-stage detector (about a minute on 2 cores)

# rcnn_export (conftest.py, _vision_fixtures.tiny_frcnn): a tiny torchvision-style MobileNetV3-FPN detector at
# 128x128, random heads, BatchNorm statistics from the photos, 20 detections per image; shared with the C++ and
# Java tests (test_native_vision_rcnn.py)


def test_graph_has_nms_roialign_and_the_fixed_contract(rcnn_export):
    import onnx

    prefix, _ = rcnn_export
    meta = json.loads(Path(f"{prefix}.json").read_text())
    assert meta["task"] == "detection" and meta["detection"]["nms"] == "NonMaxSuppression"
    assert meta["detection"]["post_nms"] == 20 and meta["detection"]["nms_thresh"] == 0.5
    assert [(o["name"], o["shape"]) for o in meta["outputs"]] == [
        ("ids", ["batch", 20, 1]), ("scores", ["batch", 20, 1]), ("bboxes", ["batch", 20, 4])]
    ops = [n.op_type for n in onnx.load(f"{prefix}.onnx").graph.node]
    assert ops.count("NonMaxSuppression") == 2  # proposals, detections
    assert "RoiAlign" in ops and "Loop" not in ops and "If" not in ops


def test_onnxruntime_matches_eager_on_photos(rcnn_export, photos, capsys):
    from toolkit.cv.deploy.detection import detection_input

    prefix, net = rcnn_export
    rc, out, err = _run(capsys, ["predict", str(prefix), *map(str, photos), "--threshold", "0", "--json"])
    assert rc == 0, err
    meta = json.loads(Path(f"{prefix}.json").read_text())
    total = 0
    for photo, item in zip(photos, json.loads(out)):
        x, (height, width), _ = detection_input(photo, meta)
        with torch.no_grad():
            ids, scores, boxes = (t.numpy()[0] for t in net(torch.from_numpy(x[None])))
        keep = ids[:, 0] >= 0
        scale = np.array([width / SIZE, height / SIZE] * 2)
        _assert_same_detections(item["detections"], ids[keep, 0].astype(int), scores[keep, 0], boxes[keep] * scale,
                                score_tol=1e-3, box_tol=0.05 * scale.max())
        total += int(keep.sum())
    assert total > 0


def test_batch_of_two_matches_two_singles(rcnn_export, photos):
    """The batch axis stays dynamic and images do not interact (per-image NMS groups and proposal ranks)."""
    from toolkit.cv.deploy.detection import detection_input
    from toolkit.deploy import load

    prefix, _ = rcnn_export
    model = load(prefix)
    meta = model.metadata
    x = np.stack([detection_input(p, meta)[0] for p in photos[:2]])
    both = model(x)
    for i in range(2):
        single = model(x[i:i + 1])
        for a, b in zip(both, single):
            np.testing.assert_allclose(a[i:i + 1], b, rtol=0, atol=1e-4)


def test_openvino_gives_the_same_detections(rcnn_export, photos, capsys):
    pytest.importorskip("openvino")
    prefix, _ = rcnn_export
    got = {}
    for runtime in ("onnxruntime", "openvino"):
        rc, out, err = _run(capsys, ["predict", str(prefix), *map(str, photos[:3]), "--threshold", "0.05",
                                     "--runtime", runtime, "--json"])
        assert rc == 0, err
        got[runtime] = json.loads(out)
    for a, b in zip(got["onnxruntime"], got["openvino"]):
        dets = b["detections"]
        _assert_same_detections(a["detections"], [d["index"] for d in dets], [d["score"] for d in dets],
                                np.array([d["box"] for d in dets]).reshape(-1, 4), score_tol=1e-3, box_tol=0.5)
