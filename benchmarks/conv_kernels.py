"""What ``hybridize()`` autotuning measured and chose for each convolution of a zoo model.

Captures the model's training graph (forward + backward timing) or, with
``--inference``, its inference graph, then prints for every convolution its
input shape, the median time of each candidate kernel (interleaved runs, see
``toolkit.nn.autotune``) and the kernel chosen, then the totals; for the graph
the whole-graph layout race kept and, when that is the channels-last one, for the
graph on the inputs as given too. Last, how long the first call took.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/conv_kernels.py --model resnet50_v1b --batch-size 4 --size 96
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# the graph's kernels are the subject: keep the graph even where the eager forward would win the race
os.environ.setdefault("TOOLKIT_EAGER_FALLBACK", "0")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toolkit.nn.autotune import KERNELS, Choice, autotune_convolutions  # noqa: E402
from toolkit.nn.fold import fold_for_inference  # noqa: E402
from toolkit.zoo import get_model  # noqa: E402


def _table(title: str, choices: list[Choice]) -> None:
    names = list(KERNELS)
    print(f"-- {title}")
    print(f"{'node':<12} {'input shape':<18} " + " ".join(f"{k + ' ms':>16}" for k in names) + "  chosen")
    totals = {"aten": 0.0, "chosen": 0.0}
    for c in choices:
        shape = "x".join(map(str, c.input_shape))
        cells = " ".join(f"{c.times[k] * 1e3:16.2f}" if k in c.times else f"{'-':>16}" for k in names)
        print(f"{c.node:<12} {shape:<18} {cells}  {c.kernel}")
        if c.times:
            totals["aten"] += c.times["aten"]
            totals["chosen"] += c.times[c.kernel]
    print(f"sum over convolutions: aten {totals['aten'] * 1e3:.1f} ms, chosen {totals['chosen'] * 1e3:.1f} ms "
          f"({totals['aten'] / totals['chosen']:.2f}x)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet50_v1b")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--size", type=int, default=96, help="input height and width")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--inference", action="store_true", help="tune the inference graph (eval, no grad) instead")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = get_model(args.model, classes=1000).train(not args.inference).hybridize(lazy=False)  # all in the first call
    x = torch.randn(args.batch_size, 3, args.size, args.size)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    if args.inference:
        with torch.no_grad():
            model(x)
    else:
        model(x).sum().backward()
    capture_s = time.perf_counter() - start
    mode = "inference" if args.inference else "training (forward + backward)"
    print(f"torch {torch.__version__}, {args.model}, {mode}, {args.threads} threads, batch {args.batch_size}, "
          f"{args.size}x{args.size}; load average at start: {load:.1f}")
    _table(f"kept graph ({model.graph_memory_format})", model.conv_kernels)
    if model.graph_memory_format != "as_given":
        # The race tuned the graph on the inputs as given too; its decisions are cached, so
        # tuning a fresh capture of it again only reads them back.
        fresh = get_model(args.model, classes=1000).train(not args.inference)
        with torch.no_grad() if args.inference else contextlib.nullcontext():
            program = torch.export.export(fresh, (x,), dynamic_shapes=fresh.dynamic_shapes_for((x,))[0])
            graph = program.module()
            if args.inference:
                graph = fold_for_inference(graph)
            graph = getattr(graph, "module", graph)
            _table("graph on the inputs as given (NCHW), not kept",
                   autotune_convolutions(graph, backward=not args.inference))
    print(f"whole-graph layout kept: {model.graph_memory_format}; first call (captures + tuning + run): "
          f"{capture_s:.1f} s")


if __name__ == "__main__":
    main()
