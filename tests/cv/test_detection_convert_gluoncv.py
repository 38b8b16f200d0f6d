"""GluonCV SSD / YOLOv3 / Faster R-CNN ``.params`` -> zoo detectors: GluonCV's (MXNet's) raw head outputs,
anchors and final detections, from fixtures written by
tools/legacy/make_gluoncv_detection_fixtures.py (no MXNet here)."""
from __future__ import annotations

import json
import lzma
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from toolkit.cv.convert import from_gluoncv
from toolkit.cv.convert._gluoncv_detection import gluoncv_detection_state
from toolkit.zoo import WeightsError, get_model

torch.set_num_threads(2)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "gluoncv_detection"
INDEX = json.loads((FIXTURES / "gluoncv_detection_fixtures.json").read_text())


def _unpack(stem: str, tmp_path: Path) -> Path:
    out = tmp_path / f"{stem}.params"
    with lzma.open(FIXTURES / INDEX["models"][stem]["params"], "rb") as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return out


def _load(stem: str, tmp_path: Path, **kwargs) -> torch.nn.Module:
    entry = INDEX["models"][stem]
    return from_gluoncv(_unpack(stem, tmp_path), entry["name"], classes=INDEX["classes"],
                        **{**entry["kwargs"], **kwargs}).eval()


def _raw(model: torch.nn.Module, x: torch.Tensor):
    """The training-mode outputs with the norms in inference mode (GluonCV's heads, recorded outside autograd)."""
    model.eval()
    model.training = True  # only the detector's own flag: its BatchNorms stay in inference mode
    try:
        with torch.no_grad():
            return model(x)
    finally:
        model.training = False


def _close(got: np.ndarray, want: np.ndarray, rel: float = 1e-4) -> float:
    assert got.shape == want.shape, (got.shape, want.shape)
    diff = float(np.abs(got - want).max())
    assert diff < rel * max(1.0, float(np.abs(want).max())), diff
    return diff


def _same_detections(got: tuple[torch.Tensor, ...], io) -> None:
    """Same -1-padded detections, best first, up to the order of (near) ties.

    The sorted scores must agree; every detection above the lowest kept score (+ tolerance: a near tie
    there may decide which of two boxes is the last one kept) must have a GluonCV twin with the same
    class, score and box.
    """
    ids, scores, boxes = (t.numpy() for t in got)
    for b in range(ids.shape[0]):
        np.testing.assert_array_equal(ids[b] < 0, io["ids"][b] < 0)
        keep = io["ids"][b, :, 0] >= 0
        assert keep.sum() > 10  # a comparison of empty outputs would prove nothing
        g_s, w_s = scores[b, keep, 0], io["scores"][b, keep, 0]
        assert np.all(np.diff(g_s) <= 0)  # best first
        np.testing.assert_allclose(g_s, w_s, rtol=0, atol=1e-5)
        w_ids, w_boxes = io["ids"][b, keep, 0], io["bboxes"][b, keep]
        for i in np.nonzero(g_s > w_s.min() + 1e-5)[0]:
            twin = ((w_ids == ids[b, keep, 0][i]) & (np.abs(w_s - g_s[i]) < 1e-5)
                    & (np.abs(w_boxes - boxes[b, keep][i]).max(1) < 1e-3 * max(1.0, np.abs(w_boxes).max())))
            assert twin.any(), (b, i, ids[b, keep, 0][i], g_s[i], boxes[b, keep][i])
        np.testing.assert_array_equal(boxes[b, ~keep], -1)


def test_fixture_index_records_versions():
    assert INDEX["mxnet"] == "1.9.1" and INDEX["numpy"] == "1.23.5"
    assert INDEX["gluoncv_dist"].startswith("0.10.5")
    assert sum(p.stat().st_size for p in FIXTURES.iterdir()) < 3 * 2**20


def test_ssd_matches_gluoncv(tmp_path):
    io = np.load(FIXTURES / INDEX["models"]["ssd_mobilenet0_25"]["io"])
    model = _load("ssd_mobilenet0_25", tmp_path)
    assert model.classes == tuple(INDEX["classes"])
    x = torch.from_numpy(io["x"])
    cls_preds, box_preds, anchors = _raw(model, x)
    assert np.abs(io["cls_preds"]).max() > 0.5 and np.abs(io["box_preds"]).max() > 0.1
    _close(cls_preds.numpy(), io["cls_preds"])
    _close(box_preds.numpy(), io["box_preds"])
    _close(anchors.numpy(), io["anchors"], rel=1e-6)  # anchor order: row, column, anchor; GluonCV's sizes
    with torch.no_grad():
        _same_detections(model(x), io)


