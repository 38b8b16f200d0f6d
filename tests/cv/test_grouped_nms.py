"""``toolkit::grouped_nms`` and the NMS step of ``fixed_detections``: eager vs torchvision, exported vs eager."""
from __future__ import annotations

import pytest
import torch
import torchvision

from toolkit.cv.models.detection import fixed_detections
from toolkit.cv.models.detection._nms import grouped_nms


def _random_boxes(*shape, size=200.0, extent=60.0, gen=None):
    xy = torch.rand(*shape, 2, generator=gen) * size
    return torch.cat([xy, xy + torch.rand(*shape, 2, generator=gen) * extent + 1], -1)


def _reference_groups(boxes, scores, iou, thr, cap):
    """One torchvision.ops.nms per (row, class): (row, class, index) rows by row, class, best first."""
    rows = []
    for b in range(scores.shape[0]):
        for c in range(scores.shape[1]):
            m = torch.nonzero(scores[b, c] > thr).squeeze(1)
            kept = m[torchvision.ops.nms(boxes[b, m], scores[b, c, m], iou)][:cap]
            rows += [(b, c, int(i)) for i in kept]
    return rows


@pytest.mark.parametrize("ties", [False, True])
def test_grouped_nms_equals_torchvision(ties):
    gen = torch.Generator().manual_seed(1)
    b, c, n = 3, 5, 700
    boxes = _random_boxes(b, n, gen=gen)
    scores = torch.rand(b, c, n, generator=gen)
    if ties:  # few distinct scores and duplicated boxes: the order among equals must follow the index
        scores = (scores * 4).floor() / 4
        boxes[:, 1::3] = boxes[:, 0:-1:3]
    scores[1] = 0.0  # row 1: nothing above the threshold
    got = grouped_nms(boxes, scores, 0.5, 0.1, 10_000)
    assert got.dtype == torch.int64 and got.shape[1] == 3
    assert [tuple(r) for r in got.tolist()] == _reference_groups(boxes, scores, 0.5, 0.1, 10_000)
    # the same selection as batched_nms over the flattened (row, class) groups
    cand = torch.nonzero(scores > 0.1)
    flat = torchvision.ops.batched_nms(boxes[cand[:, 0], cand[:, 2]], scores[cand[:, 0], cand[:, 1], cand[:, 2]],
                                       cand[:, 0] * c + cand[:, 1], 0.5)
    assert sorted(map(tuple, cand[flat].tolist())) == sorted(map(tuple, got.tolist()))
    capped = grouped_nms(boxes, scores, 0.5, 0.1, 3)  # the best 3 per group
    assert [tuple(r) for r in capped.tolist()] == _reference_groups(boxes, scores, 0.5, 0.1, 3)


def test_grouped_nms_empty_and_bad_input():
    assert grouped_nms(torch.zeros(2, 0, 4), torch.zeros(2, 3, 0), 0.5, 0.0, 10).shape == (0, 3)
    assert grouped_nms(_random_boxes(1, 8), torch.zeros(1, 2, 8), 0.5, 0.0, 10).shape == (0, 3)
    with pytest.raises(ValueError, match=r"boxes \(B, N, 4\) and scores \(B, C, N\)"):
        grouped_nms(torch.zeros(1, 8, 4), torch.zeros(1, 2, 7), 0.5, 0.0, 10)


def _reference_detections(boxes, scores, thr, iou, nms_topk, post_nms, per_class_topk=None):
    """GluonCV's semantics image by image: candidates, per-class NMS, best ``post_nms``, -1 padding."""
    b, n, c = scores.shape
    ids = torch.full((b, post_nms, 1), -1.0)
    out_scores, out_boxes = ids.clone(), torch.full((b, post_nms, 4), -1.0)
    for i in range(b):
        bx = boxes[i] if boxes.dim() == 4 else boxes[i].unsqueeze(1).expand(n, c, 4)
        sc, cls = scores[i], torch.arange(c).expand(n, c)
        if per_class_topk is not None and per_class_topk < n:
            top = torch.topk(sc, per_class_topk, dim=0)
            sc, cls = top.values, torch.gather(cls, 0, top.indices)
            bx = torch.gather(bx, 0, top.indices.unsqueeze(-1).expand(*top.indices.shape, 4))
        sc, cls, bx = sc.reshape(-1), cls.reshape(-1), bx.reshape(-1, 4)
        if nms_topk > 0:
            top = torch.topk(sc, min(nms_topk, sc.numel())).indices
            sc, cls, bx = sc[top], cls[top], bx[top]
        m = sc > thr
        sc, cls, bx = sc[m], cls[m], bx[m]
        keep = torchvision.ops.batched_nms(bx, sc, cls, iou)[:post_nms]
        ids[i, : len(keep), 0], out_scores[i, : len(keep), 0], out_boxes[i, : len(keep)] = cls[keep].float(), \
            sc[keep], bx[keep]
    return ids, out_scores, out_boxes


# the three layouts of the suppression: few candidates of shared boxes (SSD, YOLO), all shared boxes,
# a box per class or a per-class top-k (SSDlite, Faster R-CNN)
CASES = {"candidates": dict(nms_topk=50), "shared": dict(nms_topk=-1), "per_class_topk": dict(nms_topk=-1, per_class_topk=20),
         "boxes_per_class": dict(nms_topk=300)}


