"""Where the seconds of the first hybridized call, the first no_grad call and export go (ResNet-50 v1b, batch 16,
128x128): times the capture, kernel timing, race and onnx export by wrapping them. Run with TOOLKIT_AUTOTUNE_CACHE=0
and TOOLKIT_AUTOTUNE_LAZY=0 to see the first-call costs that lazy autotuning spreads over later calls.

    TOOLKIT_AUTOTUNE_CACHE=0 TOOLKIT_AUTOTUNE_LAZY=0 OMP_WAIT_POLICY=PASSIVE PYTHONPATH=. python benchmarks/first_call_stages.py
"""
import time, sys, os, json, collections, tempfile
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
t0 = time.perf_counter()
import torch
torch.set_num_threads(2)
from toolkit.zoo import get_model
from toolkit.nn import block, autotune
import toolkit.nn.block as B
acc = collections.defaultdict(float); cnt = collections.Counter()
def wrap(mod, name, label=None):
    real = getattr(mod, name)
    label = label or name
    def f(*a, **k):
        t = time.perf_counter()
        try: return real(*a, **k)
        finally: acc[label] += time.perf_counter() - t; cnt[label] += 1
    setattr(mod, name, f)
wrap(B.HybridBlock, "_export_program")
wrap(autotune.ConvTuner, "step", "kernel timing")
wrap(B, "fastest")
wrap(autotune, "race_once")
wrap(B, "fold_for_inference")
wrap(autotune, "_measure_decision")
wrap(torch.export.ExportedProgram, "module", "program.module")
import torch.onnx
print("import", time.perf_counter() - t0, flush=True)
x = torch.randn(16, 3, 128, 128)
mode = sys.argv[1] if len(sys.argv) > 1 else "all"
torch.manual_seed(0)
eager = get_model("resnet50_v1b", classes=1000).train()
t = time.perf_counter(); eager(x); print("eager first", time.perf_counter() - t)
t = time.perf_counter(); eager(x).sum().backward(); print("eager 2nd fwd+bwd", time.perf_counter() - t)
del eager
net = get_model("resnet50_v1b", classes=1000).train().hybridize()
def report(label, dt):
    print(f"{label}: {dt:.2f} s  " + ", ".join(f"{k} {v:.2f}s/{cnt[k]}" for k, v in acc.items()), flush=True)
    acc.clear(); cnt.clear()
t = time.perf_counter(); out = net(x); report("hybrid first (train,grad)", time.perf_counter() - t)
print(net.graph_memory_format, net.race_times)
t = time.perf_counter(); out.sum().backward(); report("backward", time.perf_counter() - t)
net.eval()
with torch.no_grad():
    t = time.perf_counter(); net(x); report("first no_grad eval", time.perf_counter() - t)
net.metadata.setdefault("input_shape", [3, 128, 128])
import toolkit.deploy.export as E
wrap(torch.onnx, "export", "onnx.export")
with tempfile.TemporaryDirectory() as d:
    t = time.perf_counter(); net.export(d + "/m", example_inputs=(torch.randn(2, 3, 128, 128),)); report("export", time.perf_counter() - t)
