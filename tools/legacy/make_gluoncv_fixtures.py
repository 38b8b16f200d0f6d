"""Write GluonCV reference fixtures for ``tests/cv/test_convert.py``.

For each model below: build GluonCV's model (random init, fixed seed), save
its parameters with ``net.save_parameters`` (xz-compressed), and the output
of a fixed input, so the tests can check that
``toolkit.cv.convert.from_gluoncv`` reproduces GluonCV without MXNet.

To keep the fixtures small (they are committed), large weight tensors are
made sparse and low-entropy: in every weight with more than ``SPARSE_ABOVE``
elements a random ``KEEP`` fraction of the entries survive as
``sign(w) * std(w) / sqrt(KEEP)`` (same variance as the initialisation, so
activations keep their usual size) and the rest are zero; the files are
xz-compressed. Norm statistics and affine parameters are randomised so that
loading them wrongly shows in the output.

The JSON index also records GluonCV's parameter counts for more models
(``param_counts``: trainable parameters, i.e. excluding running statistics
and the fixed gamma/beta of ``BatchNorm(scale=False, center=False)``).

Run it with the legacy interpreter (Python 3.11, mxnet 1.9.1, gluoncv 0.10.5)::

    /opt/legacy/bin/python tools/legacy/make_gluoncv_fixtures.py [OUT_DIR]

The legacy environment needs these pins for ``import gluoncv`` to work next
to mxnet's numpy 1.23.5 (newer scipy needs ``numpy.exceptions``)::

    /opt/legacy/bin/pip install 'numpy==1.23.5' 'scipy<1.12' 'pandas<2.1'

(measured: scipy 1.11.4, pandas 2.0.3). OUT_DIR defaults to ``tests/cv/fixtures``.
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

import gluoncv
import mxnet as mx
import numpy as np
from gluoncv.model_zoo import get_model

SEED = 20240601
KEEP = 0.005
SPARSE_ABOVE = 4_096

# zoo/GluonCV name, builder kwargs, input shape
MODELS = [
    ("cifar_resnet20_v1", {"classes": 10}, (2, 3, 32, 32)),
    ("cifar_resnet20_v2", {"classes": 10}, (2, 3, 32, 32)),
    ("cifar_wideresnet16_10", {"classes": 10, "drop_rate": 0.3}, (1, 3, 32, 32)),
    ("resnet18_v1", {"classes": 10}, (2, 3, 64, 64)),
    ("resnet18_v2", {"classes": 10}, (2, 3, 64, 64)),
    ("resnet50_v1", {"classes": 10}, (1, 3, 64, 64)),
    ("se_resnet18_v1", {"classes": 10}, (1, 3, 64, 64)),
    ("resnet18_v1b", {"classes": 10}, (2, 3, 64, 64)),
    ("resnet50_v1d", {"classes": 10}, (1, 3, 64, 64)),
    ("resnext50_32x4d", {"classes": 10}, (1, 3, 64, 64)),
    ("mobilenet0.25", {"classes": 10}, (2, 3, 64, 64)),
    ("mobilenetv2_0.25", {"classes": 10}, (2, 3, 64, 64)),
    ("mobilenetv3_small", {"classes": 10}, (2, 3, 64, 64)),
]

# GluonCV names whose parameter count the tests compare with ours (1000 / 10 classes)
COUNTED = [
    "resnet18_v1", "resnet34_v1", "resnet50_v1", "resnet101_v1", "resnet152_v1",
    "resnet18_v2", "resnet50_v2", "resnet152_v2", "se_resnet18_v1", "se_resnet50_v1", "se_resnet101_v2",
    "resnet50_v1b", "resnet101_v1c", "resnet152_v1d", "resnet50_v1e", "resnet101_v1s",
    "resnext50_32x4d", "resnext101_32x4d", "se_resnext50_32x4d",
    "mobilenet1.0", "mobilenet0.25", "mobilenetv2_1.0", "mobilenetv2_0.5", "mobilenetv3_large", "mobilenetv3_small",
    "cifar_resnet56_v1", "cifar_resnet110_v2", "cifar_wideresnet28_10", "cifar_wideresnet40_8",
]


def randomise(net, rng: np.random.RandomState) -> None:
    for name, param in net.collect_params().items():
        data = param.data().asnumpy()
        if name.endswith("running_mean"):
            data = rng.uniform(-0.2, 0.2, data.shape)
        elif name.endswith("running_var"):
            data = rng.uniform(0.5, 2.0, data.shape)
        elif param.grad_req == "null":  # fixed gamma/beta of BatchNorm(scale=False, center=False)
            continue
        elif name.endswith("gamma"):
            data = rng.uniform(0.5, 1.5, data.shape)
        elif name.endswith(("beta", "bias")):
            data = rng.uniform(-0.2, 0.2, data.shape)
        elif name.endswith("weight") and data.size > SPARSE_ABOVE:
            mask = rng.uniform(size=data.shape) < KEEP
            # np.where, not a product with the mask: that would leave -0.0 (a random sign bit) everywhere
            data = np.where(mask, np.sign(data) * (data.std() / np.sqrt(KEEP)), 0.0)
        param.set_data(mx.nd.array(data.astype(np.float32)))


def main(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    index = {
        "mxnet": mx.__version__,
        "gluoncv": gluoncv.__version__,
        "gluoncv_dist": _dist_version("gluoncv"),
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "seed": SEED,
        "keep": KEEP,
        "sparse_above": SPARSE_ABOVE,
        "models": {},
    }
    for i, (name, kwargs, shape) in enumerate(MODELS):
        mx.random.seed(SEED + i)
        rng = np.random.RandomState(SEED + i)
        net = get_model(name, pretrained=False, **kwargs)
        net.initialize(mx.init.Xavier(magnitude=2), ctx=mx.cpu())
        x = rng.standard_normal(shape).astype(np.float32)
        net(mx.nd.array(x))  # finish deferred shape inference
        randomise(net, rng)
        y = net(mx.nd.array(x)).asnumpy()  # no autograd.record(): inference mode
        stem = name.replace(".", "_")
        with tempfile.TemporaryDirectory() as tmp:
            raw = os.path.join(tmp, "net.params")
            net.save_parameters(raw)
            with open(raw, "rb") as src, lzma.open(os.path.join(out_dir, stem + ".params.xz"), "wb", preset=9) as dst:
                shutil.copyfileobj(src, dst)
        np.savez(os.path.join(out_dir, stem + ".npz"), x=x, y=y)
        index["models"][name] = {
            "kwargs": kwargs,
            "input_shape": list(shape),
            "params": stem + ".params.xz",
            "io": stem + ".npz",
            "output_abs_max": float(np.abs(y).max()),
            "output_std": float(y.std()),
        }
        print(f"{name}: output max |y| {np.abs(y).max():.3g}, std {y.std():.3g}")
    index["param_counts"] = {}
    for name in COUNTED:
        net = get_model(name, pretrained=False)
        net.initialize(mx.init.Xavier(), ctx=mx.cpu())
        size = 32 if name.startswith("cifar") else 64
        net(mx.nd.zeros((1, 3, size, size)))
        index["param_counts"][name] = int(
            sum(p.data().size for p in net.collect_params().values() if p.grad_req != "null")
        )
        print(f"{name}: {index['param_counts'][name]} trainable parameters")
    with open(os.path.join(out_dir, "gluoncv_fixtures.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")


def _dist_version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "tests", "cv", "fixtures"))
