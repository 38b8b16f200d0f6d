"""``net.export`` of a hybridized ResNet-50 v1b in fresh processes, A/B between export code paths.

Issue 16 asks for an export <= 10 s on a quiet 2-core machine. ``torch.onnx.export(..., dynamo=True)``
captures the model with ``torch.export``, builds torchlib's registry of ONNX translations, prepares the
captured program (a second trace, ``run_decompositions``), translates, optimizes and saves. The variants:

* ``new``: this tree's defaults: the direct preparation (``toolkit.deploy._onnx_prepare``: rewrites of
  the captured graph instead of the second trace) and three levers: the lazy registry
  (``toolkit.deploy._onnx_registry``: each op's ONNX signature inferred when the op is first looked up
  instead of all ~570 up front), the rule filter (``toolkit.deploy._onnx_optimize``: the optimizer's
  rewrite rules tried only on nodes of the op their pattern ends in) and Python's cyclic garbage
  collector paused during torch.onnx's export and save (``toolkit.deploy.export``);
* ``previous``: the direct preparation alone (the three levers off), the code before them;
  ``no-lazy-registry``, ``no-rule-filter`` and ``no-gc-pause`` turn off one lever each
  (``TOOLKIT_EXPORT_LAZY_REGISTRY=0``, ``TOOLKIT_EXPORT_RULE_FILTER=0``, ``TOOLKIT_EXPORT_GC_PAUSE=0``);
* ``full``: torch.onnx's own path (``TOOLKIT_EXPORT_DIRECT=0`` too).

Each run is a fresh process (imports and first-use costs included, as a user sees them) that builds the
model, hybridizes it, makes one ``no_grad`` call (batch 16) and times ``net.export`` (batch-2 example
input, with its onnxruntime check), split into stages by wrapping the functions torch.onnx and the toolkit
call. The variants alternate run by run (order reversed every other run); the table holds medians of wall
and process-CPU seconds (CPU seconds move less than wall seconds on a loaded machine), and the ratios of
each variant to the first.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/first_call_export.py --runs 5                  # new vs previous
    OMP_WAIT_POLICY=PASSIVE python benchmarks/first_call_export.py --runs 3 --variants new,previous,full
    python benchmarks/first_call_export.py --model resnet18_v1b --size 32 --runs 1    # smoke test
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from _timing import cpu, load_text, run_json_child

REPO = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, sys, tempfile, time, collections
t_start = time.perf_counter(); c_start = time.process_time()
import torch
cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
from toolkit.zoo import get_model
res = {"import_s": time.perf_counter() - t_start}
acc = collections.defaultdict(float)

def wrap(owner, name, label, static=False):
    real = getattr(owner, name)
    fn = real.__func__ if static else real
    def timed(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            acc[label] += time.perf_counter() - t
    setattr(owner, name, classmethod(timed) if static else timed)

torch.manual_seed(0)
net = get_model(cfg["model"], classes=1000).eval().hybridize()
net.metadata.setdefault("input_shape", [3, cfg["size"], cfg["size"]])
with torch.no_grad():
    net(torch.randn(cfg["batch"], 3, cfg["size"], cfg["size"]))
x = torch.randn(2, 3, cfg["size"], cfg["size"])
import toolkit.deploy.export as E
from toolkit.deploy import _onnx_prepare, _onnx_registry, runtime
t = time.perf_counter(); c = time.process_time()
import torch.onnx._internal.exporter._core as core, torch.onnx._internal.exporter._fx_passes as fxp
import torch.onnx._internal.exporter._onnx_program as op, torch.onnx._internal.exporter._registration as reg
res["onnx_import_s"] = time.perf_counter() - t
wrap(torch.export, "export", "capture")
wrap(reg.ONNXRegistry, "from_torchlib", "registry", static=True)
wrap(_onnx_registry, "lazy_torchlib_registry", "registry")
wrap(fxp, "decompose_with_registry", "decompositions (full)")
wrap(_onnx_prepare, "prepare_without_retrace", "rewrites (direct)")
wrap(fxp, "insert_type_promotion_nodes", "type promotion")
wrap(core, "_exported_program_to_onnx_program", "translate")
wrap(op.ONNXProgram, "optimize", "optimize")
wrap(op.ONNXProgram, "save", "save")
wrap(E, "sha256_file", "sha256")
wrap(runtime, "load", "check: load")
wrap(runtime.ExportedBlock, "__call__", "check: run")
with tempfile.TemporaryDirectory() as d:
    net.export(d + "/model", example_inputs=(x,))
# t was taken before the torch.onnx import: the import is in export_s once (until 2026-12-03 it was
# added a second time, overstating every wall figure by the import's ~1.5 s; the CPU figure was right)
res["export_s"] = time.perf_counter() - t
res["export_cpu_s"] = time.process_time() - c
import resource
res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
res["stages"] = dict(acc)
res["path"] = {k: v for k, v in _onnx_prepare.COUNTS.items() if v}
print("RESULT " + json.dumps(res))
"""


