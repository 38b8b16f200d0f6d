"""The detection training/eval scripts on a tiny fashion-scenes set: exact resume, options, eval agreement."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts" / "detection"


def _load(name: str):
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(f"det_{name}", SCRIPTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    from toolkit.cv.data import build_fashion_scenes

    return build_fashion_scenes(tmp_path_factory.mktemp("scenes"), num_train=16, num_val=8, num_workers=1)


def _args(data: Path, save: Path, *extra: str) -> list[str]:
    return ["--network", "mobilenet0.25", "--data-shape", "64", "--dataset", "fashion-scenes", "--dataset-root",
            str(data), "--batch-size", "4", "--epochs", "2", "--lr", "0.01", "--warmup-epochs", "0.5",
            "--no-progress", "--log-interval", "2", "--num-threads", "1", "--save-prefix", str(save), *extra]


def test_ssd_resume_is_exact(scenes, tmp_path):
    train = _load("train_ssd")
    straight = train.main(_args(scenes, tmp_path / "a"))
    train.main(_args(scenes, tmp_path / "b", "--stop-after-epoch", "1"))
    assert not (tmp_path / "b" / "metrics.json").exists()
    resumed = train.main(_args(scenes, tmp_path / "b", "--resume", str(tmp_path / "b" / "checkpoint-last.pt")))
    name = "ssd_512_mobilenet1.0_voc.safetensors"
    wa, wb = load_file(str(tmp_path / "a" / name)), load_file(str(tmp_path / "b" / name))
    assert wa.keys() == wb.keys() and all(bool((wa[k] == wb[k]).all()) for k in wa)
    assert straight["sha256"] == resumed["sha256"]
    assert straight["voc07_map"] == resumed["voc07_map"] and straight["coco_map"] == resumed["coco_map"]
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert {"voc07_map", "coco_map", "num_params", "wall_time_s", "hardware", "dataset", "sha256"} <= metrics.keys()
    assert metrics["kwargs"]["backbone"] == "mobilenet0.25" and len(metrics["kwargs"]["classes"]) == 10
    records = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [0, 1]
    assert {"ce_loss", "smoothl1_loss", "lr", "val_voc07_map", "val_coco_map"} <= epochs[-1].keys()
    assert epochs[-1]["val_voc07_map"] == pytest.approx(metrics["voc07_map"], abs=0.01)


def test_yolo3_options_and_eval_agree(scenes, tmp_path):
    train = _load("train_yolo3")
    result = train.main(_args(scenes, tmp_path / "y", "--epochs", "1", "--mixup", "--no-mixup-epochs", "0",
                              "--label-smooth", "--no-wd", "--filters", "64,32,16"))
    records = [json.loads(line) for line in (tmp_path / "y" / "log.jsonl").read_text().splitlines()]
    assert {"obj_loss", "center_loss", "scale_loss", "cls_loss"} <= records[-1].keys()
    assert result["kwargs"]["filters"] == [64, 32, 16]  # eval.py must rebuild the narrow head to load the weights
    evaluate = _load("eval")
    again = evaluate.main(["--algorithm", "yolo3", "--network", "mobilenet0.25", "--data-shape", "64", "--dataset",
                           "fashion-scenes", "--dataset-root", str(scenes), "--num-threads", "1", "--pretrained",
                           str(tmp_path / "y" / "yolo3_mobilenet0.25_voc.safetensors")])
    assert round(again["voc07_map"], 2) == result["voc07_map"]
    assert round(again["coco_map"], 2) == result["coco_map"]


def test_yolo3_augmentation_flags_reach_the_preset():
    from toolkit.cv.presets._iou_crop import BatchedRandomIoUCrop

    train = _load("train_yolo3")
    parse = _load("_det_common").build_parser("yolo3", train.DEFAULTS).parse_args
    full, _, _ = train.presets(parse(["--data-shape", "64"]))
    assert isinstance(full.crop, BatchedRandomIoUCrop) and len(full.before.transforms) == 2
    light, _, _ = train.presets(parse(["--data-shape", "64", "--expand-ratio", "1", "--no-color-distort",
                                       "--no-iou-crop"]))
    assert light.before is None and light.crop is None
    zoom_only, _, _ = train.presets(parse(["--data-shape", "64", "--expand-ratio", "2", "--no-color-distort"]))
    assert [t.side_range for t in zoom_only.before.transforms] == [(1.0, 2.0)]


def test_bad_flags_are_named(scenes, tmp_path):
    with pytest.raises(SystemExit, match="YOLOv3 only"):
        _load("train_ssd").main(_args(scenes, tmp_path / "s", "--mixup"))
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="GPUs only"):
            _load("train_yolo3").main(_args(scenes, tmp_path / "u", "--syncbn"))
    with pytest.raises(SystemExit, match="--filters"):
        _load("train_ssd").main(_args(scenes, tmp_path / "f", "--filters", "64,32,16"))
    with pytest.raises(SystemExit, match="three positive widths"):
        _load("train_yolo3").main(_args(scenes, tmp_path / "g", "--filters", "64,32"))
    with pytest.raises(SystemExit, match="no_such_net"):
        _load("train_yolo3").main(_args(scenes, tmp_path / "t", "--network", "no_such_net"))


@pytest.mark.slow
def test_faster_rcnn_script(scenes, tmp_path):
    train = _load("train_faster_rcnn")
    result = train.main(["--network", "resnet18_v1b", "--use-fpn", "--short", "64", "--max-size", "96", "--dataset",
                         "fashion-scenes", "--dataset-root", str(scenes), "--batch-size", "2", "--epochs", "1",
                         "--max-train-samples", "4", "--no-progress", "--num-threads", "1", "--save-prefix",
                         str(tmp_path / "r")])
    assert result["model"] == "faster_rcnn_fpn_resnet50_v1b_voc" and result["kwargs"]["backbone"] == "resnet18_v1b"
    records = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert {"rpn_conf", "rpn_smoothl1", "rcnn_ce", "rcnn_smoothl1"} <= records[-1].keys()


def test_faster_rcnn_small_image_flags_and_eval_agree(scenes, tmp_path):
    """GluonCV's --anchor-scales / --rpn-*-nms / --rcnn-num-samples / --rcnn-pos-ratio reach the model; the
    architecture-changing ones are recorded so that eval.py rebuilds the same model and gets the same mAP."""
    import torch

    train = _load("train_faster_rcnn")
    common = ["--network", "mobilenet0.25", "--short", "64", "--max-size", "80", "--dataset", "fashion-scenes",
              "--dataset-root", str(scenes), "--num-threads", "1"]
    flags = ["--anchor-scales", "1,2,4", "--rpn-train-pre-nms", "300", "--rpn-train-post-nms", "60",
             "--rpn-test-pre-nms", "200", "--rpn-test-post-nms", "40", "--rcnn-num-samples", "16",
             "--rcnn-pos-ratio", "0.5"]
    import _det_common as det  # on sys.path through _load

    args = det.build_parser("faster_rcnn", train.DEFAULTS).parse_args(common + flags)
    model, _ = det.build_model(args, "faster_rcnn", [str(i) for i in range(10)])
    assert model.rpn.anchor_generator.sizes == ((16, 32, 64),)
    assert model.rpn._pre_nms_top_n == {"training": 300, "testing": 200}
    assert model.rpn._post_nms_top_n == {"training": 60, "testing": 40}
    sampler = model.roi_heads.fg_bg_sampler
    assert (sampler.batch_size_per_image, sampler.positive_fraction) == (16, 0.5)
    assert model.build_kwargs["anchor_sizes"] == [[16, 32, 64]] and model.build_kwargs["rpn_test"] == [200, 40]
    assert model.build_kwargs["data_shape"] == [64, 80] and model.metadata["input_shape"] == [3, 64, 80]
    fpn = det.build_parser("faster_rcnn", train.DEFAULTS).parse_args(
        common + ["--network", "resnet18_v1b", "--use-fpn", "--anchor-scales", "0.5,1,2,4,8"])
    assert det._rcnn_kwargs(fpn)["anchor_sizes"] == [[8], [16], [32], [64], [128]]
    with pytest.raises(SystemExit, match="rcnn-pos-ratio"):
        det.build_model(det.build_parser("faster_rcnn", train.DEFAULTS).parse_args(
            common + ["--rcnn-pos-ratio", "1.5"]), "faster_rcnn", ["a"])

    torch.manual_seed(0)
    result = train.main(common + flags + ["--batch-size", "2", "--epochs", "1", "--max-train-samples", "4",
                                          "--no-progress", "--save-prefix", str(tmp_path / "c4")])
    assert result["kwargs"]["anchor_sizes"] == [[16, 32, 64]] and result["kwargs"]["rpn_test"] == [200, 40]
    again = _load("eval").main(["--algorithm", "faster_rcnn", *common, "--batch-size", "2", "--pretrained",
                                str(tmp_path / "c4" / "faster_rcnn_mobilenet0.25_voc.safetensors")])
    assert round(again["voc07_map"], 2) == result["voc07_map"]
    assert round(again["coco_map"], 2) == result["coco_map"]


def test_tutorial_runs_tiny(tmp_path):
    spec = importlib.util.spec_from_file_location("det_tutorial", ROOT / "tutorials" / "detection_fashion_scenes.py")
    tutorial = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tutorial)
    out = tutorial.main(["--tiny", "--workdir", str(tmp_path)])
    assert 0.0 <= out["voc07_map"] <= 100.0 and 0.0 <= out["coco_map"] <= 100.0
    assert sum(out["losses"][-2:]) < sum(out["losses"][:2])  # it learns something
    assert (tmp_path / "detections.png").stat().st_size > 1000


@pytest.mark.slow
@pytest.mark.parametrize("family", ["ssd", "yolo3"])
def test_detector_overfits_one_batch(scenes, family):
    """The whole path (preset, batchify, targets, loss, decoding, NMS, VOC07 mAP) learns 8 canvases by heart."""
    import torch

    from toolkit.cv.data import FashionScenes
    from toolkit.cv.data.detection import detection_batchify
    from toolkit.cv.metrics.detection import VOC07MApMetric
    from toolkit.cv.models.ssd import SSDMultiBoxLoss, SSDTargetGenerator
    from toolkit.cv.models.yolo import YOLOV3Loss, YOLOV3TargetGenerator
    from toolkit.cv.presets.ssd import SSDDefaultValTransform
    from toolkit.zoo import get_model

    torch.manual_seed(0)
    ds = FashionScenes("train", scenes)
    x, labels = detection_batchify()([SSDDefaultValTransform(96, 96)(*ds[i]) for i in range(8)])
    if family == "ssd":
        net = get_model("ssd_512_mobilenet1.0_voc", backbone="mobilenet0.25", classes=ds.classes, data_shape=96)
    else:
        net = get_model("yolo3_mobilenet1.0_voc", backbone="mobilenet0.25", classes=ds.classes)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(120):
        net.train()
        if family == "ssd":
            cls, box, anchors = net(x)
            loss = SSDMultiBoxLoss()(cls, box, *SSDTargetGenerator()(anchors, labels))[0].sum()
        else:
            out = net(x)
            loss = sum(v.sum() for v in YOLOV3Loss()(out, *YOLOV3TargetGenerator(10)(out, labels, (96, 96)))) / 8
        opt.zero_grad()
        loss.backward()
        opt.step()
    metric = VOC07MApMetric()
    with torch.no_grad():
        ids, scores, boxes = net.eval()(x)
    metric.update(boxes, ids, scores, labels[..., :4], labels[..., 4], labels[..., 5])
    assert metric.get()[1] > 0.9
