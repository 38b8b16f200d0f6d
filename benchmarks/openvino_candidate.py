"""The OpenVINO candidate of ``hybridize()``'s inference race: what converting it costs, and what the lazy race times.

1. ``torch.export``, ``openvino.convert_model`` and ``compile_model`` of a zoo model, timed one by one (the
   lazy race does the convert and compile as one step of its measuring queue, in one of the user's calls).
2. ``hybridize(openvino=True)`` measured lazily from scratch (disk cache off): every call's seconds, the
   race's medians per candidate (each race run of a candidate is printed), the path kept.
3. The OpenVINO request on its own, for the race's OpenVINO median to be checked against. Until stop 27 every
   lazy race run of this candidate went to its fallback (the captured graph): the race's median was the
   graph's, not OpenVINO's.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/openvino_candidate.py resnet50_v1b 16 224
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["TOOLKIT_AUTOTUNE_CACHE"] = "0"
import torch  # noqa: E402

from _timing import cpu, load_text  # noqa: E402
from toolkit.nn import autotune  # noqa: E402
from toolkit.zoo import get_model  # noqa: E402


def main() -> None:
    import openvino as ov
    from toolkit.deploy.ov_core import shared_core

    name, batch, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(2)
    model, flags = cpu()
    print(f"{name} batch {batch} {size}x{size} inference, 2 threads; {model} ({' '.join(flags)}); "
          f"torch {torch.__version__}, openvino {ov.__version__}; load {load_text()}", flush=True)
    torch.manual_seed(0)
    x = torch.randn(batch, 3, size, size)

    net = get_model(name, classes=1000).eval()
    with torch.no_grad():
        start = time.perf_counter()
        program = torch.export.export(net, (x,), strict=False)
        exported = time.perf_counter() - start
    start = time.perf_counter()
    ov_model = ov.convert_model(program)
    converted = time.perf_counter() - start
    ov_model.reshape({port: ov.PartialShape(list(x.shape)) for port in ov_model.inputs})
    start = time.perf_counter()
    compiled = shared_core().compile_model(ov_model, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": 2,
                                                         "INFERENCE_PRECISION_HINT": "f32"})
    compiled_s = time.perf_counter() - start
    print(f"1. export {exported:.2f} s, convert_model {converted:.2f} s, compile_model {compiled_s:.2f} s", flush=True)

    runs: list[str] = []
    real_race_once = autotune.race_once

    def race_once(label, *args, **kwargs):
        seconds = real_race_once(label, *args, **kwargs)
        runs.append(f"{label} {seconds:.3f}")
        return seconds

    autotune.race_once = race_once
    lazy = get_model(name, classes=1000).eval()
    lazy.hybridize(openvino=True)
    calls = []
    with torch.no_grad():
        while True:
            start = time.perf_counter()
            lazy(x)
            calls.append(time.perf_counter() - start)
            if not lazy.tuning_pending:
                break
        steady = []
        for _ in range(5):
            start = time.perf_counter()
            lazy(x)
            steady.append(time.perf_counter() - start)
    print(f"2. lazy hybridize(openvino=True): {len(calls)} calls until decided, longest {max(calls):.2f} s "
          f"(calls: {' '.join(f'{c:.2f}' for c in calls)})", flush=True)
    print(f"   race runs in order: {', '.join(runs)}", flush=True)
    print(f"   race medians: {' '.join(f'{k} {v:.3f}' for k, v in lazy.race_times.items())}; "
          f"path {lazy.graph_memory_format}; median of 5 calls after: {statistics.median(steady):.3f} s", flush=True)

    request = compiled.create_infer_request()
    array = x.numpy()
    request.infer([array])
    alone = []
    for _ in range(5):
        start = time.perf_counter()
        request.infer([array])
        alone.append(time.perf_counter() - start)
    print(f"3. the OpenVINO request alone: median of 5 {statistics.median(alone):.3f} s", flush=True)


if __name__ == "__main__":
    main()
