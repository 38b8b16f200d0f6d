"""Memory reuse across steps: how the C allocator behind PyTorch's CPU tensors changes step time.

MXNet's ``hybridize(static_alloc=True)`` keeps one pool of buffers across calls. PyTorch's CPU
tensors come from the C library's ``malloc``; glibc serves large blocks with fresh ``mmap``
pages (and gives trimmed heap back to the kernel), so every step may fault in and zero its
activations again. This script times the same workload in separate processes, interleaved,
under each allocator setting, and counts the minor page faults per step:

- ``default``: glibc as it comes;
- ``keep``: glibc ``mallopt`` at start: no ``mmap`` for blocks under 32 MiB (glibc's largest
  threshold), no trimming of the heap's top under 1 GiB, so freed blocks stay for reuse;
- ``jemalloc``: ``LD_PRELOAD`` of Debian's ``libjemalloc2``, when installed (a reference; a library
  cannot apply it to its user's process).

Measured on a quiet 2-core Xeon (``benchmarks/results/allocator.txt``): glibc's own threshold
adjustment already reuses a ResNet-50 training step's memory (about 2,000 faults per step), so
``keep`` gained nothing (1.00x training, 0.96x inference, 0.97x BERT fine-tuning, where the faults
come from blocks above 32 MiB: the embedding's gradient, 224x224 activations) and jemalloc lost
(0.79x, 0.78x, 0.93x). The toolkit therefore leaves the allocator alone.

Run on a quiet machine::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/allocator.py --rows r50-train,r50-infer,bert-train --rounds 3
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _timing import cpu, load_text

REPO = Path(__file__).resolve().parents[1]
JEMALLOC = next((p for p in ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2")
                 if Path(p).exists()), None)
ROWS = {
    "r50-train": "ResNet-50 v1b training step (SGD), batch 16, 128x128, hybridized",
    "r50-infer": "ResNet-50 v1b inference, batch 16, 224x224, hybridized",
    "bert-train": "BERT-base classification fine-tuning step (Adam), batch 8, seq 128, hybridized",
}


def _child(row: str, variant: str, warmup: int, steps: int) -> dict:
    import torch
    import torch.nn.functional as F

    if variant == "keep":
        libc = ctypes.CDLL("libc.so.6")
        # M_MMAP_THRESHOLD (-3) at glibc's cap, M_TRIM_THRESHOLD (-1): mallopt returns 1 on success
        if libc.mallopt(-3, 32 * 2**20) != 1 or libc.mallopt(-1, 2**30) != 1:
            raise RuntimeError("glibc refused the mallopt settings")
    from toolkit.zoo import get_model

    torch.manual_seed(0)
    if row.startswith("r50"):
        net = get_model("resnet50_v1b", classes=1000).hybridize()
        if row == "r50-train":
            x, y = torch.randn(16, 3, 128, 128), torch.arange(16)
            opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)

            def step():
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(net(x), y).backward()
                opt.step()
        else:
            net.eval()
            x = torch.randn(16, 3, 224, 224)

            def step():
                with torch.no_grad():
                    net(x)
    else:
        net = get_model("bert_12_768_12", head="classification", num_classes=2).hybridize()
        tokens = torch.randint(1, 30522, (8, 128))
        types, mask = torch.zeros_like(tokens), torch.ones_like(tokens)
        y = torch.arange(8) % 2
        opt = torch.optim.AdamW(net.parameters(), lr=2e-5)

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(tokens, types, mask), y).backward()
            opt.step()
    for _ in range(warmup):
        step()
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / steps
    return {"s": statistics.median(times), "faults": faults,
            "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", default=",".join(ROWS))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--child", nargs=2, metavar=("ROW", "VARIANT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        print("RESULT " + json.dumps(_child(*args.child, args.warmup, args.steps)), flush=True)
        return
    variants = ["default", "keep"] + (["jemalloc"] if JEMALLOC else [])
    model, isa = cpu()
    print(f"allocator: CPU {model}, ISA {' '.join(isa) or '-'}, {os.cpu_count()} cores, {args.threads} threads; "
          f"load average at start {load_text()}; jemalloc {JEMALLOC or 'not installed'}")
    print(f"median of {args.steps} steps after {args.warmup} warm-up per process, {args.rounds} interleaved rounds "
          "(variant order reversed every other round); faults = minor page faults per step")
    for row in args.rows.split(","):
        results: dict[str, list[dict]] = {v: [] for v in variants}
        for r in range(args.rounds):
            for variant in (variants if r % 2 == 0 else variants[::-1]):
                env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS=str(args.threads),
                           OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
                           TOOLKIT_AUTOTUNE_LAZY=os.environ.get("TOOLKIT_AUTOTUNE_LAZY", "0"))
                if variant == "jemalloc":
                    env["LD_PRELOAD"] = JEMALLOC
                cmd = [sys.executable, __file__, "--child", row, variant, "--steps", str(args.steps),
                       "--warmup", str(args.warmup), "--threads", str(args.threads)]
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
                if proc.returncode or not lines:
                    sys.exit(f"{row} {variant} failed: {(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
                results[variant].append(json.loads(lines[-1][len("RESULT "):]))
        print(f"## {ROWS[row]}")
        print("| allocator | s/step (per round) | median | default / this | faults/step | peak RSS MiB |\n|---|---|---|---|---|---|")
        base = statistics.median(r["s"] for r in results["default"])
        for variant, res in results.items():
            med = statistics.median(r["s"] for r in res)
            rounds = " ".join(f"{r['s']:.3f}" for r in res)
            print(f"| {variant} | {rounds} | {med:.3f} | {base / med:.2f}x | "
                  f"{statistics.median(r['faults'] for r in res):.0f} | {max(r['rss_mib'] for r in res):.0f} |", flush=True)
    print(f"load average at end {load_text()}")


if __name__ == "__main__":
    main()
