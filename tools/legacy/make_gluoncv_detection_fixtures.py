"""Write GluonCV detection reference fixtures for ``tests/cv/test_detection_convert_gluoncv.py``.

For reduced SSD and YOLOv3 detectors (GluonCV's own constructors with a MobileNet 0.25 base,
3 classes and half (SSD) or a quarter (YOLOv3) of the extra layers' widths, random weights:
``pretrained_base=False``, nothing is downloaded) and a Faster R-CNN (below): randomise and sparsify
the parameters as ``make_gluoncv_fixtures.py`` does (so the committed files stay small), save them
with ``net.save_parameters`` (xz-compressed), and record for a fixed batch of two 96x128 images
(Faster R-CNN: one 64x64 image)

* the raw head outputs, captured with forward hooks on GluonCV's own layers in inference mode:
  SSD ``cls_preds`` (B, N, C+1), ``box_preds`` (B, N, 4) and ``anchors`` (1, N, 4) concatenated as
  ``SSD.hybrid_forward`` does; YOLOv3 ``pred`` (B, N, 5+C) per position and anchor, deepest level
  first (``YOLOOutputV3``'s reshape of its prediction convolution), with the decoded ``bboxes``
  (B, N, 4) and class ``scores`` (B, N, C) that ``YOLOOutputV3`` hands to NMS;
* the final ``ids``, ``scores``, ``bboxes`` of ``net(x)`` (box_nms, -1 padded);
* Faster R-CNN (GluonCV's ``faster_rcnn_resnet50_v1b_voc`` recipe on ResNet-18 v1b, one image): the
  RPN head's scores and offsets, the RPN's proposals (``RCNN_RPN_TEST``), the box head's class and box
  outputs on them, and the final ``ids``, ``scores``, ``bboxes`` (GluonCV's class-major (1, C * P, 1/4)
  rows, padding proposals included);
* FPN Faster R-CNN (``faster_rcnn_fpn_resnet50_v1b_coco``'s recipe on ResNet-18 v1b, narrower, one image):
  the RPN's proposals, the box head's outputs on them and the final detections.

``manifest`` in the JSON index lists parameter names and shapes (no arrays) of full-size GluonCV
detectors, so the tests check the name mapping at their real size.

Run it with the MXNet peer interpreter (``benchmarks/peer/setup_mxnet_venv.sh``)::

    ~/.toolkit/peer-venv/bin/python tools/legacy/make_gluoncv_detection_fixtures.py [OUT_DIR]
"""
from __future__ import annotations

import json
import lzma
import os
import shutil
import sys
import tempfile
import warnings

warnings.filterwarnings("ignore")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gluoncv  # noqa: E402
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from gluoncv.model_zoo import get_model  # noqa: E402
import make_gluoncv_fixtures as base  # noqa: E402
from make_gluoncv_fixtures import SEED, SPARSE_ABOVE, _dist_version, randomise  # noqa: E402

# Denser than the classifiers' 0.005: at that sparsity most of the deep SSD/YOLO activations die after the
# ReLUs, many positions then predict exactly the same scores, and NMS order between exact ties is arbitrary.
KEEP = 0.05
KEEP_RCNN = 0.02  # Faster R-CNN: only raw outputs are compared (no NMS order), so sparser and smaller
# class logits scaled up so that scores spread out (near-uniform softmax/sigmoid outputs crowd together)
LOGIT_SCALE = 4.0

CLASSES = ["cat", "dog", "bird"]
SHAPE = (2, 3, 96, 128)
# GluonCV's ssd_512_mobilenet1.0 configuration (ssd.py), on MobileNet 0.25
SSD_FILTERS = [256, 256, 128, 128]  # GluonCV's are 512, 512, 256, 256: halved to keep the fixture small
SSD_KW = dict(features=["relu22_fwd", "relu26_fwd"], filters=SSD_FILTERS,
              sizes=[51.2, 102.4, 189.4, 276.4, 363.52, 450.6, 492],
              ratios=[[1, 2, 0.5]] + [[1, 2, 0.5, 3, 1.0 / 3]] * 3 + [[1, 2, 0.5]] * 2,
              steps=[16, 32, 64, 128, 256, 512])
