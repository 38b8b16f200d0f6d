"""Write GluonCV segmentation reference fixtures for ``tests/cv/test_segmentation_convert.py``.

For FCN, PSPNet and DeepLabV3 (ResNet-50 v1s, dilated, auxiliary head): build
GluonCV's model with random weights (``pretrained_base=False``: nothing is
downloaded), randomise and sparsify its parameters as
``make_gluoncv_fixtures.py`` does (so the committed files stay small), save
them with ``net.save_parameters`` (xz-compressed) and the main logits of a
fixed input (every other pixel, and the argmax of all), so the tests check ``toolkit.cv.convert.from_gluoncv`` without
MXNet. GluonCV resizes its logits to the ``crop_size`` it was built with; the
input has that size, and the models are built with different ``crop_size``
values.

Run it with the legacy interpreter (see ``make_gluoncv_fixtures.py``)::

    /opt/legacy/bin/python tools/legacy/make_gluoncv_segmentation_fixtures.py [OUT_DIR]
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
from make_gluoncv_fixtures import KEEP, SEED, SPARSE_ABOVE, _dist_version, randomise  # noqa: E402

# zoo/GluonCV name, builder kwargs (crop_size fixes GluonCV's output size), input shape
MODELS = [
    ("fcn_resnet50_voc", {"crop_size": 48, "base_size": 56}, (1, 3, 48, 48)),
    ("psp_resnet50_ade", {"crop_size": 40, "base_size": 48}, (1, 3, 40, 40)),
    ("deeplab_resnet50_ade", {"crop_size": 32, "base_size": 40}, (1, 3, 32, 32)),
]


def main(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    index = {"mxnet": mx.__version__, "gluoncv": gluoncv.__version__, "gluoncv_dist": _dist_version("gluoncv"),
             "numpy": np.__version__, "python": sys.version.split()[0], "seed": SEED, "keep": KEEP,
             "sparse_above": SPARSE_ABOVE, "models": {}}
    for i, (name, kwargs, shape) in enumerate(MODELS):
        mx.random.seed(SEED + 100 + i)
        rng = np.random.RandomState(SEED + 100 + i)
        net = get_model(name, pretrained=False, pretrained_base=False, **kwargs)
        net.initialize(mx.init.Xavier(magnitude=2), ctx=mx.cpu())
        x = rng.standard_normal(shape).astype(np.float32)
        net(mx.nd.array(x))
        randomise(net, rng)
        y = net(mx.nd.array(x))[0].asnumpy()  # (main, aux) outside autograd.record(): inference mode
        stem = name
        with tempfile.TemporaryDirectory() as tmp:
            raw = os.path.join(tmp, "net.params")
            net.save_parameters(raw)
            with open(raw, "rb") as src, lzma.open(os.path.join(out_dir, stem + ".params.xz"), "wb", preset=9) as dst:
                shutil.copyfileobj(src, dst)
        # every other pixel of the logits (random floats do not compress) and the whole argmax map
        np.savez_compressed(os.path.join(out_dir, stem + ".npz"), x=x, y_sub=y[:, :, ::2, ::2],
                            pred=y.argmax(1).astype(np.uint8))
        index["models"][name] = {"kwargs": kwargs, "input_shape": list(shape), "params": stem + ".params.xz",
                                 "io": stem + ".npz", "output_abs_max": float(np.abs(y).max()),
                                 "output_std": float(y.std())}
        if name == "fcn_resnet50_voc":
            index["multieval"] = multieval(net, out_dir, rng)
        print(f"{name}: output {y.shape}, max |y| {np.abs(y).max():.3g}, std {y.std():.3g}")
    index["metric"] = metric(out_dir)
    with open(os.path.join(out_dir, "gluoncv_segmentation_fixtures.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")


def multieval(net, out_dir: str, rng: np.random.RandomState) -> dict:
    """GluonCV's MultiEvalModel on the FCN fixture: whole-image, padded and sliding-window scales, with flips."""
    from gluoncv.model_zoo.segbase import MultiEvalModel

    scales = [0.75, 1.0, 1.25]  # base_size 56, crop_size 48: long sides 42 (padded), 56 and 70 (windows)
    image = rng.standard_normal((3, 40, 60)).astype(np.float32)
    evaluator = MultiEvalModel(net, 21, ctx_list=[mx.cpu()], flip=True, scales=scales)
    scores = evaluator(mx.nd.array(image)).asnumpy()  # (1, 21, 40, 60), sums of exp(logits)
    np.savez_compressed(os.path.join(out_dir, "fcn_multieval.npz"), image=image, log_scores_sub=np.log(scores)[:, :, ::2, ::2],
                        pred=scores.argmax(1).astype(np.uint8))
    print(f"multieval: scores {scores.shape}")
    return {"file": "fcn_multieval.npz", "model": "fcn_resnet50_voc", "scales": scales, "flip": True}


def metric(out_dir: str) -> dict:
    """GluonCV's SegmentationMetric on random logits and labels (-1 ignored), two updates, one a list."""
    from gluoncv.utils.metrics.segmentation import SegmentationMetric

    rng = np.random.RandomState(SEED + 200)
    nclass = 6
    labels = [rng.randint(-1, nclass - 1, (2, 9, 7)).astype(np.float32) for _ in range(3)]  # class 5 never labelled
    logits = [rng.standard_normal((2, nclass, 9, 7)).astype(np.float32) for _ in range(3)]
    m = SegmentationMetric(nclass)
    m.update(mx.nd.array(labels[0]), mx.nd.array(logits[0]))
    m.update([mx.nd.array(x) for x in labels[1:]], [mx.nd.array(x) for x in logits[1:]])
    pix_acc, miou = m.get()
    np.savez_compressed(os.path.join(out_dir, "metric.npz"), labels=np.stack(labels), logits=np.stack(logits))
    print(f"metric: pixAcc {pix_acc:.6f} mIoU {miou:.6f}")
    return {"file": "metric.npz", "nclass": nclass, "pixAcc": float(pix_acc), "mIoU": float(miou)}


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "tests", "cv",
                                                           "fixtures", "segmentation"))