def test_yolo3_matches_gluoncv(tmp_path):
    io = np.load(FIXTURES / INDEX["models"]["yolo3_mobilenet0_25"]["io"])
    model = _load("yolo3_mobilenet0_25", tmp_path)
    x = torch.from_numpy(io["x"])
    out = _raw(model, x)
    pred = torch.cat([out.centers, out.scales, out.objness, out.cls_preds], -1).numpy()
    assert np.abs(io["pred"]).max() > 0.5
    _close(pred, io["pred"])  # deepest level first; per position, anchor: tx, ty, tw, th, objectness, classes
    _close(out.bboxes.numpy(), io["pred_bboxes"])
    _close((torch.sigmoid(out.cls_preds) * torch.sigmoid(out.objness)).numpy(), io["pred_scores"])
    with torch.no_grad():
        _same_detections(model(x), io)


def _gluoncv_rows(io) -> np.ndarray:
    """GluonCV's final R-CNN detections as ``[id, score, x1, y1, x2, y2]`` rows, best first: its output is
    class-major and also holds detections of its -1 padding proposals (boxes exactly -1), which go."""
    ids, scores, boxes = io["ids"][0, :, 0], io["scores"][0, :, 0], io["bboxes"][0]
    real = (ids >= 0) & ~(boxes == -1).all(1)
    order = np.argsort(-scores[real], kind="stable")
    return np.concatenate([ids[real, None], scores[real, None], boxes[real]], 1)[order]


@pytest.fixture(scope="module")
def rcnn(tmp_path_factory):
    """The converted Faster R-CNN (GluonCV's semantics, from_gluoncv's default) and GluonCV's outputs."""
    io = np.load(FIXTURES / INDEX["models"]["faster_rcnn_resnet18_v1b"]["io"])
    return _load("faster_rcnn_resnet18_v1b", tmp_path_factory.mktemp("rcnn")), io


def test_faster_rcnn_heads_and_proposals_match_gluoncv(rcnn):
    """RPN head, GluonCV's anchors and proposals, and the box head (RoIAlign, layer4, predictors) on them."""
    model, io = rcnn
    assert model.postprocess == "gluoncv" and model.metadata["postprocess"] == "gluoncv"
    x = torch.from_numpy(io["x"])
    with torch.no_grad():
        feats = model.feature_maps(x)
        objectness, offsets = model.rpn.head(list(feats.values()))
        _close(objectness[0].permute(0, 2, 3, 1).reshape(1, -1, 1).numpy(), io["rpn_scores"])
        _close(offsets[0].permute(0, 2, 3, 1).reshape(1, -1, 4).numpy(), io["rpn_boxes"])
        upper = x.new_tensor([x.shape[-1], x.shape[-2]] * 2).view(1, 1, 4)
        proposals, valid = model._gluoncv_proposals(x, feats, upper)
        # GluonCV's proposals: best first, -1 padded (fewer survive than the 48 kept)
        theirs = io["proposals"][0]
        real = (theirs >= 0).all(1)
        assert 20 < real.sum() < len(theirs)
        np.testing.assert_array_equal(valid[0].numpy(), real)
        _close(proposals[0, real].numpy(), theirs[real])
        pooled = model.roi_heads.box_roi_pool(feats, [torch.from_numpy(theirs)], [tuple(x.shape[-2:])])
        cls_pred, box_pred = model.roi_heads.box_predictor(model.roi_heads.box_head(pooled))
    assert np.abs(io["cls_pred"]).max() > 0.1 and np.abs(io["box_pred"]).max() > 0.1
    _close(cls_pred.numpy(), io["cls_pred"])
    assert (box_pred[:, :4] == 0).all()  # no background box in GluonCV
    _close(box_pred[:, 4:].numpy(), io["box_pred"])


def _same_rcnn_detections(model: torch.nn.Module, io) -> None:
    """Our detections are GluonCV's real ones, best first (each with a twin; near ties may swap)."""
    want = _gluoncv_rows(io)
    assert model.post_nms >= len(want) > 10
    with torch.no_grad():
        ids, scores, boxes = model(torch.from_numpy(io["x"]))
    keep = ids[0, :, 0] >= 0
    got = torch.cat([ids[0, keep], scores[0, keep], boxes[0, keep]], 1).numpy()
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got[:, 1], want[:, 1], rtol=0, atol=1e-5)
    for row in got:  # each has a GluonCV twin (the order of near ties may differ)
        twin = ((want[:, 0] == row[0]) & (np.abs(want[:, 1] - row[1]) < 1e-5)
                & (np.abs(want[:, 2:] - row[2:]).max(1) < 1e-3))
        assert twin.any(), row
    assert bool((boxes[0, ~keep] == -1).all())


