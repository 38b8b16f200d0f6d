"""Inference levers behind ``hybridize()``: eager, today's hybridized graph, Inductor with frozen weights,
OpenVINO and onnxruntime, side by side in one process.

Every lever is set up once (the setup seconds are printed: capture, compile, convert), its output
checked against eager (max abs difference), then the levers run interleaved: each round times
``--steps`` calls of every lever, in alternating order, and keeps the median; the table gives the
median over ``--rounds`` rounds and ``hybridized / lever`` (above 1: the lever is faster than today's
``hybridize()``). One process, interleaved, because the machine may be loaded: the header prints the
load average, and only the ratios of one run mean anything there.

Levers (``--levers``):

- ``eager``: the module, ``eval()`` under ``no_grad``.
- ``hybridized``: ``hybridize(inductor=False)``, the race as it was before the Inductor candidate
  (capture, BN folding, kernel and layout race, eager race; all in the first call).
- ``hybridized+inductor``: ``hybridize(inductor=True)``, the Inductor candidate in the race (opt-in;
  compiles again, so not in the default list).
- ``inductor``: ``torch.compile`` of the eager module with ``freezing`` (weights as constants, BN
  folded, oneDNN weight prepacking) and the C++ wrapper; ``inductor-autotune`` adds ``max_autotune``
  (Inductor's CPU GEMM templates; compile takes minutes).
- ``openvino``: ``openvino.convert_model`` of the module, compiled for CPU with the LATENCY hint,
  ``--threads`` threads, f32 precision; numpy in and out without copies.
- ``openvino-2streams``: the same model at half the batch, two streams (``THROUGHPUT`` hint), the two
  halves of the batch run at once.
- ``hybridized+openvino``: ``hybridize(openvino=True)``, the OpenVINO candidate in the race.
- ``onnxruntime``: the toolkit's ONNX export (``block.export``), one session with ``--threads`` threads.

``--train`` adds the training step (forward, backward, SGD) of ResNet-50: eager, hybridized,
``inductor-cl`` (weights and input channels-last, then ``torch.compile``) and
``torch.compile`` (Inductor, default options) of the module, measured only.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/inference_levers.py --models r50 --rounds 5 --steps 3
    OMP_WAIT_POLICY=PASSIVE python benchmarks/inference_levers.py --models mnv3,bert --rounds 5 --steps 3
    python benchmarks/inference_levers.py --small --rounds 1 --steps 1     # smoke test, numbers meaningless
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from _timing import cpu, load_text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

MODELS = {
    "r50": dict(model="resnet50_v1b", kind="cnn", batch=16, size=224, title="ResNet-50 v1b, batch 16, 224x224"),
    "mnv3": dict(model="mobilenetv3_large", kind="cnn", batch=16, size=224, title="MobileNetV3-Large, batch 16, 224x224"),
    "bert": dict(model="bert_12_768_12", kind="bert", batch=8, seq=128, title="BERT-base classification, batch 8, seq 128"),
}
LEVERS = ("eager", "hybridized", "hybridized+inductor", "hybridized+openvino", "inductor", "inductor-autotune", "openvino",
          "openvino-2streams", "onnxruntime")


def build(cfg: dict, small: bool) -> tuple[torch.nn.Module, tuple]:
    from toolkit.zoo import get_model

    torch.manual_seed(0)
    if cfg["kind"] == "cnn":
        s = 64 if small else cfg["size"]
        b = 2 if small else cfg["batch"]
        net = get_model(cfg["model"], classes=1000).eval()
        net.metadata["input_shape"] = [3, s, s]
        return net, (torch.randn(b, 3, s, s),)
    b, L = (2, 16) if small else (cfg["batch"], cfg["seq"])
    net = get_model(cfg["model"], head="classification", num_classes=2).eval()
    ids = torch.randint(1, 30000, (b, L))
    mask = torch.ones_like(ids)
    mask[-1, L - 2:] = 0
    return net, (ids, torch.zeros_like(ids), mask)


def first(out: Any) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else torch.utils._pytree.tree_leaves(out)[0]


def setup_lever(name: str, net_fn: Callable[[], torch.nn.Module], inputs: tuple, threads: int,
                small: bool) -> Callable[[], torch.Tensor]:
    """A no-argument function running one inference with the lever (built and warmed up here)."""
    if name == "eager":
        net = net_fn()
        return lambda: first(net(*inputs))
    if name in ("hybridized", "hybridized+inductor", "hybridized+openvino"):
        # measured all in the first call (the lazy queue spreads the same work over calls)
        net = net_fn().hybridize(lazy=False, inductor=name == "hybridized+inductor",
                                 openvino=name == "hybridized+openvino")
        for _ in range(200):
            net(*inputs)
            if not net.tuning_pending:
                break
        print(f"#   hybridized path: {net.graph_memory_format} race {net.race_times}", flush=True)
        return lambda: first(net(*inputs))
    if name.startswith("inductor"):
        import torch._inductor.config as cfg

        net = net_fn()
        options = {"freezing": True, "cpp_wrapper": True}
        if name == "inductor-autotune":
            options["max_autotune"] = True
        with cfg.patch(options):
            compiled = torch.compile(net, dynamic=False)
            compiled(*inputs)
        return lambda: first(compiled(*inputs))
    if name == "openvino-2streams":
        # the batch split in two halves run at once on two streams sharing --threads threads (THROUGHPUT hint),
        # against one stream with all threads on the whole batch
        import openvino as ov
        from toolkit.deploy.ov_core import shared_core

        net = net_fn()
        half = [t[: t.shape[0] // 2] for t in inputs]
        model = ov.convert_model(net, example_input=half if len(half) > 1 else half[0])
        model.reshape({port: ov.PartialShape(list(t.shape)) for port, t in zip(model.inputs, half)})
        compiled = shared_core().compile_model(model, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": 2,
                                                              "INFERENCE_NUM_THREADS": threads,
                                                              "INFERENCE_PRECISION_HINT": "f32"})
        requests = [compiled.create_infer_request() for _ in range(2)]
        parts = [[t.numpy()[i * (t.shape[0] // 2):(i + 1) * (t.shape[0] // 2)] for t in inputs] for i in range(2)]

        def run2():
            for request, part in zip(requests, parts):
                request.start_async(part, share_inputs=True)
            for request in requests:
                request.wait()
            return torch.cat([torch.from_numpy(r.get_output_tensor(0).data.copy()) for r in requests])
        return run2
    if name == "openvino":
        import openvino as ov
        from toolkit.deploy.ov_core import shared_core

        net = net_fn()
        model = ov.convert_model(net, example_input=inputs if len(inputs) > 1 else inputs[0])
        core = shared_core()
        compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads,
                                                      "INFERENCE_PRECISION_HINT": "f32"})
        request = compiled.create_infer_request()
        arrays = [t.numpy() for t in inputs]

        def run():
            request.infer(arrays, share_inputs=True, share_outputs=True)
            return torch.from_numpy(request.get_output_tensor(0).data)
        return run
    if name == "onnxruntime":
        import onnxruntime as ort

        net = net_fn()
        folder = tempfile.mkdtemp(prefix="levers-")
        small_inputs = tuple(t[:2] for t in inputs)
        net.export(str(Path(folder) / "model"), example_inputs=small_inputs, check=False)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(Path(folder) / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        feed = {n: t.numpy() for n, t in zip(names, inputs)}
        return lambda: torch.from_numpy(sess.run(None, feed)[0])
    raise ValueError(f"unknown lever {name!r}; choose from {LEVERS}")


def interleaved(fns: dict[str, Callable[[], Any]], rounds: int, steps: int) -> dict[str, float]:
    per_round: dict[str, list[float]] = {n: [] for n in fns}
    names = list(fns)
    for r in range(rounds):
        for n in (names if r % 2 == 0 else names[::-1]):
            times = []
            for _ in range(steps):
                t = time.perf_counter()
                fns[n]()
                times.append(time.perf_counter() - t)
            per_round[n].append(statistics.median(times))
    return {n: statistics.median(v) for n, v in per_round.items()}


def bench_inference(key: str, levers: list[str], args) -> list[str]:
    cfg = MODELS[key]
    net, inputs = build(cfg, args.small)
    state = net.state_dict()

    def fresh():
        from toolkit.zoo import get_model
        if cfg["kind"] == "cnn":
            m = get_model(cfg["model"], classes=1000)
        else:
            m = get_model(cfg["model"], head="classification", num_classes=2)
        m.load_state_dict(state)
        m.metadata.update(net.metadata)
        return m.eval()

    lines = [f"## {cfg['title']}{' (--small)' if args.small else ''}: inference, eval() under no_grad"]
    fns, setup, diff = {}, {}, {}
    with torch.no_grad():
        reference = first(net(*inputs))
        for name in levers:
            t = time.perf_counter()
            try:
                fn = setup_lever(name, fresh, inputs, args.threads, args.small)
                out = fn()
            except Exception as err:  # noqa: BLE001 - a lever that fails is reported, the others still run
                lines.append(f"# {name}: setup failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
                print(lines[-1], flush=True)
                continue
            setup[name] = time.perf_counter() - t
            diff[name] = float((out.float() - reference.float()).abs().max())
            fns[name] = fn
            print(f"# {name}: setup {setup[name]:.1f} s, max |diff| vs eager {diff[name]:.2e}", flush=True)
        times = interleaved(fns, args.rounds, args.steps)
    base = times.get("hybridized")
    lines.append(f"{'lever':<20}{'ms/batch':>10}{'hybridized/lever':>18}{'setup s':>9}{'max|diff|':>11}")
    for name, t in times.items():
        ratio = f"{base / t:.2f}" if base else "-"
        lines.append(f"{name:<20}{t * 1e3:>10.1f}{ratio:>18}{setup[name]:>9.1f}{diff[name]:>11.1e}")
    return lines


def bench_training(args) -> list[str]:
    cfg = MODELS["r50"]
    from toolkit.zoo import get_model

    b, s = (2, 64) if args.small else (16, 128)
    x, y = torch.randn(b, 3, s, s), torch.arange(b) % 1000
    fns, setup = {}, {}
    # inductor-cl: weights and input in channels-last before compiling (the layout hybridize() chose for
    # ResNet-50 training on the AMD machines)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    for name in ("eager", "hybridized", "inductor", "inductor-cl"):
        torch.manual_seed(0)
        m = get_model(cfg["model"], classes=1000).train()
        if name == "hybridized":
            m.hybridize(lazy=False)
        if name == "inductor-cl":
            m = m.to(memory_format=torch.channels_last)
        fwd = torch.compile(m) if name.startswith("inductor") else m
        opt = torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9)
        inp = x_cl if name == "inductor-cl" else x

        def step(m=m, fwd=fwd, opt=opt, inp=inp):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(fwd(inp), y).backward()
            opt.step()
        t = time.perf_counter()
        for _ in range(2):
            step()
        setup[name] = time.perf_counter() - t
        fns[name] = step
        print(f"# train {name}: setup {setup[name]:.1f} s", flush=True)
    times = interleaved(fns, args.rounds, args.steps)
    lines = [f"## ResNet-50 v1b training step (forward, backward, SGD), batch {b}, {s}x{s}",
             f"{'lever':<20}{'ms/step':>10}{'hybridized/lever':>18}{'setup s':>9}"]
    for name, t in times.items():
        lines.append(f"{name:<20}{t * 1e3:>10.1f}{times['hybridized'] / t:>18.2f}{setup[name]:>9.1f}")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="r50", help=f"comma-separated, of {sorted(MODELS)}")
    p.add_argument("--levers", default="eager,hybridized,inductor,openvino,onnxruntime",
                   help=f"comma-separated, of {LEVERS}")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train", action="store_true", help="also the ResNet-50 training step (eager, hybridized, inductor)")
    p.add_argument("--small", action="store_true", help="tiny inputs, to prove the script end to end")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "inference_levers.txt"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    levers = [lv for lv in args.levers.split(",") if lv]
    for lv in levers:
        if lv not in LEVERS:
            p.error(f"unknown lever {lv!r}; choose from {LEVERS}")
    model, isa = cpu()
    header = [f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  {model} ({', '.join(isa)}), "
              f"{args.threads} threads, torch {torch.__version__}, load average {load_text()} at start",
              f"# rounds {args.rounds} x steps {args.steps}, levers interleaved in one process, medians"]
    print("\n".join(header), flush=True)
    lines: list[str] = []
    for key in args.models.split(","):
        if key not in MODELS:
            p.error(f"unknown model {key!r}; choose from {sorted(MODELS)}")
        lines += bench_inference(key, levers, args)
        print("\n".join(lines), flush=True)
    if args.train:
        lines += bench_training(args)
    lines.append(f"# load average {load_text()} at end")
    text = "\n".join(header + lines) + "\n"
    print(text)
    if not args.small:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    main()
