"""Where a ResNet-50 v1b training step spends its time, MXNet 1.9.1 / GluonCV beside the toolkit.

``vs_mxnet.py`` gives the step times; this script says where they go. Each side runs in a
process of its own (the MXNet side in the peer environment of
``benchmarks/peer/setup_mxnet_venv.sh``), alternating for ``--rounds`` rounds with the same
threads: build the model with random weights (batch 16, 128x128, SGD with momentum; ours
``hybridize()`` with the default autotune, tuned in the warm-up; MXNet hybridized with
``static_alloc=True, static_shape=True``), warm up, time ``--steps`` steps, then time each
operator of ``--steps`` more and sum those times per step into categories. MXNet's operators
are timed by its profiler, with operator bulking off so that each is timed on its own (the
step times of that side are taken with bulking off too); ours by a dispatcher mode around each
ATen call (see ``OperatorTimer``). The "profiled" step row shows what the timing itself added.

Beside the table, measured in our process of the same run: the step's arithmetic
(``torch.utils.flop_counter``, forward and backward), and the rate each side's convolution and
matrix-product time makes of it, next to the rate of a 2048x2048 fp32 matrix product on the
same threads (the practical ceiling of this CPU).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/training_breakdown.py --rounds 2 --steps 5
    python benchmarks/training_breakdown.py --rounds 1 --steps 1 --warmup 1   # smoke

This file is run by two interpreters: the top level imports only the standard library.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _timing import cpu, load_text, matmul_gflops, median_step_s

from vs_mxnet import DEFAULT_PEER

REPO = Path(__file__).resolve().parents[1]

BATCH, SIZE = 16, 128

#: category -> (our ATen operators as the dispatcher names them, MXNet operators); each operator counts once
CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "convolutions and matrix products, forward + backward": (
        ("aten.convolution", "aten.convolution_backward", "aten.mm", "aten.addmm", "aten.bmm"),
        ("Convolution", "_backward_Convolution", "FullyConnected", "_backward_FullyConnected")),
    "batch norm forward": (("aten.native_batch_norm", "aten._native_batch_norm_legit",
                            "aten._native_batch_norm_legit_functional"), ("BatchNorm",)),
    "batch norm backward": (("aten.native_batch_norm_backward",), ("_backward_BatchNorm",)),
    "ReLU forward + backward": (("aten.relu_", "aten.relu", "aten.clamp_min_", "aten.clamp_min",
                                 "aten.threshold_backward"), ("Activation", "_backward_Activation")),
    "residual sums and gradient sums": (("aten.add_", "aten.add"), ("elemwise_add", "add_n", "_grad_add")),
    "optimizer (SGD with momentum)": (("aten._fused_sgd_",), ("multi_sgd_mom_update", "sgd_mom_update",
                                                               "multi_mp_sgd_mom_update")),
    "copies (layouts, strided gradients)": (("aten.copy_", "aten.clone", "aten.slice_backward"),
                                            ("_copy", "_backward_copy", "Reorder")),
    "max pooling forward + backward": (("aten.max_pool2d_with_indices", "aten.max_pool2d_with_indices_backward"),
                                       ("Pooling", "_backward_Pooling")),
}
CONV = next(iter(CATEGORIES))


def _categorize(own_ms: dict[str, float], side: int) -> dict[str, float]:
    """Own time per step by category (``side`` 0: ours, 1: MXNet), the rest as ``other``."""
    out = {name: 0.0 for name in CATEGORIES}
    out["other"] = 0.0
    for op, ms in own_ms.items():
        name = next((c for c, ops in CATEGORIES.items() if op in ops[side]), "other")
        out[name] += ms
    return out


def _mx_child(warmup: int, steps: int) -> dict:
    import mxnet as mx
    from gluoncv.model_zoo import get_model
    from mxnet import autograd, gluon, nd

    net = get_model("resnet50_v1b", pretrained=False, classes=1000)
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True, static_shape=True)
    x, y = nd.random.uniform(shape=(BATCH, 3, SIZE, SIZE)), nd.array(list(range(BATCH)))
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 1e-3, "momentum": 0.9})

    def step() -> None:
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(BATCH)
        nd.waitall()

    step_s = median_step_s(step, warmup, steps)
    # only the aggregate table is read: the trace file MXNet writes at exit (./profile.json by default) goes nowhere
    mx.profiler.set_config(profile_all=True, aggregate_stats=True, filename=os.devnull)
    mx.profiler.set_state("run")
    profiled_s = median_step_s(step, 0, steps)  # the profiled steps: what profiling adds shows
    mx.profiler.set_state("stop")
    ops = json.loads(mx.profiler.dumps(format="json"))["Time"].get("operator", {})
    return {"step_s": step_s, "profiled_s": profiled_s, "own_ms": {k: v["Total"] / steps for k, v in ops.items()}}


def _ours_child(warmup: int, steps: int, threads: int) -> dict:
    import torch
    import torch.nn.functional as F
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    from toolkit.zoo import get_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x, y = torch.randn(BATCH, 3, SIZE, SIZE), torch.arange(BATCH) % 1000

    def make_step(model):
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, fused=True)  # as scripts.common.fused_options

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
        return step

    own: dict[str, float] = {}

    class OperatorTimer(TorchDispatchMode):
        """Each ATen call's wall time, summed by operator. Written here because torch.profiler
        slowed this step by a quarter to a half in trials (page faults rose with it), which
        made its per-operator times useless beside MXNet's; this costs a few percent. Inside
        the call the mode is off, so an operator's inner calls are counted once, in it."""

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            start = time.perf_counter()
            out = func(*args, **(kwargs or {}))
            name = str(func.overloadpacket)
            own[name] = own.get(name, 0.0) + time.perf_counter() - start
            return out

    net = get_model("resnet50_v1b", classes=1000)
    net.hybridize()
    step = make_step(net)
    step_s = median_step_s(step, warmup, steps)

    def timed_step() -> None:
        with OperatorTimer():
            step()
    profiled_s = median_step_s(timed_step, 0, steps)

    counter = FlopCounterMode(display=False)
    with counter:
        make_step(get_model("resnet50_v1b", classes=1000))()
    return {"step_s": step_s, "profiled_s": profiled_s, "own_ms": {k: 1e3 * v / steps for k, v in own.items()},
            "path": net.graph_memory_format, "flops": counter.get_total_flops(),
            "gemm_gflops": matmul_gflops()}