def test_faster_rcnn_detections_match_gluoncv(rcnn):
    """GluonCV's final detections (unclipped boxes, scores above 0.01, per-class NMS 0.3), best first."""
    model, io = rcnn
    assert (_gluoncv_rows(io)[:, 2:] < 0).any()  # some boxes reach outside the image: not clipped
    _same_rcnn_detections(model, io)


def test_faster_rcnn_fpn_matches_gluoncv(tmp_path):
    """FPN (convolutional P6, cropped top-down upsampling), the 5-level RPN with one NMS across levels,
    GluonCV's RoI level rule, the two-layer box head and the final detections (1000 proposals, 3 classes)."""
    io = np.load(FIXTURES / INDEX["models"]["faster_rcnn_fpn_resnet18_v1b"]["io"])
    model = _load("faster_rcnn_fpn_resnet18_v1b", tmp_path, post_nms=3000)
    assert (model.fpn.p6.out_channels, model.roi_heads.box_head.fc6.out_features) == (64, 128)  # read from the file
    x = torch.from_numpy(io["x"])
    with torch.no_grad():
        feats = model.feature_maps(x)
        upper = x.new_tensor([x.shape[-1], x.shape[-2]] * 2).view(1, 1, 4)
        proposals, valid = model._gluoncv_proposals(x, feats, upper)
        theirs = io["proposals"][0]
        real = (theirs >= 0).all(1)
        assert 100 < real.sum() < len(theirs)
        np.testing.assert_array_equal(valid[0].numpy(), real)
        _close(proposals[0, real].numpy(), theirs[real])
        rois = torch.cat([torch.zeros(len(theirs), 1), torch.from_numpy(theirs)], 1)
        pooled = model._gluoncv_roi_align(feats, rois)
        cls_pred, box_pred = model.roi_heads.box_predictor(model.roi_heads.box_head(pooled))
    assert np.abs(io["cls_pred"]).max() > 0.1 and np.abs(io["box_pred"]).max() > 0.1
    _close(cls_pred.numpy(), io["cls_pred"])
    _close(box_pred[:, 4:].numpy(), io["box_pred"])
    _same_rcnn_detections(model, io)


@pytest.mark.slow
def test_faster_rcnn_gluoncv_postprocess_exports(rcnn):
    """GluonCV's semantics stay on the batched fixed-shape path: ``torch.export`` captures it, same output."""
    model, io = rcnn
    x = torch.from_numpy(io["x"])
    with torch.no_grad():
        ref = model(x)
        out = torch.export.export(model, (x,)).module()(x)
    for a, b in zip(out, ref):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_faster_rcnn_torchvision_postprocess_differs(tmp_path):
    """``postprocess="torchvision"`` keeps the zoo's default semantics: same weights, other detections."""
    io = np.load(FIXTURES / INDEX["models"]["faster_rcnn_resnet18_v1b"]["io"])
    model = _load("faster_rcnn_resnet18_v1b", tmp_path, postprocess="torchvision")
    assert model.metadata["postprocess"] == "torchvision" and model.score_thresh == 0.05
    x = torch.from_numpy(io["x"])
    with torch.no_grad():
        ids, scores, boxes = model(x)
        ref = model.torchvision_eval(x)
    keep = ids[0, :, 0] >= 0
    assert keep.sum() > 0 and float(boxes[0, keep].min()) >= 0  # clipped to the image
    torch.testing.assert_close(scores[0, keep, 0], ref[1][0, keep, 0], atol=1e-5, rtol=0)


def test_gluoncv_anchors():
    from toolkit.cv.models.rcnn import gluoncv_cell_anchors

    # Detectron's stride-16 anchors for sizes 128, 256, 512 (the table of its generate_anchors.py)
    cell = gluoncv_cell_anchors(16, (128, 256, 512), (0.5, 1, 2))
    np.testing.assert_array_equal(cell.numpy(), [
        [-84, -40, 99, 55], [-176, -88, 191, 103], [-360, -184, 375, 199],
        [-56, -56, 71, 71], [-120, -120, 135, 135], [-248, -248, 263, 263],
        [-36, -80, 51, 95], [-80, -168, 95, 183], [-168, -344, 183, 359]])