#: environment of each variant (see the module docstring)
_OFF = {"TOOLKIT_EXPORT_LAZY_REGISTRY": "0", "TOOLKIT_EXPORT_RULE_FILTER": "0", "TOOLKIT_EXPORT_GC_PAUSE": "0"}
VARIANTS = {
    "new": {},
    "no-rule-filter": {"TOOLKIT_EXPORT_RULE_FILTER": "0"},
    "no-lazy-registry": {"TOOLKIT_EXPORT_LAZY_REGISTRY": "0"},
    "no-gc-pause": {"TOOLKIT_EXPORT_GC_PAUSE": "0"},
    "previous": dict(_OFF),
    "full": {"TOOLKIT_EXPORT_DIRECT": "0", **_OFF},
}


def run_child(cfg: dict, env: dict[str, str]) -> dict:
    base = {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(cfg["threads"]),
            "TOOLKIT_EXPORT_DIRECT": "1", "TOOLKIT_EXPORT_LAZY_REGISTRY": "1", "TOOLKIT_EXPORT_RULE_FILTER": "1", "TOOLKIT_EXPORT_GC_PAUSE": "1"}
    return run_json_child(_CHILD, cfg, {**base, **env}, REPO)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet50_v1b")
    p.add_argument("--batch-size", type=int, default=16, help="batch of the no_grad call before the export")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=3, help="processes per variant (alternating)")
    p.add_argument("--variants", default="new,previous", help=f"comma-separated, from {', '.join(VARIANTS)}")
    args = p.parse_args()
    cfg = {"model": args.model, "batch": args.batch_size, "size": args.size, "threads": args.threads}
    labels = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in labels if v not in VARIANTS]
    if unknown or not labels:
        p.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    import torch

    model, isa = cpu()
    print(f"export A/B: {args.model}, export input 2x3x{args.size}x{args.size}, {args.threads} threads, "
          f"torch {torch.__version__}, CPU {model}, ISA {' '.join(isa) or '-'}; load average at start {load_text()}")
    print("goal (issue 16, quiet 2-core machine, ResNet-50 v1b): net.export <= 10 s")
    results: dict[str, list[dict]] = {k: [] for k in labels}
    for i in range(args.runs):
        order = labels if i % 2 == 0 else list(reversed(labels))
        for name in order:
            results[name].append(run_child(cfg, VARIANTS[name]))
            r = results[name][-1]
            print(f"  run {i + 1} {name}: export {r['export_s']:.2f} s wall, {r['export_cpu_s']:.2f} s cpu, "
                  f"path {r['path']}; load {load_text()}", flush=True)
    med = lambda rs, f: statistics.median(f(r) for r in rs)  # noqa: E731
    print(f"{'seconds, median of ' + str(args.runs) + ' processes':<36}" + "".join(f"{k:>20}" for k in labels))
    rows = [("net.export, wall", lambda r: r["export_s"]), ("net.export, process CPU", lambda r: r["export_cpu_s"]),
            ("  of it: import torch.onnx", lambda r: r["onnx_import_s"])]
    stages = sorted({s for rs in results.values() for r in rs for s in r["stages"]})
    rows += [(f"  of it: {s}", (lambda s: lambda r: r["stages"].get(s, 0.0))(s)) for s in stages]
    rows += [("import torch + toolkit (before)", lambda r: r["import_s"]),
             ("peak RSS of the process, MB", lambda r: r.get("peak_rss_mb", 0.0))]
    for name, f in rows:
        print(f"{name:<36}" + "".join(f"{med(results[k], f):20.2f}" for k in labels))
    first = labels[0]
    a, ac = med(results[first], lambda r: r["export_s"]), med(results[first], lambda r: r["export_cpu_s"])
    for k in labels[1:]:
        b, bc = med(results[k], lambda r: r["export_s"]), med(results[k], lambda r: r["export_cpu_s"])
        print(f"{first} / {k}: wall {a / b:.2f}x, cpu {ac / bc:.2f}x")
    print(f"load average at end: {load_text()}")


if __name__ == "__main__":
    main()
