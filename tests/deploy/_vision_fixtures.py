"""The tiny detection and segmentation exports the deployment tests share (one export per session).

``conftest.py`` turns these into the session fixtures ``det_export``, ``rcnn_export``, ``seg_export`` and
their int8 twins, so that the Python, C++ and Java tests of a task compare one export instead of each module
exporting (and quantizing) its own: a detector export takes ~45 s, a quantization ~25 s on 2 cores.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

DET_SIZE = 64
SEG_SIZE = 64
SEG_NCLASS = 11  # fashion-scenes: background + 10


def det_classes() -> list[str]:
    from toolkit.cv.data.scenes import SCENES_CLASSES

    return list(SCENES_CLASSES)  # the offline fashion-scenes set's 10 classes, so quantize can report its mAP


def det_kwargs() -> dict:
    return {"backbone": "mobilenet0.25", "data_shape": DET_SIZE, "classes": det_classes()}


def tiny_ssd(photos):
    """The tutorial's small SSD (MobileNet 0.25) at 64x64, random heads, BatchNorm statistics taken from photos.

    Freshly initialised BatchNorm layers leave the features nearly constant, so scores tie and the NMS order
    is arbitrary; statistics from real images give distinct scores, a fair comparison between runtimes.
    """
    from toolkit.cv.deploy.detection import detection_input
    from toolkit.zoo import get_model

    torch.manual_seed(0)
    net = get_model("ssd_512_mobilenet1.0_voc", **det_kwargs())
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "cls" in name or "class" in name:
                p.normal_(0, 0.05)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None  # cumulative average over the batch below
        net.train()
        batch = np.stack([detection_input(p, net.metadata)[0] for p in photos])
        net(torch.from_numpy(batch))
    return net.eval()


def export_detector(folder: Path, photos) -> tuple[Path, torch.nn.Module]:
    """``toolkit export`` of :func:`tiny_ssd`: (prefix, the eager model)."""
    from toolkit.deploy.cli import main

    net = tiny_ssd(photos)
    ckpt = folder / "ssd.pt"
    torch.save({"model_name": "ssd_512_mobilenet1.0_voc", "model_kwargs": det_kwargs(), "state_dict": net.state_dict()},
               ckpt)
    assert main(["export", str(ckpt), "--out", str(folder / "ssd")]) == 0
    return folder / "ssd", net


RCNN_NAME = "fasterrcnn_mobilenet_v3_large_320_fpn"
RCNN_SIZE = 128


def rcnn_kwargs() -> dict:
    return {"classes": det_classes(), "data_shape": RCNN_SIZE, "post_nms": 20}


def tiny_frcnn(photos):
    """torchvision's Faster R-CNN MobileNetV3-Large-320-FPN at 128x128, 20 detections per image, random heads,
    BatchNorm statistics of the backbone taken from the photos (distinct scores, as :func:`tiny_ssd`)."""
    from toolkit.cv.deploy.detection import detection_input
    from toolkit.zoo import get_model

    torch.manual_seed(0)
    net = get_model(RCNN_NAME, **rcnn_kwargs())
    with torch.no_grad():
        net.roi_heads.box_predictor.cls_score.weight.normal_(0, 0.05)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None
        net.train()
        batch = np.stack([detection_input(p, net.metadata)[0] for p in photos])
        net.feature_maps(torch.from_numpy(batch))
    return net.eval()


def export_frcnn(folder: Path, photos) -> tuple[Path, torch.nn.Module]:
    """``toolkit export`` of :func:`tiny_frcnn` (the batched fixed-shape eval path): (prefix, the eager model)."""
    from toolkit.deploy.cli import main

    net = tiny_frcnn(photos)
    ckpt = folder / "frcnn.pt"
    torch.save({"model_name": RCNN_NAME, "model_kwargs": rcnn_kwargs(), "state_dict": net.state_dict()}, ckpt)
    assert main(["export", str(ckpt), "--out", str(folder / "frcnn")]) == 0
    return folder / "frcnn", net


def export_segmenter(folder: Path) -> Path:
    """A tiny FCN (ResNet-18 v1s, random weights, 64x64 input) exported with ``toolkit export``."""
    from toolkit.deploy.cli import main
    from toolkit.zoo import get_model

    torch.manual_seed(0)
    kwargs = {"backbone": "resnet18_v1s", "crop_size": SEG_SIZE, "classes": SEG_NCLASS}
    net = get_model("fcn_resnet50_voc", **kwargs)
    ckpt = folder / "fcn.pt"
    torch.save({"model_name": "fcn_resnet50_voc", "model_kwargs": kwargs, "state_dict": net.state_dict()}, ckpt)
    assert main(["export", str(ckpt), "--out", str(folder / "fcn")]) == 0
    return folder / "fcn"


def quantized(prefix: Path, photos, folder: Path) -> Path:
    """``toolkit quantize`` of a copy of ``prefix`` in ``folder``, the photos as calibration images; the int8 prefix."""
    from toolkit.deploy.cli import main

    for suffix in (".onnx", ".json"):
        shutil.copy(f"{prefix}{suffix}", folder / f"{prefix.name}{suffix}")
    calib = folder / "calib"
    calib.mkdir()
    for p in photos:
        shutil.copy(p, calib / p.name)
    assert main(["quantize", str(folder / prefix.name), "--calib", str(calib), "--batch-size", "2",
                 "--num-calib-batches", "2"]) == 0
    return folder / f"{prefix.name}-int8"