YOLO_FILTERS = [128, 64, 32]  # GluonCV's are 512, 256, 128
YOLO_ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]
# Faster R-CNN: one 64x64 image; 100 / 48 proposals before / after the RPN's NMS (GluonCV's are 6000 / 300:
# the box head costs a ResNet layer4 per proposal) so that the pre-NMS cut applies (64x64 has 240 anchors)
# and some of the 48 proposals are GluonCV's -1 padding
RCNN_SHAPE = (1, 3, 64, 64)
RCNN_RPN_TEST = (100, 48)
# FPN Faster R-CNN: GluonCV's proposal counts (6000 / 1000), one 80x112 image (odd C4/C5 sizes: the
# top-down path crops its upsampled maps), FPN / box head / RPN head widths (GluonCV's: 256, 1024, 1024)
FPN_SHAPE = (1, 3, 80, 112)
FPN_WIDTHS = (64, 128, 128)
MANIFEST = ["ssd_512_mobilenet1.0_voc", "ssd_512_resnet50_v1_voc", "yolo3_mobilenet1.0_voc", "yolo3_darknet53_voc",
            "faster_rcnn_resnet50_v1b_voc", "faster_rcnn_fpn_resnet50_v1b_coco"]


def randomise_moving_stats(net, rng: np.random.RandomState) -> None:
    """The symbol BatchNorms (SSD's extra layers) name their statistics moving_mean/var, which
    ``randomise`` leaves alone; randomise them too so that loading them wrongly shows."""
    for name, param in net.collect_params().items():
        if name.endswith("moving_mean"):
            param.set_data(mx.nd.array(rng.uniform(-0.2, 0.2, param.shape).astype(np.float32)))
        elif name.endswith("moving_var"):
            param.set_data(mx.nd.array(rng.uniform(0.5, 2.0, param.shape).astype(np.float32)))


def scale_logits(net) -> None:
    """Multiply the class (and YOLO objectness) rows of the output layers by LOGIT_SCALE."""
    if hasattr(net, "class_predictors"):
        for cp in net.class_predictors:
            for param in cp.predictor.collect_params().values():
                param.set_data(param.data() * LOGIT_SCALE)
        return
    for out in getattr(net, "yolo_outputs", []):  # (Faster R-CNN: only raw outputs are compared)
        for param in out.prediction.collect_params().values():
            data = param.data().asnumpy()
            rows = data.reshape(out._num_anchors, -1, *data.shape[1:])
            rows[:, 4:] *= LOGIT_SCALE  # per anchor: tx, ty, tw, th, objectness, classes
            param.set_data(mx.nd.array(rows.reshape(data.shape)))


def build_ssd():
    from gluoncv.model_zoo.ssd.ssd import get_ssd

    return get_ssd("mobilenet0.25", 512, classes=CLASSES, dataset="voc", pretrained=False,
                   pretrained_base=False, **SSD_KW)


def build_yolo():
    from gluoncv.model_zoo.mobilenet import get_mobilenet
    from gluoncv.model_zoo.yolo.yolo3 import get_yolov3

    base = get_mobilenet(multiplier=0.25, pretrained=False)
    stages = [base.features[:33], base.features[33:69], base.features[69:-2]]  # as yolo3_mobilenet1_0_voc
    return get_yolov3("mobilenet0.25", stages, YOLO_FILTERS, YOLO_ANCHORS, [8, 16, 32], CLASSES, "voc",
                      pretrained=False)


def build_faster_rcnn():
    """GluonCV's faster_rcnn_resnet50_v1b_voc recipe (predefined_models.py) on ResNet-18 v1b, RPN width 256,
    RCNN_RPN_TEST proposals."""
    from gluoncv.model_zoo.rcnn.faster_rcnn.faster_rcnn import get_faster_rcnn
    from gluoncv.model_zoo.resnetv1b import resnet18_v1b
    from mxnet.gluon import nn

    base = resnet18_v1b(pretrained=False, dilated=False, use_global_stats=True)
    features, top_features = nn.HybridSequential(), nn.HybridSequential()
    for layer in ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3"]:
        features.add(getattr(base, layer))
    top_features.add(base.layer4)
    return get_faster_rcnn(
        name="resnet18_v1b", dataset="voc", pretrained=False, features=features, top_features=top_features,
        classes=CLASSES, short=600, max_size=1000, train_patterns=None, nms_thresh=0.3, nms_topk=400, post_nms=100,
        roi_mode="align", roi_size=(14, 14), strides=16, clip=None, rpn_channel=256, base_size=16,
        scales=(2, 4, 8, 16, 32), ratios=(0.5, 1, 2), alloc_size=(128, 128), rpn_nms_thresh=0.7,
        rpn_train_pre_nms=12000, rpn_train_post_nms=2000, rpn_test_pre_nms=RCNN_RPN_TEST[0],
        rpn_test_post_nms=RCNN_RPN_TEST[1],
        rpn_min_size=16, num_sample=128, pos_iou_thresh=0.5, pos_ratio=0.25)


