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
        print(f"{name}: output {y.shape}, max |y| {np.abs(y).max():.3g}, std {y.std():.3g}")
    with open(os.path.join(out_dir, "gluoncv_segmentation_fixtures.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "tests", "cv",
                                                           "fixtures", "segmentation"))
