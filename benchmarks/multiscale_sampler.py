"""Multi-scale variable-batch sampling (CVNets) vs fixed single-scale batches on Fashion-MNIST.

Two copies of the same model (same initial weights) train for the same number
of epochs on the same training subset: one with fixed 28x28 crops and batch
``B``, one with :class:`toolkit.data.VariableBatchSampler` (crops from
``--min-size`` to ``--max-size``, batch size scaled by the inverse of the crop
area so that every batch holds about ``B * 28 * 28`` pixels). Epochs alternate
between the two (A, B, A, B, ...) so a shared machine's load hits both alike.
Reported: training images/s (median over epochs) and test top-1 at 28x28 after
each epoch. A small budget: differences of a few tenths of a percent are noise.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/multiscale_sampler.py --train-samples 6000 --epochs 3
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from torchvision.transforms.v2 import functional as TF  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toolkit.cv import presets  # noqa: E402
from toolkit.cv.data import FashionMNIST  # noqa: E402
from toolkit.cv.metrics import TopKAccuracy  # noqa: E402
from toolkit.data import MultiScaleDataset, VariableBatchSampler  # noqa: E402
from toolkit.zoo import get_model  # noqa: E402


class _Subset(torch.utils.data.Dataset):
    def __init__(self, data, n, transform):
        self.data, self.n, self.transform = data, min(n, len(data)), transform

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        image, label = self.data[i]
        return self.transform(image), label


class _Rescale:
    """``(sample, (h, w)) -> sample`` resized to ``(h, w)`` (the multi-scale dataset's transform)."""

    def __call__(self, sample, size):
        x, y = sample
        if tuple(x.shape[-2:]) != tuple(size):
            x = TF.resize(x, list(size), antialias=False)
        return x, y


def train_epoch(model, opt, loader) -> tuple[float, int]:
    model.train()
    seen, tic = 0, time.perf_counter()
    for x, y in loader:
        loss = F.cross_entropy(model(x.contiguous(memory_format=torch.channels_last)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += len(y)
    return seen / (time.perf_counter() - tic), seen


def evaluate(model, loader) -> float:
    model.eval()
    metric = TopKAccuracy((1,))
    with torch.inference_mode():
        for x, y in loader:
            metric.update(model(x.contiguous(memory_format=torch.channels_last)), y)
    return metric.get()["top1"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="cifar_resnet20_v1")
    p.add_argument("--train-samples", type=int, default=6000)
    p.add_argument("--test-samples", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--min-size", type=int, default=20)
    p.add_argument("--max-size", type=int, default=36)
    p.add_argument("--num-scales", type=int, default=5)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    train = _Subset(FashionMNIST(train=True), args.train_samples, presets.train_preset("fashion-mnist"))
    test = _Subset(FashionMNIST(train=False), args.test_samples, presets.eval_preset("fashion-mnist"))
    test_loader = DataLoader(test, batch_size=256)
    fixed_loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, drop_last=True,
                              generator=torch.Generator().manual_seed(0))
    sampler = VariableBatchSampler(len(train), args.batch_size, crop_size=28, min_crop_size=args.min_size,
                                   max_crop_size=args.max_size, num_scales=args.num_scales, divisor=4, seed=0,
                                   drop_last=True)
    vbs_loader = DataLoader(MultiScaleDataset(train, _Rescale(), (28, 28)), batch_sampler=sampler)
    print(sampler.stats())

    base = get_model(args.model, classes=10, in_channels=1).to(memory_format=torch.channels_last)
    runs = {"fixed 28x28": (copy.deepcopy(base), fixed_loader), "multi-scale VBS": (copy.deepcopy(base), vbs_loader)}
    opts = {k: torch.optim.SGD(m.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
            for k, (m, _) in runs.items()}
    speed: dict[str, list[float]] = {k: [] for k in runs}
    acc: dict[str, list[float]] = {k: [] for k in runs}
    print(f"{args.model}, {len(train)} training / {len(test)} test images, {args.epochs} epochs, base batch "
          f"{args.batch_size}, {args.threads} thread(s); load average at start {os.getloadavg()[0]:.1f}")
    for epoch in range(args.epochs):
        for k, (model, loader) in runs.items():  # interleaved: A, B per epoch
            sampler.set_epoch(epoch)
            ips, _ = train_epoch(model, opts[k], loader)
            speed[k].append(ips)
            acc[k].append(evaluate(model, test_loader))
            print(f"epoch {epoch + 1} {k:<16} {ips:8.1f} img/s  test top-1 {acc[k][-1]:6.2f}", flush=True)
    ref = statistics.median(speed["fixed 28x28"])
    print(f"{'sampler':<16} {'img/s (median)':>15} {'ratio':>6} {'final top-1':>12}")
    for k in runs:
        med = statistics.median(speed[k])
        print(f"{k:<16} {med:15.1f} {med / ref:6.2f} {acc[k][-1]:12.2f}")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
