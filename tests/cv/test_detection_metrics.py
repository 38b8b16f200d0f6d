"""VOC (GluonCV semantics) and COCO (pycocotools) detection metrics on hand-computable cases."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from toolkit.cv.data import COCODetection
from toolkit.cv.metrics import COCODetectionMetric, VOC07MApMetric, VOCMApMetric

GT = np.array([[[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]], np.float32)
GT_LABELS = np.array([[0, 0, 0]])
# p4 (0.95) hits the third ground truth, p1 (0.9) the first, p2 (0.8) nothing, p3 (0.7) the second
PRED = np.array([[[40, 40, 50, 50], [0, 0, 10, 10], [60, 60, 70, 70], [20, 20, 30, 30]]], np.float32)
PRED_LABELS = np.array([[0, 0, 0, 0]])
PRED_SCORES = np.array([[0.95, 0.9, 0.8, 0.7]])


def _run(metric, *args, **kw):
    metric.update(*args, **kw)
    return metric.get()


def test_difficult_predictions_are_ignored_not_false_positives():
    # third ground truth difficult: p4 is ignored; matches p1 TP, p2 FP, p3 TP over 2 positives
    # precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> area AP = 0.5 * 1 + 0.5 * 2/3
    diff = np.array([[0, 0, 1]])
    _, values = _run(VOCMApMetric(class_names=["a"]), PRED, PRED_LABELS, PRED_SCORES, GT, GT_LABELS, diff)
    assert values[0] == pytest.approx(0.5 + 0.5 * 2 / 3) and values[1] == values[0]
    # VOC07: recall >= 0, .1, ..., .5 -> max precision 1 (6 points); .6 ... 1 -> 2/3 (5 points)
    _, v07 = _run(VOC07MApMetric(class_names=["a"]), PRED, PRED_LABELS, PRED_SCORES, GT, GT_LABELS, diff)
    assert v07[0] == pytest.approx((6 + 5 * 2 / 3) / 11)
    # without difficult flags all three count: TP TP FP TP over 3 -> area 2/3 + 1/3 * 3/4
    name, value = _run(VOCMApMetric(), PRED, PRED_LABELS, PRED_SCORES, GT, GT_LABELS)
    assert name == "VOCMeanAP" and value == pytest.approx(2 / 3 + 3 / 4 / 3)


def test_duplicates_are_false_positives_and_padding_ignored():
    pred = np.array([[[0, 0, 10, 10], [1, 1, 10, 10], [-1, -1, -1, -1]]], np.float32)
    labels, scores = np.array([[0, 0, -1]]), np.array([[0.9, 0.8, -1]])
    gt = np.array([[[0, 0, 10, 10], [-1, -1, -1, -1]]], np.float32)
    m = VOCMApMetric(class_names=["a"])
    m.update(pred, labels, scores, gt, np.array([[0, -1]]))
    assert m._match[0] == [1, 0] and m._n_pos[0] == 1
    assert m.get()[1][0] == pytest.approx(1.0)  # TP first: precision 1 at recall 1


def test_score_ties_follow_gluoncv_order():
    # one TP (image 0) and one FP (image 1) with the same score: GluonCV's reversed argsort puts the
    # later-added FP first -> precision 0 then 1/2 at recall 1 -> AP 0.5 (1.0 the other way round)
    m = VOCMApMetric()
    m.update(np.array([[[0, 0, 10, 10]]]), np.array([[0]]), np.array([[0.5]]), np.array([[[0, 0, 10, 10]]]),
             np.array([[0]]))
    m.update(np.array([[[0, 0, 10, 10]]]), np.array([[0]]), np.array([[0.5]]), np.zeros((1, 0, 4)),
             np.zeros((1, 0)))
    assert m.get()[1] == pytest.approx(0.5)


def test_iou_on_integer_boxes_as_voc():
    # continuous IoU of these boxes is 36/81 < 0.5, but VOC's "+1" boxes give 50/100 = 0.5: a match
    pred, gt = np.array([[[0, 0, 9, 9]]]), np.array([[[0, 0, 9, 4]]])
    assert _run(VOCMApMetric(), pred, np.array([[0]]), np.array([[1.0]]), gt, np.array([[0]]))[1] == 1.0
    assert _run(VOCMApMetric(iou_thresh=0.51), pred, np.array([[0]]), np.array([[1.0]]), gt,
                np.array([[0]]))[1] == 0.0


def test_nan_for_classes_without_ground_truth_and_torch_inputs():
    pred = torch.tensor([[[0, 0, 10, 10], [5, 5, 8, 8], [0, 0, 3, 3]]], dtype=torch.float32)
    labels = torch.tensor([[[0], [2], [-1]]])  # (B, K, 1) as detectors return them
    scores = torch.tensor([[[0.9], [0.8], [0.1]]])
    gt = torch.tensor([[[0, 0, 10, 10], [20, 20, 30, 30]]], dtype=torch.float32)
    gt_labels = torch.tensor([[0, 1]])
    names, values = _run(VOC07MApMetric(class_names=["a", "b", "c", "d"]), pred, labels, scores, gt, gt_labels)
    assert names == ["a", "b", "c", "d", "mAP"]
    assert values[0] == pytest.approx(1.0) and values[1] == 0.0  # b: ground truth, no prediction
    assert math.isnan(values[2]) and math.isnan(values[3])       # c: predictions only; d: never seen
    assert values[4] == pytest.approx(0.5)
    # numpy gives the same, and lists of per-device batches are concatenated
    m = VOC07MApMetric(class_names=["a", "b", "c", "d"])
    m.update([pred.numpy()], [labels.numpy()], [scores.numpy()], [gt.numpy()], [gt_labels.numpy()])
    np.testing.assert_equal(m.get()[1], values)
    m.reset()
    assert math.isnan(m.get()[1][-1])


def test_metric_bad_input():
    m = VOCMApMetric()
    with pytest.raises(ValueError, match="pred_bboxes must have shape"):
        m.update(np.zeros((1, 2, 3)), np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 1, 4)), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="pred_scores"):
        m.update(np.zeros((1, 2, 4)), np.zeros((1, 2)), np.zeros((1, 3)), np.zeros((1, 1, 4)), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="iou_thresh"):
        VOCMApMetric(iou_thresh=0)
    with pytest.raises(TypeError, match="class_names"):
        VOCMApMetric(class_names="abc")


# ----------------------------------------------------------------------------- COCO
@pytest.fixture
def coco_set(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "val").mkdir()
    images, anns = [], []
    boxes = {1: [[10, 10, 20, 20], [50, 50, 30, 20]], 2: [[5, 5, 40, 40]]}  # xywh
    for img_id, (w, h) in ((1, (100, 80)), (2, (60, 60))):
        Image.new("RGB", (w, h)).save(tmp_path / "val" / f"{img_id}.png")
        images.append({"id": img_id, "file_name": f"{img_id}.png", "width": w, "height": h})
        for b in boxes[img_id]:
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": 7 if b[0] == 5 else 3,
                         "bbox": b, "area": b[2] * b[3], "iscrowd": 0})
    data = {"images": images, "annotations": anns,
            "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}]}
    (tmp_path / "annotations" / "instances_val.json").write_text(json.dumps(data))
    return COCODetection(tmp_path, "val", skip_empty=False)


def _xyxy(b):
    return [b[0], b[1], b[0] + b[2], b[1] + b[3]]


def test_coco_metric_perfect_and_half(coco_set):
    m = COCODetectionMetric(coco_set)
    assert m.class_names == ["cat", "dog"]
    # dataset order, padded batch: image 1 (two cats), image 2 (one dog)
    bboxes = np.array([[_xyxy([10, 10, 20, 20]), _xyxy([50, 50, 30, 20])], [_xyxy([5, 5, 40, 40]), [-1] * 4]])
    ids = np.array([[0, 0], [1, -1]])
    scores = np.array([[0.9, 0.8], [0.7, -1]])
    m.update(bboxes, ids, scores)
    names, values = m.get()
    assert names[:3] == ["mAP", "mAP@0.5", "mAP@0.75"] and names[-2:] == ["AP/cat", "AP/dog"]
    assert values[0] == pytest.approx(1.0) and values[1] == pytest.approx(1.0)
    assert values[-2:] == pytest.approx([1.0, 1.0])
    assert "Average Precision" in m.summary
    # only one of the two cats found: COCO's 101-point precision is 1 for recall <= 0.5 -> 51/101
    m.reset()
    m.update(bboxes[:1, :1], ids[:1, :1], scores[:1, :1], image_ids=[1])
    values = m.get()[1]
    assert values[-2] == pytest.approx(51 / 101) and math.isnan(values[-1])  # no dog in image 1


def test_coco_metric_rescales_and_checks(coco_set):
    # predictions in a 50x50 network input: rescaled to 100x80 (image 1)
    m = COCODetectionMetric(coco_set, data_shape=(40, 50))
    m.update(np.array([[[5, 5, 15, 15], [25, 25, 40, 35]]]), np.array([[0, 0]]), np.array([[0.9, 0.8]]),
             image_ids=torch.tensor([1]))
    assert m._results[0]["bbox"] == [10, 10, 20, 20] and m.get()[1][0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="image id 9"):
        m.update(np.zeros((1, 1, 4)), np.zeros((1, 1)), np.ones((1, 1)), image_ids=[9])
    with pytest.raises(ValueError, match="class id 5"):
        m.update(np.zeros((1, 1, 4)), np.array([[5]]), np.ones((1, 1)), image_ids=[1])
    empty = COCODetectionMetric(coco_set.coco)
    empty.update(np.zeros((2, 1, 4)), -np.ones((2, 1)), np.zeros((2, 1)))
    assert empty.get()[1][0] == 0.0  # nothing detected
    with pytest.raises(ValueError, match="more predictions"):
        empty.update(np.zeros((1, 1, 4)), np.zeros((1, 1)), np.zeros((1, 1)))
    with pytest.raises(TypeError, match="COCODetection"):
        COCODetectionMetric(42)
