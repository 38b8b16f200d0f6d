"""One optimizer step, PyTorch's default (``foreach``) against ``fused=True``, on real model sizes.

The reference training scripts build their optimizers with ``scripts.common.fused_options``;
this measures why. Both optimizers update the same parameters with the same random gradients,
taking turns, in one process; median seconds per step after one untimed step each.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/optimizer_step.py
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from _timing import cpu, load_text  # noqa: E402
from toolkit.zoo import get_model  # noqa: E402

CASES = {
    "bert-adamw": ("BERT-base classification (bert_12_768_12), AdamW",
                   lambda: get_model("bert_12_768_12", head="classification", num_classes=2),
                   lambda params, **kw: torch.optim.AdamW(params, lr=2e-5, **kw)),
    "r50-sgd": ("ResNet-50 v1b, SGD with momentum", lambda: get_model("resnet50_v1b", classes=1000),
                lambda params, **kw: torch.optim.SGD(params, lr=0.1, momentum=0.9, **kw)),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=7)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model_name, isa = cpu()
    print(f"optimizer step: CPU {model_name}, ISA {' '.join(isa) or '-'}, {os.cpu_count()} cores, {args.threads} threads; "
          f"torch {torch.__version__}; load average at start {load_text()}")
    print("| model, optimizer | parameters | foreach s/step | fused s/step | foreach / fused |\n|---|---|---|---|---|")
    for title, build, make in CASES.values():
        torch.manual_seed(0)
        model = build()
        for prm in model.parameters():
            prm.grad = torch.randn_like(prm) * 1e-3
        opts = {"foreach": make(model.parameters(), foreach=True), "fused": make(model.parameters(), fused=True)}
        times: dict[str, list[float]] = {k: [] for k in opts}
        for _ in range(args.steps + 1):
            for k, opt in opts.items():
                t = time.perf_counter()
                opt.step()
                times[k].append(time.perf_counter() - t)
        med = {k: statistics.median(v[1:]) for k, v in times.items()}
        count = sum(prm.numel() for prm in model.parameters())
        print(f"| {title} | {count / 1e6:.1f}M | {med['foreach']:.3f} | {med['fused']:.3f} | "
              f"{med['foreach'] / med['fused']:.2f}x |", flush=True)
    print(f"load average at end {load_text()}")


if __name__ == "__main__":
    main()