def build_faster_rcnn_fpn():
    """GluonCV's faster_rcnn_fpn_resnet50_v1b_coco recipe (predefined_models.py) on ResNet-18 v1b (outputs as
    its mask_rcnn_fpn_resnet18_v1b_coco), FPN_WIDTHS instead of 256 / 1024 / 1024 channels."""
    from gluoncv.model_zoo.rcnn.faster_rcnn.faster_rcnn import get_faster_rcnn
    from gluoncv.model_zoo.resnetv1b import resnet18_v1b
    from gluoncv.nn.feature import FPNFeatureExpander
    from mxnet.gluon import nn

    fpn, box, rpn = FPN_WIDTHS
    base = resnet18_v1b(pretrained=False, dilated=False, use_global_stats=True)
    features = FPNFeatureExpander(
        network=base, outputs=["layers1_relu3_fwd", "layers2_relu3_fwd", "layers3_relu3_fwd", "layers4_relu3_fwd"],
        num_filters=[fpn] * 4, use_1x1=True, use_upsample=True, use_elewadd=True, use_p6=True, no_bias=False,
        pretrained=False)
    box_features = nn.HybridSequential()
    for _ in range(2):
        box_features.add(nn.Dense(box))
        box_features.add(nn.Activation("relu"))
    return get_faster_rcnn(
        name="fpn_resnet18_v1b", dataset="coco", pretrained=False, features=features, top_features=None,
        classes=CLASSES, box_features=box_features, short=800, max_size=1333, min_stage=2, max_stage=6,
        train_patterns=None, nms_thresh=0.5, nms_topk=-1, post_nms=-1, roi_mode="align", roi_size=(7, 7),
        strides=(4, 8, 16, 32, 64), clip=4.14, rpn_channel=rpn, base_size=16, scales=(2, 4, 8, 16, 32),
        ratios=(0.5, 1, 2), alloc_size=(384, 384), rpn_nms_thresh=0.7, rpn_train_pre_nms=12000,
        rpn_train_post_nms=2000, rpn_test_pre_nms=6000, rpn_test_post_nms=1000, rpn_min_size=1, num_sample=512,
        pos_iou_thresh=0.5, pos_ratio=0.25, max_num_gt=100)


def _roi_align_zeroing_invalid(roi_align):
    """MXNet 1.9.1's CPU ``contrib.ROIAlign`` leaves the output rows of RoIs with batch index -1
    unwritten (measured here: NaN and other leftovers of earlier buffers), and GluonCV's FPN
    ``_pyramid_roi_feats`` sums the pooling of every level with the RoIs of other levels masked that
    way, so its box-head inputs pick up whatever memory held (the recorded outputs then change from
    run to run). Zero those rows: the sum GluonCV means (its other branch, ROIAlign of every RoI then
    ``where(level == l)``, computes the same)."""
    def wrapped(data, rois, *args, **kwargs):
        out = roi_align(data, rois, *args, **kwargs)
        valid = (rois.slice_axis(axis=1, begin=0, end=1) >= 0).reshape((-1, 1, 1, 1))
        return mx.nd.where(mx.nd.broadcast_like(valid, out), out, mx.nd.zeros_like(out))
    return wrapped