@pytest.mark.parametrize("name", sorted(INDEX["manifest"]))
def test_full_size_names_map(name):
    """Every tensor of GluonCV's full-size detector (names and shapes only) lands on one of ours, and back."""
    arrays = {k: torch.empty(shape, device="meta") for k, shape in INDEX["manifest"][name]}
    kwargs = {"postprocess": "gluoncv"} if name.startswith("faster_rcnn") else {}  # GluonCV's FPN modules
    with torch.device("meta"):
        model = get_model(name, **kwargs)
    state = gluoncv_detection_state(model, name, arrays, name)
    own = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert sorted(state) == sorted(own)
    bad = [k for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
    assert not bad, bad[:5]


def test_errors(tmp_path):
    path = _unpack("ssd_mobilenet0_25", tmp_path)
    entry = INDEX["models"]["ssd_mobilenet0_25"]
    with pytest.raises(WeightsError, match="3 classes.*pass classes"):
        from_gluoncv(path, entry["name"], **entry["kwargs"])
    with pytest.raises(WeightsError, match="another backbone"):
        from_gluoncv(path, entry["name"], classes=INDEX["classes"], filters=entry["kwargs"]["filters"])
    with pytest.raises(WeightsError, match="anchors of feature map 0"):  # data_shape 300 scales the anchor sizes
        from_gluoncv(path, entry["name"], classes=INDEX["classes"], data_shape=300, **entry["kwargs"])
    with pytest.raises(WeightsError, match="does not fit"):
        from_gluoncv(path, entry["name"], classes=INDEX["classes"], backbone="mobilenet0.25")  # other extras
    with pytest.raises(WeightsError, match="not a GluonCV YOLOv3"):
        from_gluoncv(path, "yolo3_mobilenet1.0_voc", classes=INDEX["classes"], backbone="mobilenet0.25")
    data = path.read_bytes()
    (tmp_path / "trunc.params").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated"):
        from_gluoncv(tmp_path / "trunc.params", entry["name"], classes=INDEX["classes"], **entry["kwargs"])
    yolo = INDEX["models"]["yolo3_mobilenet0_25"]
    with pytest.raises(WeightsError, match="not a GluonCV SSD"):
        from_gluoncv(_unpack("yolo3_mobilenet0_25", tmp_path), "ssd_512_mobilenet1.0_voc", classes=INDEX["classes"],
                     backbone="mobilenet0.25")
    with pytest.raises(WeightsError, match="does not fit"):
        from_gluoncv(_unpack("yolo3_mobilenet0_25", tmp_path), yolo["name"], classes=INDEX["classes"],
                     backbone="mobilenet0.25")  # GluonCV's full widths, not the file's
    with pytest.raises(WeightsError, match="not a GluonCV Faster R-CNN"):
        from_gluoncv(path, "faster_rcnn_resnet50_v1b_voc", classes=INDEX["classes"], backbone="resnet18_v1b")
    from toolkit.zoo.mxnet_params import read_params

    rcnn = INDEX["models"]["faster_rcnn_resnet18_v1b"]
    arrays = read_params(_unpack("faster_rcnn_resnet18_v1b", tmp_path))
    arrays["rpn.anchor_generator.anchors"] = arrays["rpn.anchor_generator.anchors"] + 0.5  # torchvision-like centres
    with pytest.raises(WeightsError, match="RPN anchors of level 0 differ"):
        gluoncv_detection_state(get_model(rcnn["name"], classes=INDEX["classes"], postprocess="gluoncv",
                                          **rcnn["kwargs"]), rcnn["name"], arrays)
    with pytest.raises(ValueError, match="postprocess must be one of"):
        get_model(rcnn["name"], postprocess="mxnet")
    with pytest.raises(WeightsError, match="not a GluonCV Faster R-CNN"):  # a C4 file for an FPN name
        from_gluoncv(_unpack("faster_rcnn_resnet18_v1b", tmp_path), "faster_rcnn_fpn_resnet50_v1b_coco",
                     classes=INDEX["classes"], backbone="resnet18_v1b")
    with pytest.raises(WeightsError, match="does not fit"):  # the default ResNet-50 backbone
        from_gluoncv(_unpack("faster_rcnn_resnet18_v1b", tmp_path), "faster_rcnn_resnet50_v1b_voc",
                     classes=INDEX["classes"])