def _run_side(side: str, args: argparse.Namespace) -> dict | str:
    python = str(args.peer_python) if side == "mxnet" else sys.executable
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               TOOLKIT_AUTOTUNE_LAZY=os.environ.get("TOOLKIT_AUTOTUNE_LAZY", "0"))
    if side == "mxnet":
        env.pop("PYTHONPATH", None)
        env["MXNET_EXEC_BULK_EXEC_TRAIN"] = "0"  # each operator timed on its own in the profile
    else:
        env["PYTHONPATH"] = str(REPO)
    cmd = [python, str(Path(__file__).resolve()), "--child", side, "--threads", str(args.threads),
           "--warmup", str(args.warmup), "--steps", str(args.steps)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return "failed: " + (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=2, help="alternating process pairs")
    p.add_argument("--steps", type=int, default=5, help="timed steps, then as many profiled, per process")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--peer-python", type=Path, default=DEFAULT_PEER, help="the MXNet venv's python")
    p.add_argument("--child", choices=("mxnet", "ours"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        res = _mx_child(args.warmup, args.steps) if args.child == "mxnet" else _ours_child(args.warmup, args.steps,
                                                                                           args.threads)
        print("RESULT " + json.dumps(res), flush=True)
        return
    if not args.peer_python.exists():
        p.error(f"no MXNet peer environment at {args.peer_python}: run benchmarks/peer/setup_mxnet_venv.sh")
    import torch

    model, isa = cpu()
    print(f"ResNet-50 v1b training step, batch {BATCH}, {SIZE}x{SIZE}, SGD momentum: CPU {model}, ISA "
          f"{' '.join(isa) or '-'}, {os.cpu_count()} cores, {args.threads} threads per side; torch {torch.__version__}; "
          f"load average at start {load_text()}")
    print(f"{args.rounds} alternating rounds; per process {args.warmup} warm-up, {args.steps} timed, {args.steps} profiled "
          "steps; medians over rounds")
    runs: dict[str, list] = {"mxnet": [], "ours": []}
    started = time.time()
    for r in range(args.rounds):
        for side in (("mxnet", "ours") if r % 2 == 0 else ("ours", "mxnet")):
            runs[side].append(_run_side(side, args))
    failed = [f"{side}: {x}" for side, xs in runs.items() for x in xs if isinstance(x, str)]
    if failed:
        sys.exit("\n".join(failed))
    cats = {side: [_categorize(r["own_ms"], i) for r in runs[side]] for i, side in enumerate(("ours", "mxnet"))}

    def med(side: str, key: str) -> float:
        return statistics.median(c[key] for c in cats[side])

    mx_step = statistics.median(r["step_s"] for r in runs["mxnet"]) * 1e3
    ours_step = statistics.median(r["step_s"] for r in runs["ours"]) * 1e3
    paths = "/".join(r["path"] for r in runs["ours"])
    print("\n| own time per step (ms) | MXNet/GluonCV | ours | ours - MXNet |\n|---|---|---|---|")
    for key in list(CATEGORIES) + ["other"]:
        print(f"| {key} | {med('mxnet', key):.1f} | {med('ours', key):.1f} | {med('ours', key) - med('mxnet', key):+.1f} |")
    mx_sum = sum(med("mxnet", k) for k in cats["mxnet"][0])
    ours_sum = sum(med("ours", k) for k in cats["ours"][0])
    print(f"| sum of the profiled operators | {mx_sum:.1f} | {ours_sum:.1f} | {ours_sum - mx_sum:+.1f} |")
    mx_prof = statistics.median(r["profiled_s"] for r in runs["mxnet"]) * 1e3
    ours_prof = statistics.median(r["profiled_s"] for r in runs["ours"]) * 1e3
    print(f"| step, profiled | {mx_prof:.1f} | {ours_prof:.1f} | {ours_prof - mx_prof:+.1f} |")
    print(f"| step, unprofiled (MXNet with operator bulking off) | {mx_step:.1f} | {ours_step:.1f} (hybridized: {paths}) "
          f"| {ours_step - mx_step:+.1f} |")
    flops = statistics.median(r["flops"] for r in runs["ours"])
    gemm = statistics.median(r["gemm_gflops"] for r in runs["ours"])
    print(f"\nstep arithmetic (torch.utils.flop_counter, forward + backward): {flops / 1e9:.1f} GFLOP; "
          f"fp32 2048x2048 matrix product on {args.threads} threads: {gemm:.0f} GFLOP/s")
    for side in ("mxnet", "ours"):
        rate = flops / (med(side, CONV) / 1e3) / 1e9
        print(f"  {side}: {CONV} at {rate:.0f} GFLOP/s ({100 * rate / gemm:.0f}% of the matrix product)")
    target = mx_step / 1.2
    print(f"  a step 1.2x faster than MXNet's here: {target:.0f} ms; ours without any time outside convolutions and "
          f"matrix products would be {med('ours', CONV):.0f} ms")
    print(f"took {time.time() - started:.0f} s; load average at end {load_text()}")


if __name__ == "__main__":
    main()