def faster_rcnn_fpn_outputs(net, x: mx.nd.NDArray) -> dict:
    """The RPN's proposals, the box head's outputs on them and the final detections (one image)."""
    rpn, cls, box = [], [], []
    net.rpn.register_forward_hook(lambda blk, inp, out: rpn.append([o.asnumpy() for o in out]))
    net.class_predictor.register_forward_hook(_hook(cls))
    net.box_predictor.register_forward_hook(_hook(box))
    original = mx.nd.contrib.ROIAlign
    mx.nd.contrib.ROIAlign = _roi_align_zeroing_invalid(original)
    try:
        ids, scores, bboxes = net(x)
    finally:
        mx.nd.contrib.ROIAlign = original
    return {"proposals": rpn[0][1], "proposal_scores": rpn[0][0], "cls_pred": cls[0], "box_pred": box[0],
            "ids": ids.asnumpy(), "scores": scores.asnumpy(), "bboxes": bboxes.asnumpy()}


def faster_rcnn_outputs(net, x: mx.nd.NDArray) -> dict:
    """RPN head outputs, the RPN's proposals and the box head's outputs on them (batch of one image)."""
    score, loc, rpn, cls, box = [], [], [], [], []
    net.rpn.score.register_forward_hook(_hook(score))
    net.rpn.loc.register_forward_hook(_hook(loc))
    net.rpn.register_forward_hook(lambda blk, inp, out: rpn.append([o.asnumpy() for o in out]))
    net.class_predictor.register_forward_hook(_hook(cls))
    net.box_predictor.register_forward_hook(_hook(box))
    ids, scores, bboxes = net(x)
    return {"rpn_scores": _flat(score[0], 1), "rpn_boxes": _flat(loc[0], 4), "proposals": rpn[0][1],
            "proposal_scores": rpn[0][0], "cls_pred": cls[0], "box_pred": box[0],
            "ids": ids.asnumpy(), "scores": scores.asnumpy(), "bboxes": bboxes.asnumpy()}


def _flat(a: np.ndarray, width: int) -> np.ndarray:
    # SSD.hybrid_forward: transpose (0, 2, 3, 1), flatten, reshape (0, -1, width)
    return a.transpose(0, 2, 3, 1).reshape(a.shape[0], -1, width)


def _hook(store: list):
    def fn(block, inputs, output):
        store.append(output.asnumpy())
    return fn


def ssd_outputs(net, x: mx.nd.NDArray) -> dict:
    cls, box, anc = [], [], []
    for blocks, store in ((net.class_predictors, cls), (net.box_predictors, box), (net.anchor_generators, anc)):
        for b in blocks:
            b.register_forward_hook(_hook(store))
    ids, scores, bboxes = net(x)  # outside autograd.record(): inference mode
    c = len(net.classes) + 1
    return {"cls_preds": np.concatenate([_flat(a, c) for a in cls], 1),
            "box_preds": np.concatenate([_flat(a, 4) for a in box], 1),
            "anchors": np.concatenate([a.reshape(1, -1) for a in anc], 1).reshape(1, -1, 4),
            "ids": ids.asnumpy(), "scores": scores.asnumpy(), "bboxes": bboxes.asnumpy()}


def yolo_outputs(net, x: mx.nd.NDArray) -> dict:
    raw, dets = [], []
    for out in net.yolo_outputs:
        out.prediction.register_forward_hook(_hook(raw))
        out.register_forward_hook(_hook(dets))
    ids, scores, bboxes = net(x)
    c = len(net.classes)
    preds, boxes, cls_scores = [], [], []
    for p, d, out in zip(raw, dets, net.yolo_outputs):
        a = out._num_anchors
        b, _, h, w = p.shape
        # YOLOOutputV3: (B, A*P, H*W) -> (B, H*W, A, P)
        preds.append(p.reshape(b, a * (5 + c), h * w).transpose(0, 2, 1).reshape(b, h * w * a, 5 + c))
        d = d.reshape(b, c, h * w * a, 6)  # detections per class: (id, score, x1, y1, x2, y2)
        boxes.append(d[:, 0, :, 2:])
        cls_scores.append(d[:, :, :, 1].transpose(0, 2, 1))
    return {"pred": np.concatenate(preds, 1), "pred_bboxes": np.concatenate(boxes, 1),
            "pred_scores": np.concatenate(cls_scores, 1),
            "ids": ids.asnumpy(), "scores": scores.asnumpy(), "bboxes": bboxes.asnumpy()}


