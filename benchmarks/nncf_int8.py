"""OpenVINO's own post-training quantization (NNCF) against the toolkit's int8 graph, on OpenVINO.

Issue 16 lists NNCF as a lever to measure against ``toolkit.deploy.quantize`` (onnxruntime's
static QDQ, per-channel int8 weights, uint8 activations), whose graph the toolkit's OpenVINO
runners execute. NNCF (``nncf.quantize`` on the fp32 export read by OpenVINO) calibrates on the
same images and writes OpenVINO's own int8 model. Both, and the fp32 export, are compiled by
OpenVINO with the same settings (static batch, f32 inference precision, ``--threads``) and timed
in turns, call by call (medians). Two models:

* ``cifar_resnet20_v1`` trained on Fashion-MNIST (the zoo's checkpoint in ``model_zoo_logs``),
  batch 16: top-1 on the 10,000 test images for fp32 and each int8 model, and how often each
  agrees with fp32; both calibrated on the first ``--calib-batches`` x 16 training images
  (the toolkit with entropy ranges, as the README's main job);
* ResNet-50 v1b (random weights) at batch 16, 224x224: speed only; both calibrated on the same
  32 images of random pixels.

NNCF is not a dependency of the toolkit: it runs from a venv of its own that sees the main
environment's packages (benchmark only, like the MXNet peer)::

    python -m venv --system-site-packages ~/.toolkit/nncf-venv && ~/.toolkit/nncf-venv/bin/pip install nncf
    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=. ~/.toolkit/nncf-venv/bin/python benchmarks/nncf_int8.py
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _timing import cpu, interleaved_medians, load_text
from vs_mxnet import _calibration_folder

REPO = Path(__file__).resolve().parents[1]
R20_CHECKPOINT = REPO / "model_zoo_logs/classification/cifar_resnet20_v1-fashion-mnist/cifar_resnet20_v1.safetensors"


class _Session:
    """An OpenVINO compiled model behind onnxruntime's ``run(None, feed)``, for ``quantize.evaluate``."""

    def __init__(self, compiled) -> None:
        self.request = compiled.create_infer_request()

    def run(self, _names, feed: dict) -> list[np.ndarray]:
        self.request.infer(list(feed.values()))
        return [self.request.get_output_tensor(0).data.copy()]


def _compile(model, batch: int, threads: int):
    """``model`` compiled as the toolkit's OpenVINO runner compiles (f32 precision), batch axis fixed."""
    from toolkit.deploy.ov_core import shared_core

    model = model.clone()
    shape = model.inputs[0].get_partial_shape()
    model.reshape({model.inputs[0].get_any_name(): [batch] + [shape[i].get_length() for i in range(1, shape.rank.get_length())]})
    return shared_core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                      "INFERENCE_NUM_THREADS": threads})


def _nncf_quantize(onnx_file: Path, batches: list[np.ndarray], preset: str):
    import nncf

    from toolkit.deploy.ov_core import shared_core

    model = shared_core().read_model(str(onnx_file))
    preset_value = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}[preset]
    # an item of the dataset is a batch: subset_size counts batches
    return nncf.quantize(model, nncf.Dataset(batches), preset=preset_value, subset_size=len(batches))


