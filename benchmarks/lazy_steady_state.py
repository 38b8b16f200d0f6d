"""Steady state after lazy autotuning vs first-call autotuning vs eager: training steps, interleaved medians.

Lazy autotuning (``hybridize()``'s default) spreads the capture, kernel timing and race over the calls
after the first; this checks that once it is done the steps run as fast as with ``hybridize(lazy=False)``
(everything measured in the first call), and how many calls and seconds the lazy measuring took. Both
measure from scratch (disk cache off, in-process decisions cleared in between); the path each race
chose is printed, since on a loaded machine two races can choose differently.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/lazy_steady_state.py resnet18_v1b 8 64 12   # model batch size repeats
"""
import os, sys, time, statistics
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["TOOLKIT_AUTOTUNE_CACHE"] = "0"
import torch
torch.set_num_threads(2)
from toolkit.zoo import get_model
from toolkit.nn import autotune
name, batch, size, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
x = torch.randn(batch, 3, size, size); y = torch.randint(0, 1000, (batch,))
def make(opts):
    torch.manual_seed(0)
    m = get_model(name, classes=1000).train()
    if opts is not None: m.hybridize(**opts)
    opt = torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9)
    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(m(x), y).backward(); opt.step()
    return m, step
print(f"{name} batch {batch} {size}x{size} training, load {os.getloadavg()}", flush=True)
E, e_step = make(None); e_step()
L, l_step = make({})
t = time.perf_counter(); l_step(); first = time.perf_counter() - t
n = 1; t = time.perf_counter()
while L.tuning_pending: l_step(); n += 1
print(f"lazy: first step {first:.2f} s, then {n - 1} steps ({time.perf_counter() - t:.1f} s) until tuned; path {L.graph_memory_format}, race medians {L.race_times}", flush=True)
autotune._cache.clear()
N, n_step = make({"lazy": False})
t = time.perf_counter(); n_step(); print(f"lazy=False: first step {time.perf_counter() - t:.2f} s; path {N.graph_memory_format}, race medians {N.race_times}", flush=True)
fns = {"eager": e_step, "lazy (tuned)": l_step, "lazy=False": n_step}
times = {k: [] for k in fns}
for i in range(reps):
    for k in (list(fns) if i % 2 == 0 else list(fns)[::-1]):
        t = time.perf_counter(); fns[k](); times[k].append(time.perf_counter() - t)
med = {k: statistics.median(v) for k, v in times.items()}
print("median s/step: " + ", ".join(f"{k} {v:.4f}" for k, v in med.items()))
print(f"lazy tuned / lazy=False: {med['lazy (tuned)'] / med['lazy=False']:.3f}; eager / lazy tuned: {med['eager'] / med['lazy (tuned)']:.3f}; load {os.getloadavg()}")