MODELS = [
    # fixture, zoo name, zoo kwargs, GluonCV builder, recorder
    ("ssd_mobilenet0_25", "ssd_512_mobilenet1.0_voc", {"backbone": "mobilenet0.25", "filters": SSD_FILTERS},
     build_ssd, ssd_outputs),
    ("yolo3_mobilenet0_25", "yolo3_mobilenet1.0_voc", {"backbone": "mobilenet0.25", "filters": YOLO_FILTERS},
     build_yolo, yolo_outputs),
    ("faster_rcnn_resnet18_v1b", "faster_rcnn_resnet50_v1b_voc",
     {"backbone": "resnet18_v1b", "rpn_test": list(RCNN_RPN_TEST)}, build_faster_rcnn, faster_rcnn_outputs),
    ("faster_rcnn_fpn_resnet18_v1b", "faster_rcnn_fpn_resnet50_v1b_coco", {"backbone": "resnet18_v1b"},
     build_faster_rcnn_fpn, faster_rcnn_fpn_outputs),
]


def main(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    index = {"mxnet": mx.__version__, "gluoncv": gluoncv.__version__, "gluoncv_dist": _dist_version("gluoncv"),
             "numpy": np.__version__, "python": sys.version.split()[0], "seed": SEED, "keep": KEEP,
             "keep_faster_rcnn": KEEP_RCNN, "sparse_above": SPARSE_ABOVE, "classes": CLASSES, "models": {}}
    for i, (stem, name, kwargs, build, record) in enumerate(MODELS):
        mx.random.seed(SEED + 300 + i)
        rng = np.random.RandomState(SEED + 300 + i)
        net = build()
        # the symbol BatchNorms of SSD's FeatureExpander carry no init of their own (Xavier refuses vectors)
        # (and the biases of GluonCV's FPN convolutions)
        for pname, param in net.collect_params().items():
            if param.init is None and pname.endswith(("gamma", "beta", "moving_mean", "moving_var", "bias")):
                param.init = mx.init.One() if pname.endswith(("gamma", "var")) else mx.init.Zero()
        net.initialize(mx.init.Xavier(magnitude=2), ctx=mx.cpu())
        shape = {"faster_rcnn_resnet18_v1b": RCNN_SHAPE, "faster_rcnn_fpn_resnet18_v1b": FPN_SHAPE}.get(stem, SHAPE)
        x = (np.round(rng.standard_normal(shape) * 16) / 16).astype(np.float32)  # 1/16 steps: compresses
        net(mx.nd.array(x))
        base.KEEP = KEEP_RCNN if stem.startswith("faster") else KEEP  # randomise() reads the module's KEEP
        randomise(net, rng)
        randomise_moving_stats(net, rng)
        scale_logits(net)
        out = record(net, mx.nd.array(x))
        with tempfile.TemporaryDirectory() as tmp:
            raw = os.path.join(tmp, "net.params")
            net.save_parameters(raw)
            with open(raw, "rb") as src, lzma.open(os.path.join(out_dir, stem + ".params.xz"), "wb", preset=9) as dst:
                shutil.copyfileobj(src, dst)
        np.savez_compressed(os.path.join(out_dir, stem + ".npz"), x=x, **out)
        index["models"][stem] = {"name": name, "kwargs": kwargs, "input_shape": list(shape),
                                 "params": stem + ".params.xz", "io": stem + ".npz"}
        print(f"{stem}: " + ", ".join(f"{k} {v.shape}" for k, v in out.items()))
    index["manifest"] = {}
    for name in MANIFEST:
        net = get_model(name, pretrained=False, pretrained_base=False)
        net.initialize(ctx=mx.cpu())
        net(mx.nd.zeros((1, 3, 128, 128)))
        with tempfile.TemporaryDirectory() as tmp:  # the names and order save_parameters writes
            raw = os.path.join(tmp, "net.params")
            net.save_parameters(raw)
            arrays = mx.nd.load(raw)
        index["manifest"][name] = [[k, list(v.shape)] for k, v in arrays.items()]
        print(f"{name}: {len(arrays)} arrays")
    with open(os.path.join(out_dir, "gluoncv_detection_fixtures.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "tests", "cv",
                                                           "fixtures", "gluoncv_detection"))
