"""Time to first answer: the first hybridized call, the first ``no_grad`` call after it, and ``export``.

Issue 16 measured, for ResNet-50 v1b on a quiet 2-core machine, 18.9 s for the first
hybridized call with gradients enabled (capture plus kernel timing of forward and
backward), 8.9 s more for the first ``no_grad`` call and 29.7 s for ``net.export``; the
goal is a first hybridized call <= 3 s and an export <= 10 s. Each configuration runs
in a fresh process (imports and torch's first-use costs included, as a user sees them):

* ``no disk cache``: ``TOOLKIT_AUTOTUNE_CACHE=0``, everything measured in the process;
* ``disk cache, cold``: an empty decision folder, which the run fills;
* ``disk cache, warm``: a second process on the folder the cold run filled (what every
  run after the first on a machine sees).

In each process: build the model (random weights), ``hybridize()``, time the first call
in training mode with gradients (the first training step's forward), its backward and a second
step (with lazy autotuning, the default, see ``HybridBlock.hybridize``: the first call runs the
block eagerly and the second captures the graph; the measuring follows a step a call), then in eval mode
the first call under ``no_grad``, then ``net.export(...)`` (with its onnxruntime check).
An eager first call is timed as the reference. Timings on a loaded machine mean
nothing: the header prints the load average, run it on a quiet one.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/first_call.py                 # ResNet-50 v1b, batch 16, 128x128
    python benchmarks/first_call.py --model resnet18_v1b --batch-size 2 --size 32 --runs 1   # smoke test
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _timing import cpu, load_text, run_json_child

REPO = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, sys, tempfile, time
t_start = time.perf_counter()
import torch
cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
from toolkit.zoo import get_model
t_import = time.perf_counter() - t_start
x = torch.randn(cfg["batch"], 3, cfg["size"], cfg["size"])
res = {"import_s": t_import}

torch.manual_seed(0)
eager = get_model(cfg["model"], classes=1000).train()
t = time.perf_counter(); eager(x); res["eager_first_s"] = time.perf_counter() - t
del eager

torch.manual_seed(0)
net = get_model(cfg["model"], classes=1000).train().hybridize()
t = time.perf_counter(); out = net(x); res["hybrid_first_grad_s"] = time.perf_counter() - t
res["layout"] = net.graph_memory_format
res["kernels"] = {}
for c in net.conv_kernels:
    res["kernels"][c.kernel] = res["kernels"].get(c.kernel, 0) + 1
t = time.perf_counter(); out.sum().backward(); res["first_backward_s"] = time.perf_counter() - t
res["tuning_left"] = net.tuning_pending
t = time.perf_counter(); net(x).sum().backward(); res["second_step_s"] = time.perf_counter() - t
net.eval()
with torch.no_grad():
    t = time.perf_counter(); net(x); res["hybrid_first_no_grad_s"] = time.perf_counter() - t
net.metadata.setdefault("input_shape", [3, cfg["size"], cfg["size"]])
with tempfile.TemporaryDirectory() as d:
    t = time.perf_counter()
    net.export(d + "/model", example_inputs=(torch.randn(2, 3, cfg["size"], cfg["size"]),))
    res["export_s"] = time.perf_counter() - t
print("RESULT " + json.dumps(res))
"""

ROWS = [("import_s", "import torch + toolkit"), ("eager_first_s", "eager first call (train, grad)"),
        ("hybrid_first_grad_s", "hybridized first call (train, grad)"),
        ("first_backward_s", "its backward"),
        ("second_step_s", "second step (fwd + bwd; lazy: the capture)"),
        ("hybrid_first_no_grad_s", "first no_grad call after it (eval)"),
        ("export_s", "net.export (+ onnxruntime check)")]


def run_child(cfg: dict, env_extra: dict) -> dict:
    return run_json_child(_CHILD, cfg, {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(cfg["threads"]), **env_extra},
                          REPO)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet50_v1b")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=1, help="repeat the three configurations this many times")
    args = p.parse_args()
    cfg = {"model": args.model, "batch": args.batch_size, "size": args.size, "threads": args.threads}
    import torch

    model, isa = cpu()
    print(f"first call / export: {args.model}, batch {args.batch_size}, {args.size}x{args.size}, {args.threads} "
          f"threads, torch {torch.__version__}, CPU {model}, ISA {' '.join(isa) or '-'} "
          f"(torch capability {torch.backends.cpu.get_cpu_capability()}); load average at start {load_text()}")
    print("goal (issue 16, quiet 2-core machine, ResNet-50 v1b): first hybridized call <= 3 s, export <= 10 s")
    results: dict[str, list[dict]] = {"no disk cache": [], "disk cache, cold": [], "disk cache, warm": []}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as home:
            results["no disk cache"].append(run_child(cfg, {"TOOLKIT_HOME": home, "TOOLKIT_AUTOTUNE_CACHE": "0"}))
        with tempfile.TemporaryDirectory() as home:
            results["disk cache, cold"].append(run_child(cfg, {"TOOLKIT_HOME": home}))
            results["disk cache, warm"].append(run_child(cfg, {"TOOLKIT_HOME": home}))
    labels = list(results)
    print(f"{'seconds (min over runs)':<40}" + "".join(f"{k:>18}" for k in labels))
    for key, name in ROWS:
        print(f"{name:<40}" + "".join(f"{min(r[key] for r in results[k]):18.2f}" for k in labels))
    for key, name in (("hybrid_first_grad_s", "hybridized first call"), ("export_s", "net.export")):
        print(f"{name + ' / eager first call':<40}" + "".join(
            f"{min(r[key] / r['eager_first_s'] for r in results[k]):18.2f}" for k in labels))
    for k in labels:
        last = results[k][-1]
        print(f"{k}: graph layout after the first call {last['layout']}, kernels {last['kernels']}, "
              f"lazy tuning left after it: {last['tuning_left']}")
    print(f"load average at end: {load_text()}")


if __name__ == "__main__":
    main()
