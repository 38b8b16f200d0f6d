"""Detectors in hybridize()'s OpenVINO candidate: their NMS converts (toolkit::grouped_nms), and a candidate's
detections are checked as detections (same_detections: ties in any order), not as plain tensors."""
from __future__ import annotations

import pytest
import torch

from toolkit.cv.models.detection import same_detections
from toolkit.nn import autotune
from toolkit.zoo import get_model


def _detections(rows):
    """(ids, scores, bboxes) of one image from ``(class, score, x1)`` rows, padded to 6 with -1."""
    ids = torch.full((1, 6, 1), -1.0)
    scores = torch.full((1, 6, 1), -1.0)
    boxes = torch.full((1, 6, 4), -1.0)
    for k, (cls, score, x1) in enumerate(rows):
        ids[0, k, 0], scores[0, k, 0] = cls, score
        boxes[0, k] = torch.tensor([x1, 10.0, x1 + 20.0, 40.0])
    return ids, scores, boxes


REF = [(3, 0.9, 0.0), (1, 0.5, 10.0), (2, 0.5, 20.0), (2, 0.2, 30.0), (4, 0.2, 40.0)]


@pytest.mark.parametrize("rows, same", [
    (REF, True),
    ([REF[0], REF[2], REF[1], REF[3], REF[4]], True),  # a tie listed in the other order
    ([REF[0], REF[1], REF[2], REF[3], (0, 0.2, 99.0)], True),  # another of the tied rows kept at the cut
    ([REF[0], (0, 0.5, 10.0), REF[2], REF[3], REF[4]], False),  # another class
    ([REF[0], (1, 0.5, 12.0), REF[2], REF[3], REF[4]], False),  # a box moved by 2 pixels
    ([REF[0], (1, 0.5, 10.0), (1, 0.5, 10.0), REF[3], REF[4]], False),  # a tied row, but not at the cut, lost
    ([REF[0], (1, 0.5, 10.0 + 1e-4), REF[2], REF[3], REF[4]], True),  # float rounding
    (REF[:4], False),  # one detection fewer
])
def test_same_detections(rows, same):
    assert same_detections(_detections(rows), _detections(REF)) is same


def test_same_detections_other_outputs_compare_as_tensors():
    x = torch.randn(2, 3)
    assert same_detections(x, x.clone()) and not same_detections(x, x + 1)


@pytest.mark.slow
@pytest.mark.openvino_last  # see tests/conftest.py
def test_detector_races_its_openvino_graph(monkeypatch):
    """A zoo detector converts whole, NMS included, and its OpenVINO graph is kept when faster (the race's
    timing faked: its outcome is not this test's point); its detections are eager's."""
    pytest.importorskip("openvino")
    monkeypatch.setenv(autotune.OPENVINO_ENV, "1")
    races: list[list[str]] = []

    def fake(fns, budget_s=autotune.BUDGET_S):
        if "aten" in fns:
            return {name: 0.5 if name == "aten" else 1.0 for name in fns}
        races.append(list(fns))
        return {name: 0.5 if name == "openvino" else 1.0 for name in fns}

    monkeypatch.setattr(autotune, "_measure", fake)
    torch.manual_seed(0)
    net = get_model("ssd_128_mobilenet0.25_voc", pretrained=False, pretrained_base=False).eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        want = net(x)
        got = net.hybridize()(x)
        assert races and races[-1][-1] == "openvino" and net.graph_memory_format == "openvino"
        assert isinstance(net._last_graph.runner, autotune.FrozenOpenVINO)
        assert same_detections(got, want)
        y = torch.randn(1, 3, 128, 128)  # other pixels: the compiled model detects anew
        assert same_detections(net(y), type(net).forward(net, y))