def _row(name: str, prefix: Path, calib: list[np.ndarray], threads: int, batch: int, steps: int, preset: str,
         val: str | None = None) -> list[str]:
    from toolkit.deploy.fileformat import read_metadata
    from toolkit.deploy.ov_core import shared_core
    from toolkit.deploy.quantize import ImagePreprocessing, evaluate, labelled_source

    meta = read_metadata(prefix)
    start = time.perf_counter()
    nncf_model = _nncf_quantize(prefix.with_suffix(".onnx"), calib, preset)
    nncf_s = time.perf_counter() - start
    core = shared_core()
    models = {"fp32": core.read_model(str(prefix.with_suffix(".onnx"))),
              "int8 toolkit QDQ": core.read_model(str(Path(f"{prefix}-int8.onnx"))),
              f"int8 NNCF ({preset})": nncf_model}
    compiled = {k: _compile(m, batch, threads) for k, m in models.items()}
    x = np.random.default_rng(0).random((batch, *meta["inputs"][0]["shape"][1:]), dtype=np.float32)
    requests = {k: c.create_infer_request() for k, c in compiled.items()}
    times = interleaved_medians({k: (lambda r=r: r.infer([x])) for k, r in requests.items()}, 3, steps)
    lines = [f"## {name}, batch {batch}: NNCF quantize took {nncf_s:.1f} s",
             "| model | ms per batch | fp32 / this |", "|---|---|---|"]
    lines += [f"| {k} | {1e3 * t:.2f} | {times['fp32'] / t:.2f}x |" for k, t in times.items()]
    if val:
        count, get, labels = labelled_source(val)
        pre = ImagePreprocessing.from_metadata(meta)
        sessions = {k: _Session(c) for k, c in compiled.items()}
        acc = evaluate(sessions, meta["inputs"][0]["name"], count, get, labels, pre, meta["inputs"][0]["shape"][1:],
                       batch_size=batch)
        n = acc.pop("samples")
        lines.append(f"top-1 on {val} ({n} test images):")
        lines += [f"  {k}: {100 * acc[k + '_top1']:.2f}%"
                  + (f", agrees with fp32 on {100 * acc[k + '_agreement']:.2f}%" if k + "_agreement" in acc else "")
                  for k in models]
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20, help="timed calls per model (interleaved)")
    p.add_argument("--calib-batches", type=int, default=16, help="calibration batches of 16 images")
    p.add_argument("--preset", choices=("performance", "mixed"), default="performance",
                   help="NNCF preset: symmetric activations (performance) or asymmetric (mixed)")
    args = p.parse_args()
    import nncf
    import openvino as ov
    import torch

    from toolkit.deploy.cli import main as toolkit_cli
    from toolkit.deploy.fileformat import read_metadata
    from toolkit.deploy.quantize import ImagePreprocessing, _batches, image_source, quantize
    from toolkit.zoo import get_model

    torch.set_num_threads(args.threads)
    model, isa = cpu()
    print(f"NNCF {nncf.__version__} vs toolkit.deploy.quantize, both on OpenVINO {ov.__version__}: CPU {model}, ISA "
          f"{' '.join(isa) or '-'}, {os.cpu_count()} cores, {args.threads} threads; load average at start {load_text()}")
    print(f"{args.steps} interleaved calls per model after 3 warm-up each (medians)\n")
    with tempfile.TemporaryDirectory() as d:
        def calibrated(prefix: Path, calib: str, batches: int, **options) -> list[np.ndarray]:
            """``prefix`` quantized by the toolkit, and the same calibration images for NNCF, preprocessed alike."""
            quantize(prefix, calib=calib, num_calib_batches=batches, batch_size=16, num_threads=args.threads,
                     latency_repeats=1, **options)
            meta = read_metadata(prefix)
            count, get = image_source(calib)
            return list(_batches(count, get, ImagePreprocessing.from_metadata(meta), meta["inputs"][0]["shape"][1:],
                                 16, batches * 16))

        # the trained zoo model, calibrated on Fashion-MNIST's training images as the README's main job does
        r20 = Path(d) / "r20"
        if toolkit_cli(["export", str(R20_CHECKPOINT), "--out", str(r20)]) != 0:
            sys.exit("export of the zoo's cifar_resnet20_v1 failed")
        calib = calibrated(r20, "fashion-mnist", args.calib_batches, calib_mode="entropy")
        print("\n".join(_row("cifar_resnet20_v1 (Fashion-MNIST, trained)", r20, calib, args.threads, 16, args.steps,
                             args.preset, val="fashion-mnist")), "\n", flush=True)

        # ResNet-50 v1b, random weights: speed only, calibrated on random pixels
        r50 = Path(d) / "r50"
        net = get_model("resnet50_v1b", classes=1000).eval()
        net.export(str(r50), example_inputs=(torch.randn(2, 3, 224, 224),))
        folder = Path(d) / "calib"
        folder.mkdir()
        _calibration_folder(folder, 32, 224)
        calib = calibrated(r50, str(folder), 2)
        print("\n".join(_row("ResNet-50 v1b (random weights), 224x224", r50, calib, args.threads, 16, args.steps,
                             args.preset)), flush=True)
    print(f"load average at end {load_text()}")


if __name__ == "__main__":
    main()
