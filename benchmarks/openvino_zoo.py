"""The OpenVINO candidate of ``hybridize()``'s inference race across the zoo: should it race by default?

For each model (random weights), in a fresh process per model and setting, ``hybridize()`` measured
lazily from scratch (disk cache off), the ``no_grad`` calls repeated until the race has decided:

* ``openvino=False``: the race as it is by default (captured graph as given, channels-last, eager);
* ``openvino=True``: the same race with the OpenVINO candidate (converted and compiled in one step of
  the measuring queue, in one of the calls).

Per run: the calls until decided, the longest call (the one that converted and compiled, with
OpenVINO), the seconds all those calls took, the path kept with the race medians, the median of 5
calls after the race, what the OpenVINO candidate logged (a failed convert, or outputs that differ),
and memory: the process's peak resident set (``VmHWM``) and its resident set after the race
(``VmRSS``), both over the resident set before the model was built.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/openvino_zoo.py | tee benchmarks/results/openvino_zoo.txt
    python benchmarks/openvino_zoo.py --models resnet18_v1b --max-calls 60   # one row
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import cpu, load_text, run_json_child  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

#: name -> (input kind, batch, size); sizes as the zoo's models are deployed (GluonCV's defaults).
MODELS: dict[str, tuple[str, int, int]] = {
    "resnet18_v1b": ("image", 1, 224),
    "resnet50_v1b": ("image", 1, 224),
    "resnet50_v1b@16": ("image", 16, 224),
    "mobilenetv3_large": ("image", 1, 224),
    "ssd_512_resnet50_v1_voc": ("detector", 1, 512),
    "yolo3_mobilenet1.0_voc": ("detector", 1, 416),
    "fasterrcnn_mobilenet_v3_large_320_fpn": ("detector", 1, 320),
    "faster_rcnn_resnet50_v1b_voc": ("detector", 1, 512),
    "lraspp_mobilenet_v3_large": ("segmenter", 1, 512),
    "fcn_resnet50_voc": ("segmenter", 1, 480),
    "bert_12_768_12": ("text", 8, 128),
}

CHILD = r"""
import json, logging, os, statistics, sys, time
os.environ["TOOLKIT_AUTOTUNE_CACHE"] = "0"
cfg = json.loads(sys.argv[1])
import torch
torch.set_num_threads(cfg["threads"])

def kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

from toolkit.zoo import get_model
import toolkit.nn.autotune  # noqa: F401  (the library's imports before the baseline)
if cfg["openvino"]:
    import openvino  # noqa: F401
messages = []

class Keep(logging.Handler):
    def emit(self, record):
        messages.append(record.getMessage()[:300])

logging.getLogger("toolkit").addHandler(Keep(level=logging.WARNING))
name = cfg["model"].split("@")[0]
torch.manual_seed(0)
base = kib("VmRSS")
if cfg["kind"] == "text":
    net = get_model(name, head="classification", num_classes=2)
    b, L = cfg["batch"], cfg["size"]
    ids = torch.randint(1, 30000, (b, L))
    inputs = (ids, torch.zeros_like(ids), torch.ones_like(ids))
elif cfg["kind"] == "image":
    net = get_model(name, classes=1000)
    inputs = (torch.randn(cfg["batch"], 3, cfg["size"], cfg["size"]),)
else:
    net = get_model(name, pretrained=False, pretrained_base=False)
    inputs = (torch.randn(cfg["batch"], 3, cfg["size"], cfg["size"]),)
net.eval().hybridize(openvino=cfg["openvino"])
calls = []
with torch.no_grad():
    while len(calls) < cfg["max_calls"]:
        t = time.perf_counter()
        net(*inputs)
        calls.append(time.perf_counter() - t)
        if not net.tuning_pending:
            break
    steady = []
    for _ in range(5):
        t = time.perf_counter()
        net(*inputs)
        steady.append(time.perf_counter() - t)
print("RESULT " + json.dumps({
    "calls": len(calls), "decided": not net.tuning_pending, "first": calls[0], "longest": max(calls),
    "total": sum(calls), "path": net.graph_memory_format, "race": net.race_times,
    "steady": statistics.median(steady), "peak_mib": (kib("VmHWM") - base) / 1024,
    "rss_mib": (kib("VmRSS") - base) / 1024, "messages": messages}))
"""


def _row(name: str, result: dict) -> str:
    if "error" in result:
        return f"{name}: child failed: {result['error']}"
    race = " ".join(f"{k} {v:.3f}" for k, v in result["race"].items())
    text = (f"  {result['calls']:3d} calls {'to decide' if result['decided'] else '(undecided!)'}, first "
            f"{result['first']:.2f} s, longest {result['longest']:.2f} s, all {result['total']:.1f} s; kept "
            f"{result['path']} (race medians: {race}); after: {result['steady']:.3f} s/call; memory over "
            f"the start: peak {result['peak_mib']:.0f} MiB, after {result['rss_mib']:.0f} MiB")
    for message in result["messages"]:
        text += f"\n      logged: {message}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated keys of MODELS")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-calls", type=int, default=80, help="calls before giving up on a decision")
    args = parser.parse_args()
    unknown = [k for k in args.models.split(",") if k not in MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {list(MODELS)}")
    model, flags = cpu()
    import openvino
    import torch

    print(f"OpenVINO in hybridize()'s lazy inference race, {args.threads} threads; {model} "
          f"({' '.join(flags)}); torch {torch.__version__}, openvino {openvino.__version__}; "
          f"load {load_text()}", flush=True)
    for key in args.models.split(","):
        kind, batch, size = MODELS[key]
        shape = f"batch {batch}, " + (f"seq {size}" if kind == "text" else f"{size}x{size}")
        print(f"\n{key} ({shape}); load {load_text()}", flush=True)
        for use in (False, True):
            cfg = dict(model=key, kind=kind, batch=batch, size=size, openvino=use, threads=args.threads,
                       max_calls=args.max_calls)
            try:
                result = run_json_child(CHILD, cfg, {"OMP_WAIT_POLICY": "PASSIVE"}, REPO)
            except SystemExit as err:  # a child that died: its last words, not the whole table lost
                result = {"error": str(err).strip().splitlines()[-1][:300]}
            print(f" openvino={use}:\n{_row(key, result)}", flush=True)


if __name__ == "__main__":
    main()
