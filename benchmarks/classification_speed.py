"""Training-step and inference speed of our classifiers vs torchvision's same architectures.

For each pair (our ``resnet50_v1b`` vs ``torchvision.models.resnet50``, our
``mobilenetv3_large`` vs ``torchvision.models.mobilenet_v3_large``) it times

* a training step (forward + backward + SGD update) and
* inference (``inference_mode``, eval mode)

for torchvision eager, torchvision eager in channels-last memory (model and input
converted with ``memory_format=torch.channels_last``: the strongest plain-PyTorch
setting on CPU, oneDNN's NHWC kernels), ours eager, ours hybridized (captured graph,
with the per-convolution kernel autotuning that ``hybridize()`` does by default), ours
hybridized with ``autotune=False`` (the captured graph alone) and ours hybridized
with ``compile=True``. Variants run interleaved, in forward and reverse order in
turn (A, B, C, D, D, C, B, A, ...), so that the load of a shared machine hits them
alike; each number is the median over the repeats; ratios are ``torchvision
eager time / variant time`` (above 1: faster than torchvision).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/classification_speed.py --batch-size 8 --size 128
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torchvision  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toolkit.zoo import get_model  # noqa: E402

PAIRS = {
    "resnet50": ("resnet50_v1b", torchvision.models.resnet50),
    "mobilenetv3_large": ("mobilenetv3_large", torchvision.models.mobilenet_v3_large),
}


VARIANTS = ("torchvision eager", "torchvision channels-last", "ours eager", "ours hybridized",
            "ours hybridize(autotune=0)", "ours hybridize(compile)")


def _variants(name: str, train: bool, only: set[str] | None = None) -> dict[str, torch.nn.Module]:
    ours_name, tv_builder = PAIRS[name]
    torch.manual_seed(0)
    out = {"torchvision eager": tv_builder(num_classes=1000)}
    torch.manual_seed(0)
    out["torchvision channels-last"] = tv_builder(num_classes=1000).to(memory_format=torch.channels_last)
    variants = {"ours eager": None, "ours hybridized": {}, "ours hybridize(autotune=0)": {"autotune": False},
                "ours hybridize(compile)": {"compile": True}}
    for label, options in variants.items():
        m = get_model(ours_name, classes=1000)
        if options is not None:
            m.hybridize(**options)
        out[label] = m
    out = {k: m for k, m in out.items() if only is None or k in only or k == "torchvision eager"}
    for m in out.values():
        m.train(train)
    return out


def _step_fn(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, train: bool, channels_last: bool = False):
    if channels_last:  # the input converted once, as a channels-last data pipeline would hand it over
        x = x.contiguous(memory_format=torch.channels_last)
    if not train:
        def infer():
            with torch.inference_mode():
                model(x)
        infer.model = model
        return infer
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    step.model = model
    return step


def bench(name: str, train: bool, batch: int, size: int, repeats: int, warmup: int,
          only: set[str] | None = None) -> dict[str, float]:
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 1000, (batch,))
    fns = {k: _step_fn(m, x, y, train, channels_last="channels-last" in k) for k, m in _variants(name, train, only).items()}
    for k, fn in fns.items():  # warmup: graph capture / compilation happen here, not in the timings
        for _ in range(warmup):
            fn()
        # lazy autotuning measures over the calls after the capture: the steady state starts when it is done
        model = getattr(fn, "model", None)
        for _ in range(2000):
            if model is None or not getattr(model, "tuning_pending", False):
                break
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(repeats):
        # forward and backward order in turn, so that no variant always follows the same one
        for k in (list(fns) if i % 2 == 0 else list(fns)[::-1]):
            fn = fns[k]
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--size", type=int, default=128, help="input height and width")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models", default=",".join(PAIRS), help=f"comma-separated subset of {list(PAIRS)}")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help=f"comma-separated subset of {list(VARIANTS)} (torchvision eager, the reference, always runs)")
    args = p.parse_args()
    only = set(args.variants.split(","))
    if only - set(VARIANTS):
        p.error(f"unknown variants {sorted(only - set(VARIANTS))}")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {args.threads} threads, batch "
          f"{args.batch_size}, {args.size}x{args.size}, median of {args.repeats} interleaved repeats; "
          f"load average at start: {os.getloadavg()[0]:.1f}")
    print(f"{'model':<18} {'mode':<10} {'variant':<26} {'ms/batch':>9} {'img/s':>8} {'vs torchvision':>15}")
    for name in args.models.split(","):
        for train in (True, False):
            res = bench(name, train, args.batch_size, args.size, args.repeats, args.warmup, only)
            ref = res["torchvision eager"]
            for k, t in res.items():
                print(f"{name:<18} {'train' if train else 'inference':<10} {k:<26} {t * 1e3:9.1f} "
                      f"{args.batch_size / t:8.1f} {ref / t:14.2f}x", flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