@pytest.mark.parametrize("case", list(CASES))
def test_fixed_detections_layouts_equal_reference(case):
    gen = torch.Generator().manual_seed(2)
    b, n, c = 3, 120, 6
    boxes = _random_boxes(b, n, c, gen=gen) if case == "boxes_per_class" else _random_boxes(b, n, gen=gen)
    scores = torch.rand(b, n, c, generator=gen)
    scores[1] *= 0.05  # image 1: nothing above the threshold
    kw = CASES[case]
    got = fixed_detections(boxes, scores, 0.1, 0.5, post_nms=40, **kw)
    want = _reference_detections(boxes, scores, 0.1, 0.5, post_nms=40, **kw)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
    ids, sc, _ = got
    assert bool((ids[1] == -1).all()) and int((ids[0] >= 0).sum()) > 0
    real = sc[..., 0] >= 0
    assert bool((sc[..., 0][:, 1:] <= sc[..., 0][:, :-1]).logical_or(~real[:, 1:]).all()), "best first"


class _ThreeLayouts(torch.nn.Module):
    """fixed_detections in each layout of its suppression, for one export."""

    def forward(self, boxes, class_boxes, scores):
        outs = []
        for case, kw in CASES.items():
            outs += fixed_detections(class_boxes if case == "boxes_per_class" else boxes, scores, 0.1, 0.5,
                                     post_nms=40, **kw)
        return tuple(outs)


@pytest.mark.slow
def test_exported_suppression_is_one_grouped_nms_per_call(tmp_path):
    """The export holds one NonMaxSuppression per call, over (image, class) groups; onnxruntime and OpenVINO
    give eager's detections, with more than one image."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    from toolkit.cv.deploy import check_nms_in_graph
    from toolkit.deploy.export import export_block

    gen = torch.Generator().manual_seed(3)
    b, n, c = 2, 120, 6
    inputs = (_random_boxes(b, n, gen=gen), _random_boxes(b, n, c, gen=gen), torch.rand(b, n, c, generator=gen))
    net = _ThreeLayouts()
    export_block(net, tmp_path / "nms", inputs, input_names=["boxes", "class_boxes", "scores"])
    path = tmp_path / "nms.onnx"
    check_nms_in_graph(path)
    model = onnx.load(path)
    nms_nodes = [node for node in model.graph.node if node.op_type == "NonMaxSuppression"]
    assert len(nms_nodes) == len(CASES)
    # the selected (row, class, index) triplets span several rows and classes: groups, not one big NMS
    model.graph.output.extend(onnx.helper.make_tensor_value_info(node.output[0], onnx.TensorProto.INT64, None)
                              for node in nms_nodes)
    feed = {k: v.numpy() for k, v in zip(["boxes", "class_boxes", "scores"], inputs)}
    outs = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)
    for sel in outs[-len(nms_nodes):]:
        assert len(np.unique(sel[:, 0])) > 1 or len(np.unique(sel[:, 1])) > 1
    with torch.no_grad():
        eager = [t.numpy() for t in net(*inputs)]
    runs = {"onnxruntime": outs[: len(eager)]}
    try:
        import openvino as ov
    except ImportError:
        ov = None
    if ov is not None:
        from toolkit.deploy.ov_core import shared_core  # one Core per process: see there

        compiled = shared_core().compile_model(str(path), "CPU")
        result = compiled(feed)
        runs["openvino"] = [result[o] for o in compiled.outputs]
    for runtime, got in runs.items():
        for want, out in zip(eager, got):
            np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-5, err_msg=runtime)


@pytest.mark.openvino_last  # see tests/conftest.py
@pytest.mark.parametrize("scores_kind", ["random", "ties", "sparse", "none"])
def test_openvino_conversion_selects_the_same_indices(scores_kind):
    """OpenVINO's PyTorch frontend converts the op (the OpenVINO candidate of hybridize()'s inference race,
    toolkit.nn.autotune.compile_openvino) to the very (row, class, index) rows eager selects, in order."""
    pytest.importorskip("openvino")
    from toolkit.nn.autotune import compile_openvino

    class Suppress(torch.nn.Module):
        def forward(self, boxes, scores):
            return grouped_nms(boxes, scores, 0.45, 0.05, 40)

    gen = torch.Generator().manual_seed(5)
    b, c, n = 2, 4, 300
    boxes = _random_boxes(b, n, gen=gen)
    scores = {"random": lambda s: s, "ties": lambda s: (s * 4).floor() / 4, "sparse": lambda s: s ** 8,
              "none": lambda s: s * 0.0}[scores_kind](torch.rand(b, c, n, generator=gen))
    program = torch.export.export(Suppress(), (boxes, scores))
    want = Suppress()(boxes, scores)
    run = compile_openvino(program, (boxes, scores), {}, want)
    got = run(boxes, scores)
    assert got.dtype == torch.int64 and torch.equal(got, want)
    if scores_kind == "random":  # the cap of 40 per (row, class) reached: the best 40, in order
        assert len(want) == b * c * 40
    other = torch.rand(b, c, n, generator=gen)  # new values, same shapes: the compiled model selects anew
    assert torch.equal(run(boxes, other), Suppress()(boxes, other))
