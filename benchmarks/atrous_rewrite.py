"""Does skipping the zero-padding taps of ASPP's atrous 3x3 convolutions speed up the exported graph? (issue 14)

DeepLabV3's ASPP runs three 3x3 convolutions, 2048 -> 256 channels, with dilation
12, 24 and 36 on the 64x64 stride-8 features of a 512x512 input (~19 GMAC each
dense). With padding ``d``, output row ``y`` reads input row ``y + (i - 1) * d``
for tap ``i``; outside ``0..63`` that tap multiplies zeros. Splitting the output
into bands of rows and of columns with the same valid taps, each band is an
unpadded dilated convolution with a slice of the kernel over a slice of the input
(:func:`valid_tap_conv2d`); the bands concatenated are the padded convolution
exactly, with only the valid products: 77%, 56% and 39% of the dense MACs for
d = 12, 24, 36 on 64x64.

This script exports one such convolution (+ ReLU) both ways to ONNX and times
onnxruntime and OpenVINO (2 threads, interleaved rounds, medians), printing the
largest difference and the MAC fractions. It is the evidence for leaving the
rewrite out of the export path: both runtimes already skip part of the padding
taps (on a 1024 -> 256 conv at 64x64, loaded machine, dilation 36 vs 1 took 0.71x
the time on onnxruntime, close to the 0.63 of skipping only out-of-range kernel
rows, and 0.49x on OpenVINO), and the input slices (onnxruntime's Slice along W
is slow) and re-layouts cost more than the remaining skipped MACs.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/atrous_rewrite.py --rounds 7
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def tap_bands(size: int, kernel: int, dilation: int) -> list[tuple[int, int, int, int]]:
    """Split ``0..size-1`` into bands ``(start, stop, first_tap, last_tap)`` with the same valid taps."""
    half = kernel // 2
    cuts = {0, size}
    for i in range(kernel):
        off = (i - half) * dilation
        cuts.update(min(max(c, 0), size) for c in (-off, size - off))
    cuts = sorted(cuts)
    bands = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        taps = [i for i in range(kernel) if a + (i - half) * dilation >= 0 and b - 1 + (i - half) * dilation < size]
        bands.append((a, b, taps[0], taps[-1]))
    return bands


def valid_fraction(h: int, w: int, kernel: int, dilation: int) -> float:
    per_axis = [sum((b - a) * (t1 - t0 + 1) for a, b, t0, t1 in tap_bands(n, kernel, dilation)) for n in (h, w)]
    return per_axis[0] * per_axis[1] / (h * w * kernel * kernel)


def valid_tap_conv2d(x: torch.Tensor, weight: torch.Tensor, dilation: int) -> torch.Tensor:
    """``F.conv2d(x, weight, padding=dilation * (k // 2), dilation=dilation)`` from unpadded band convolutions."""
    k = int(weight.shape[-1])
    h, w = int(x.shape[-2]), int(x.shape[-1])
    half = k // 2
    rows = []
    for ya, yb, ky0, ky1 in tap_bands(h, k, dilation):
        y0, y1 = ya + (ky0 - half) * dilation, yb + (ky1 - half) * dilation
        cols = []
        for xa, xb, kx0, kx1 in tap_bands(w, k, dilation):
            x0, x1 = xa + (kx0 - half) * dilation, xb + (kx1 - half) * dilation
            cols.append(F.conv2d(x[:, :, y0:y1, x0:x1], weight[:, :, ky0:ky1 + 1, kx0:kx1 + 1], dilation=dilation))
        rows.append(torch.cat(cols, dim=3) if len(cols) > 1 else cols[0])
    return torch.cat(rows, dim=2) if len(rows) > 1 else rows[0]


class Dense(torch.nn.Module):
    def __init__(self, weight: torch.Tensor, dilation: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(weight)
        self.dilation = dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(F.conv2d(x, self.weight, padding=self.dilation, dilation=self.dilation))


class Banded(Dense):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(valid_tap_conv2d(x, self.weight, self.dilation))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=64, help="feature map height and width (64: a 512 input)")
    p.add_argument("--channels", type=int, default=2048)
    p.add_argument("--dilations", default="12,24,36")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    import onnxruntime as ort
    import openvino as ov

    torch.manual_seed(0)
    x = torch.randn(1, args.channels, args.size, args.size)
    xn = x.numpy()
    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": args.threads, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    work = Path(tempfile.mkdtemp(prefix="atrous-"))
    fns, fracs = {}, {}
    for d in (int(v) for v in args.dilations.split(",")):
        weight = torch.randn(256, args.channels, 3, 3) * 0.01
        fracs[d] = valid_fraction(args.size, args.size, 3, d)
        for name, cls in (("dense", Dense), ("banded", Banded)):
            path = work / f"{name}{d}.onnx"
            torch.onnx.export(cls(weight, d), (x,), str(path), input_names=["x"], dynamo=False, opset_version=18)
            so = ort.SessionOptions()
            so.intra_op_num_threads = args.threads
            sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            fns[f"onnxruntime {name} d={d}"] = lambda s=sess: s.run(None, {"x": xn})[0]
            req = core.compile_model(str(path), "CPU", config).create_infer_request()
            fns[f"openvino {name} d={d}"] = lambda r=req: np.array(r.infer({"x": xn})[0])
    print(f"atrous_rewrite: {args.channels}->256 3x3 conv + ReLU on {args.size}x{args.size}, {args.threads} threads, "
          f"median of {args.rounds} interleaved rounds; load average {os.getloadavg()}")
    outs = {k: f() for k, f in fns.items()}
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(args.rounds):
        for k, f in fns.items():
            tic = time.perf_counter()
            f()
            times[k].append((time.perf_counter() - tic) * 1e3)
    print(f"{'variant':<28}{'ms':>9}  {'banded/dense':>12}  valid MACs  max |diff|")
    for k in fns:
        med = statistics.median(times[k])
        d = int(k.rpartition("=")[2])
        if "banded" in k:
            dense = k.replace("banded", "dense")
            ratio = med / statistics.median(times[dense])
            diff = float(np.abs(outs[k] - outs[dense]).max())
            print(f"{k:<28}{med:9.1f}  {ratio:11.2f}x  {fracs[d]:9.0%}  {diff:.2e}")
        else:
            print(f"{k:<28}{med:9.1f}")
    print(f"load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
