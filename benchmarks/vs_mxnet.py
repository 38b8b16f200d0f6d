"""Side by side with the engine we replace: MXNet 1.9.1 + GluonCV 0.10 / GluonNLP 0.10 against the toolkit.

Every row runs each side in a process of its own (the MXNet side in the peer virtual
environment built by ``benchmarks/peer/setup_mxnet_venv.sh``, never imported by the
toolkit or its tests), alternating MXNet / ours / ours / MXNet ... for ``--rounds``
rounds, with the same thread count (``OMP_NUM_THREADS`` and ``torch.set_num_threads``).
In each process: build the model with random weights, run ``--warmup`` steps (graph
capture, autotuning, MXNet's CachedOp binding happen there), then time ``--steps`` steps;
the process reports the median. Our variants (hybridized, eager, ``--frozen``) are all built in
one process and timed in turns, step by step. The table gives the median over rounds and
``MXNet time / ours`` (above 1: the toolkit is faster).

MXNet blocks are hybridized with ``static_alloc=True, static_shape=True`` (the bucketed
LSTM, whose shapes change, with ``static_alloc`` only); ours with ``hybridize()``
(default autotune), eager alongside. ``hybridized: <path>`` names what ``hybridize()``
ran in each round: a graph (``as_given``/``channels_last`` inputs) or ``eager``, where
the eager forward won its capture-time race, whose medians are listed under the table. ``--frozen openvino,inductor`` adds, for the
inference rows, ``hybridize(openvino=True)`` / ``hybridize(inductor=True)``: the same race with the
frozen-weight candidate in it (``hybridized+openvino: openvino`` when it won). int8: MXNet's oneDNN quantization
(``mxnet.contrib.quantization.quantize_net``, naive calibration on random batches)
against our QDQ graph (``toolkit.deploy.quantize``) on onnxruntime and on OpenVINO; for BERT,
MXNet's dense layers in int8 (``quantize_net``, attention matmuls float) against our dynamic int8
graph on onnxruntime, as shipped and with ``text_fusion`` (see ``benchmarks/bert_int8.py``).

    bash benchmarks/peer/setup_mxnet_venv.sh                 # once: ~/.toolkit/peer-venv
    # or a second one beside it: PEER_VENV=~/.toolkit/peer-venv-2 bash ... ; then
    # PEER_PYTHON=~/.toolkit/peer-venv-2/bin/python (or --peer-python) for the runs below
    OMP_WAIT_POLICY=PASSIVE python benchmarks/vs_mxnet.py --rounds 3 --steps 5
    OMP_WAIT_POLICY=PASSIVE python benchmarks/vs_mxnet.py --rows r50-fp32,ssd-fp32 --frozen openvino
    python benchmarks/vs_mxnet.py --rows r50-train,bert-fp32 --rounds 1 --steps 1 --warmup 1 --small   # smoke

The SSD row compares GluonCV's ``ssd_512_mobilenet1.0_voc`` with the toolkit's model of the same
name (random weights on both sides, ``pretrained_base=False``), boxes decoded and NMS included.

Under the table, each row's arithmetic (``torch.utils.flop_counter`` on our eager step: its
matrix products and convolutions, backward included) turns each side's step time into a rate,
set beside a 2048x2048 fp32 matrix product's rate on the same threads, measured in our
processes: how far each side is from what this CPU's cores do, and whether the issue's
target ratio over MXNet is within it.

``--small`` shrinks batch and input sizes (not the models) to prove the script end to
end quickly; its numbers are not the benchmark. Numbers from a loaded machine mean
nothing: the header prints the load average.

This file is run by two interpreters: the top level imports only the standard library.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from _timing import cpu, interleaved_medians, load_text, matmul_gflops, median_step_s

REPO = Path(__file__).resolve().parents[1]
#: $PEER_PYTHON, else the default venv of benchmarks/peer/setup_mxnet_venv.sh
DEFAULT_PEER = Path(os.environ.get("PEER_PYTHON") or Path(os.environ.get("TOOLKIT_HOME", Path.home() / ".toolkit"))
                    / "peer-venv" / "bin" / "python").expanduser()

#: id -> (what it measures, settings). ``kind`` picks the step function of each side.
ROWS: dict[str, dict] = {
    "r50-train": dict(kind="cnn_train", model="resnet50_v1b", batch=16, size=128, title="ResNet-50 v1b training step, batch 16, 128x128"),
    # mixed precision: ours under torch.autocast, MXNet under contrib.amp (listed operators cast to bf16, weights kept
    # in float32, no loss scaling on either side); fast where the CPU computes in bf16 (AMX, AVX-512 BF16) only
    "r50-train-bf16": dict(kind="cnn_train", model="resnet50_v1b", batch=16, size=128, amp="bfloat16",
                           title="ResNet-50 v1b training step, bf16 mixed precision (torch.autocast / MXNet contrib.amp), batch 16, 128x128"),
    "r50-fp32": dict(kind="cnn_infer", model="resnet50_v1b", batch=16, size=224, title="ResNet-50 v1b fp32 inference, batch 16, 224x224"),
    "r50-int8": dict(kind="cnn_int8", model="resnet50_v1b", batch=16, size=224, title="ResNet-50 v1b int8 inference, batch 16, 224x224"),
    "r18-train": dict(kind="cnn_train", model="resnet18_v1b", batch=16, size=128, title="ResNet-18 v1b training step, batch 16, 128x128"),
    "r18-fp32": dict(kind="cnn_infer", model="resnet18_v1b", batch=16, size=224, title="ResNet-18 v1b fp32 inference, batch 16, 224x224"),
    "mnv3-train": dict(kind="cnn_train", model="mobilenetv3_large", batch=16, size=128, title="MobileNetV3 large training step, batch 16, 128x128"),
    "mnv3-fp32": dict(kind="cnn_infer", model="mobilenetv3_large", batch=16, size=224, title="MobileNetV3 large fp32 inference, batch 16, 224x224"),
    # "image", not "size": --small keeps it (the anchors of an SSD 512 are laid out for 512x512)
    "ssd-fp32": dict(kind="det_infer", model="ssd_512_mobilenet1.0_voc", batch=2, image=512,
                     title="SSD 512 MobileNet1.0 VOC fp32 inference (with box decoding and NMS), batch 2, 512x512"),
    "bert-fp32": dict(kind="bert_infer", batch=8, seq=128, title="BERT-base (bert_12_768_12) classification fp32 inference, batch 8, seq 128"),
    "bert-int8": dict(kind="bert_int8", batch=8, seq=128, title="BERT-base classification int8 inference, batch 8, seq 128"),
    "bert-train": dict(kind="bert_train", batch=8, seq=128, title="BERT-base classification fine-tuning step (Adam), batch 8, seq 128"),
    # MXNet 1.9.1's AMP fails on GluonNLP's BERT (interleaved_matmul_selfatt_valatt: inconsistent types): compare
    # ours with the bert-train row's MXNet fp32 step
    "bert-train-bf16": dict(kind="bert_train", batch=8, seq=128, amp="bfloat16",
                            title="BERT-base fine-tuning step (Adam), bf16 mixed precision (torch.autocast / MXNet contrib.amp), batch 8, seq 128"),
    "lstm-lm-train": dict(kind="lm_train", model="standard_lstm_lm_200", batch=32, buckets=(20, 35, 50), vocab=33278,
                          title="standard_lstm_lm_200 bucketed training step (lengths 20/35/50 in turn), batch 32"),
}
SMALL = {"batch": 2, "size": 64, "seq": 32}
BERT_VOCAB = 30522


#: what our processes report beside the step times: the arithmetic of a step and the matrix product's rate
ARITHMETIC = ("flops", "gemm GFLOP/s")


def _small(cfg: dict) -> dict:
    cfg = dict(cfg)
    for k, v in SMALL.items():
        if k in cfg:
            cfg[k] = v
    if "buckets" in cfg:
        cfg["buckets"] = (8, 12)
    return cfg


# ---------------------------------------------------------------------------------------- MXNet side
def _mx_child(cfg: dict, warmup: int, steps: int) -> dict[str, float]:
    import mxnet as mx
    from mxnet import autograd, gluon, nd

    mx.random.seed(0)
    ctx = mx.cpu()
    kind = cfg["kind"]
    static = dict(static_alloc=True, static_shape=True)

    if cfg.get("amp"):
        from mxnet.contrib import amp

        amp.init(target_dtype=cfg["amp"])  # before the model is built: it patches the operators

    if kind.startswith("cnn"):
        from gluoncv.model_zoo import get_model

        net = get_model(cfg["model"], pretrained=False, classes=1000)
        net.initialize(mx.init.Xavier(), ctx=ctx)
        b, s = cfg["batch"], cfg["size"]
        x = nd.random.uniform(shape=(b, 3, s, s))
        if kind == "cnn_train":
            net.hybridize(**static)
            y = nd.array(list(range(b)))
            loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
            trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 1e-3, "momentum": 0.9})

            def step():
                with autograd.record():
                    loss = loss_fn(net(x), y)
                loss.backward()
                trainer.step(b)
                nd.waitall()
            return {"hybridized": median_step_s(step, warmup, steps)}
        if kind == "cnn_int8":
            from mxnet.contrib.quantization import quantize_net

            net.hybridize()
            # (data, label) pairs: MXNet's calibration iterator takes the last of two arrays for a label
            calib = gluon.data.DataLoader(gluon.data.ArrayDataset(nd.random.uniform(shape=(b, 3, s, s)), nd.zeros(b)),
                                          batch_size=b)
            net = quantize_net(net, quantized_dtype="auto", calib_data=calib, calib_mode="naive",
                               num_calib_examples=b, ctx=ctx)
        net.hybridize(**static)
        return {"hybridized": median_step_s(lambda: net(x).wait_to_read(), warmup, steps)}

    if kind == "det_infer":
        from gluoncv.model_zoo import get_model

        net = get_model(cfg["model"], pretrained=False, pretrained_base=False)
        net.initialize(ctx=ctx)  # MXNet's default initializer: Xavier refuses the 1-d BN parameters of its head
        net.hybridize(**static)
        x = nd.random.uniform(shape=(cfg["batch"], 3, cfg["image"], cfg["image"]))

        def infer():
            net(x)
            nd.waitall()
        return {"hybridized": median_step_s(infer, warmup, steps)}

    if kind.startswith("bert"):
        import gluonnlp

        # random weights; the vocabulary only sets the embedding size (no download)
        vocab = gluonnlp.vocab.BERTVocab({f"w{i}": 1 for i in range(BERT_VOCAB - 5)})
        bert, _ = gluonnlp.model.get_model("bert_12_768_12", vocab=vocab, pretrained=False, use_pooler=True,
                                           use_decoder=False, use_classifier=False)
        net = gluonnlp.model.BERTClassifier(bert, num_classes=2, dropout=0.1)
        net.initialize(mx.init.Normal(0.02), ctx=ctx)
        b, L = cfg["batch"], cfg["seq"]
        ids = nd.random.randint(1, len(vocab), shape=(b, L)).astype("float32")
        types = nd.zeros((b, L))
        valid = nd.array([L] * (b - 1) + [L - 2])
        if kind == "bert_train":
            net.hybridize(**static)
            y = nd.array([i % 2 for i in range(b)])
            loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
            trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 2e-5})

            def step():
                with autograd.record():
                    loss = loss_fn(net(ids, types, valid), y)
                loss.backward()
                trainer.step(b)
                nd.waitall()
            return {"hybridized": median_step_s(step, warmup, steps)}
        if kind == "bert_int8":
            from mxnet.contrib.quantization import quantize_net

            net.hybridize()
            calib = gluon.data.DataLoader(gluon.data.ArrayDataset(ids, types, valid), batch_size=b)
            # int8 (signed) activations, and the attention matmuls in float: with "auto" or with them
            # quantized MXNet 1.9.1 rejects its own graph ("Type inconsistent, Provided = uint8,
            # inferred type = int8"); every dense layer is int8
            net = quantize_net(net, quantized_dtype="int8", calib_data=calib, calib_mode="naive",
                               num_calib_examples=b, ctx=ctx, exclude_layers_match=["interleaved_matmul"])
        net.hybridize(**static)
        return {"hybridized": median_step_s(lambda: net(ids, types, valid).wait_to_read(), warmup, steps)}

    if kind == "lm_train":
        import gluonnlp

        vocab = gluonnlp.Vocab({f"w{i}": 1 for i in range(cfg["vocab"] - 4)})
        net, _ = gluonnlp.model.get_model(cfg["model"], vocab=vocab, pretrained=False)
        net.initialize(mx.init.Xavier(), ctx=ctx)
        # GluonNLP 0.10's StandardRNN calls nd.Dropout in its own forward, so the block as a whole
        # cannot be hybridized: its embedding, LSTM encoder and decoder are (static_alloc only:
        # shapes change with the bucket)
        for child in net._children.values():
            child.hybridize(static_alloc=True)
        b = cfg["batch"]
        loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
        trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 1.0})
        batches = [(nd.random.randint(0, len(vocab), shape=(L, b)).astype("float32"),
                    nd.random.randint(0, len(vocab), shape=(L, b)).astype("float32")) for L in cfg["buckets"]]
        state = {"i": 0}

        def step():
            data, target = batches[state["i"] % len(batches)]
            state["i"] += 1
            hidden = net.begin_state(batch_size=b, func=nd.zeros, ctx=ctx)
            with autograd.record():
                out, _ = net(data, hidden)
                loss = loss_fn(out.reshape((-3, -1)), target.reshape((-1,))).mean()
            loss.backward()
            grads = [p.grad(ctx) for p in net.collect_params().values() if p.grad_req != "null"]
            gluon.utils.clip_global_norm(grads, 0.25)
            trainer.step(1)
            nd.waitall()
        return {"hybridized": median_step_s(step, warmup * len(batches), steps * len(batches))}
    raise ValueError(kind)


# ------------------------------------------------------------------------------------- toolkit side
def _calibration_folder(folder: Path, count: int, size: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def _ours_child(cfg: dict, warmup: int, steps: int, threads: int, frozen: Sequence[str] = (),
                compile_train: bool = False) -> dict[str, float]:
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from toolkit.zoo import get_model

    torch.manual_seed(0)
    kind = cfg["kind"]
    out: dict[str, float] = {}
    amp = getattr(torch, cfg["amp"]) if cfg.get("amp") else None  # training rows' torch.autocast dtype

    def timed_variants(build, make_step, inference: bool = False, calls: int = 1):
        # calls: step calls per warm-up/timed step (the bucketed LM cycles through its buckets)
        # --frozen: inference rows also time hybridize(<backend>=True), the frozen-weight candidate in the race
        variants = [("hybridized", {})] + [(f"hybridized+{name}", {name: True}) for name in (frozen if inference else ())]
        if compile_train and not inference:  # --compile: the captured training graph through torch.compile (Inductor)
            variants.append(("hybridized+compile", {"compile": True}))
        # every variant built, then timed call by call in turns (a fixed order once put the variant
        # timed first in a process behind: BERT's graph "slower than eager" in one quiet run)
        models, fns = {}, {}
        for label, options in variants + [("eager", None)]:
            m = build()
            if options is not None:
                m.hybridize(**options)
            models[label], fns[label] = m, make_step(m)
        out.update(interleaved_medians(fns, warmup * calls, steps * calls))
        # the arithmetic of one call (matrix products and convolutions, backward included), to set each
        # side's rate beside what this CPU's fp32 matrix product reaches (see "arithmetic" under the table)
        counter = FlopCounterMode(display=False)
        with counter:
            fns["eager"]()
        out["flops"] = float(counter.get_total_flops())
        out["gemm GFLOP/s"] = matmul_gflops()
        for label, options in variants:  # what hybridize() ran: a graph's layout, "eager" or a frozen backend
            out[f"{label} path"] = models[label].graph_memory_format
            # the capture-time race's medians, to set beside the steady-state times above
            race = models[label].race_times
            if race:
                out[f"{label} race"] = " ".join(f"{k} {v:.3f}" for k, v in race.items())

    if kind in ("cnn_train", "cnn_infer"):
        b, s = cfg["batch"], cfg["size"]
        x, y = torch.randn(b, 3, s, s), torch.arange(b) % 1000

        def make_step(m):
            if kind == "cnn_infer":
                m.eval()

                def infer():
                    with torch.no_grad():
                        m(x)
                return infer
            m.train()
            opt = torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9, fused=True)  # as scripts.common.fused_options

            def train():
                opt.zero_grad(set_to_none=True)
                with torch.autocast("cpu", dtype=amp, enabled=amp is not None):
                    out = m(x)
                F.cross_entropy(out.float(), y).backward()
                opt.step()
            return train
        timed_variants(lambda: get_model(cfg["model"], classes=1000), make_step, inference=kind == "cnn_infer")
        return out

    if kind == "det_infer":
        x = torch.randn(cfg["batch"], 3, cfg["image"], cfg["image"])

        def make_det_step(m):
            m.eval()

            def infer():
                with torch.no_grad():
                    m(x)
            return infer
        timed_variants(lambda: get_model(cfg["model"], pretrained=False, pretrained_base=False), make_det_step,
                       inference=True)
        return out

    if kind == "cnn_int8":
        from toolkit.deploy import load
        from toolkit.deploy.openvino import load_openvino
        from toolkit.deploy.quantize import quantize

        b, s = cfg["batch"], cfg["size"]
        net = get_model(cfg["model"], classes=1000).eval()
        net.metadata["input_shape"] = [3, s, s]
        if s != 224:  # --small: calibration images go through the metadata's preprocessing
            net.metadata["preprocessing"] = dict(net.metadata["preprocessing"], resize=s, crop=[s, s])
        with tempfile.TemporaryDirectory() as d:
            prefix = Path(d) / "model"
            net.export(str(prefix), example_inputs=(torch.randn(2, 3, s, s),))
            (Path(d) / "calib").mkdir()
            _calibration_folder(Path(d) / "calib", b, s)
            quantize(prefix, calib=str(Path(d) / "calib"), num_calib_batches=1, batch_size=b,
                     num_threads=threads, latency_repeats=1)
            x = torch.randn(b, 3, s, s).numpy()
            ort = load(f"{prefix}-int8", num_threads=threads)
            out["int8 onnxruntime"] = median_step_s(lambda: ort(x), warmup, steps)
            ov = load_openvino(f"{prefix}-int8", num_threads=threads)
            out["int8 OpenVINO"] = median_step_s(lambda: ov(x), warmup, steps)
        return out

    if kind.startswith("bert"):
        b, L = cfg["batch"], cfg["seq"]
        ids = torch.randint(1, BERT_VOCAB, (b, L))
        types = torch.zeros_like(ids)
        mask = torch.ones_like(ids)
        mask[-1, L - 2:] = 0

        def build():
            return get_model("bert_12_768_12", head="classification", num_classes=2)

        if kind == "bert_int8":
            from toolkit.deploy import load
            from toolkit.deploy.quantize import quantize

            net = build().eval()
            with tempfile.TemporaryDirectory() as d:
                prefix = Path(d) / "bert"
                net.export(str(prefix), example_inputs=(ids[:2, :16], types[:2, :16], mask[:2, :16]))
                feed = (ids.numpy(), types.numpy(), mask.numpy())
                # as shipped (dynamic int8, weight range for this CPU), then with the float ops between
                # the int8 MatMuls fused (text_fusion: BiasGelu, SkipLayerNormalization)
                for label, kw in (("int8 onnxruntime", {}), ("int8 onnxruntime fused", {"text_fusion": True})):
                    quantize(prefix, dynamic=True, num_threads=threads, latency_repeats=1, out=f"{prefix}-q", **kw)
                    ort = load(f"{prefix}-q", num_threads=threads)
                    out[label] = median_step_s(lambda: ort(*feed), warmup, steps)
                    del ort
            return out

        def make_step(m):
            if kind == "bert_infer":
                m.eval()

                def infer():
                    with torch.no_grad():
                        m(ids, types, mask)
                return infer
            m.train()
            opt = torch.optim.AdamW(m.parameters(), lr=2e-5, fused=True)  # as the BERT scripts' optimizer
            y = torch.arange(b) % 2

            def train():
                opt.zero_grad(set_to_none=True)
                with torch.autocast("cpu", dtype=amp, enabled=amp is not None):
                    out = m(ids, types, mask)
                F.cross_entropy(out.float(), y).backward()
                opt.step()
            return train
        timed_variants(build, make_step, inference=kind == "bert_infer")
        return out

    if kind == "lm_train":
        b, V = cfg["batch"], cfg["vocab"]
        batches = [(torch.randint(0, V, (b, L)), torch.randint(0, V, (b, L))) for L in cfg["buckets"]]

        def make_step(m):
            m.train()
            opt = torch.optim.SGD(m.parameters(), lr=1.0, fused=True)
            state = {"i": 0}

            def train():
                data, target = batches[state["i"] % len(batches)]
                state["i"] += 1
                opt.zero_grad(set_to_none=True)
                # zero states passed in, as the MXNet side does with begin_state
                logits, _ = m(data, m.begin_state(b))
                F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1)).backward()
                torch.nn.utils.clip_grad_norm_(m.parameters(), 0.25)
                opt.step()
            return train
        # the hybridized path reported is that of the last bucket's call
        timed_variants(lambda: get_model(cfg["model"], vocab_size=V), make_step, calls=len(batches))
        return out
    raise ValueError(kind)


# ------------------------------------------------------------------------------------------- driver
def _run_side(side: str, row: str, args) -> dict[str, float] | str:
    python = str(args.peer_python) if side == "mxnet" else sys.executable
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
               # steady state: tune in the first (warm-up) call, not lazily over the timed ones
               TOOLKIT_AUTOTUNE_LAZY=os.environ.get("TOOLKIT_AUTOTUNE_LAZY", "0"))
    if side == "mxnet":
        env.pop("PYTHONPATH", None)  # nothing of ours in the peer's interpreter
        env["MXNET_SUBGRAPH_VERBOSE"] = "0"
    else:
        env["PYTHONPATH"] = str(REPO)
    cmd = [python, str(Path(__file__).resolve()), "--child", side, "--rows", row, "--threads", str(args.threads),
           "--warmup", str(args.warmup), "--steps", str(args.steps), "--frozen", args.frozen] + (["--small"] if args.small else []) + (["--compile"] if args.compile else [])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"failed: {tail[:200]}"
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {list(ROWS)}")
    p.add_argument("--rounds", type=int, default=3, help="alternating process pairs per row")
    p.add_argument("--steps", type=int, default=5, help="timed steps per process (median)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--small", action="store_true", help="tiny batches and inputs: a smoke run, not the benchmark")
    p.add_argument("--peer-python", type=Path, default=DEFAULT_PEER, help="the MXNet venv's python")
    p.add_argument("--frozen", default="", help="comma-separated frozen-weight backends (inductor, openvino): inference "
                   "rows also time hybridize(<backend>=True), labelled hybridized+<backend>")
    p.add_argument("--compile", action="store_true", help="training rows also time hybridize(compile=True) "
                   "(Inductor over the captured graph, forward and backward), labelled hybridized+compile")
    p.add_argument("--child", choices=("mxnet", "ours"), help=argparse.SUPPRESS)
    args = p.parse_args()
    rows = args.rows.split(",")
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        p.error(f"unknown rows {unknown}; choose from {list(ROWS)}")

    if args.child:
        cfg = _small(ROWS[rows[0]]) if args.small else ROWS[rows[0]]
        if args.child == "mxnet":
            res = _mx_child(cfg, args.warmup, args.steps)
        else:
            import torch

            torch.set_num_threads(args.threads)
            res = _ours_child(cfg, args.warmup, args.steps, args.threads, [f for f in args.frozen.split(",") if f],
                              compile_train=args.compile)
        print("RESULT " + json.dumps(res), flush=True)
        return

    if not args.peer_python.exists():
        p.error(f"no MXNet peer environment at {args.peer_python}: run benchmarks/peer/setup_mxnet_venv.sh")
    # each package on its own: a peer without gluonnlp still runs the vision rows
    # the installed distributions' versions: gluoncv 0.10.5.post0's own __version__ says 0.11.0
    probe = ("import importlib, importlib.metadata as md\nfor name in ('mxnet', 'gluoncv', 'gluonnlp'):\n    try:\n"
             "        importlib.import_module(name); print(md.version(name))\n    except Exception:\n        print('missing')")
    versions = subprocess.run([str(args.peer_python), "-c", probe], capture_output=True, text=True).stdout.split()
    import torch

    model, isa = cpu()
    print(f"vs MXNet: CPU {model}, ISA {' '.join(isa) or '-'}, {os.cpu_count()} cores, {args.threads} threads per side; "
          f"torch {torch.__version__}; mxnet {' / gluoncv '.join(versions[:2]) if versions else '?'} / gluonnlp "
          f"{versions[2] if len(versions) > 2 else '?'}; load average at start {load_text()}")
    print(f"median of {args.steps} steps after {args.warmup} warm-up per process, {args.rounds} alternating rounds"
          + ("; SMOKE RUN (--small shapes): not a benchmark" if args.small else ""))
    print("| row | MXNet/GluonCV s | ours s | MXNet time / ours |\n|---|---|---|---|", flush=True)
    races: list[str] = []  # printed under the table: each round's capture-time race medians
    rates_lines: list[str] = []  # and each row's arithmetic rates
    for row in rows:
        runs: dict[str, list] = {"mxnet": [], "ours": []}
        for r in range(args.rounds):
            for side in (("mxnet", "ours") if r % 2 == 0 else ("ours", "mxnet")):
                runs[side].append(_run_side(side, row, args))
        cfg = _small(ROWS[row]) if args.small else ROWS[row]
        title = ROWS[row]["title"] + (" [SMOKE: " + ", ".join(f"{k} {cfg[k]}" for k in ("batch", "size", "seq", "buckets")
                                                               if k in cfg) + "]" if args.small else "")

        def summary(results: list) -> tuple[dict[str, float], str]:
            good = [x for x in results if isinstance(x, dict)]
            errors = [x for x in results if isinstance(x, str)]
            if not good:
                return {}, errors[0] if errors else "not run"
            return {k: statistics.median(g[k] for g in good if k in g) for k in good[0]
                    if not isinstance(good[0][k], str)}, ""

        mx_res, mx_err = summary(runs["mxnet"])
        ours_res, ours_err = summary(runs["ours"])
        def per_round(label: str, what: str) -> list[str]:  # a variant's "path" or "race" text, round by round
            return [str(r[f"{label} {what}"]) for r in runs["ours"] if isinstance(r, dict) and f"{label} {what}" in r]

        # the path each hybridized variant took in each round (a graph layout, eager or a frozen backend),
        # e.g. "hybridized: eager/as_given"
        def paths(label: str) -> str:
            taken = "/".join(per_round(label, "path"))
            return f": {taken}" if taken else ""

        arithmetic = {k: ours_res.pop(k) for k in ARITHMETIC if k in ours_res}
        mx_t = mx_res.get("hybridized")
        mx_text = f"{mx_t:.3f}" if mx_t is not None else mx_err
        ours_text = ", ".join(f"{v:.3f} ({k}{paths(k)})" for k, v in ours_res.items()) or ours_err
        ratio = ", ".join(f"{mx_t / v:.2f}x ({k})" for k, v in ours_res.items()) if mx_t and ours_res else "-"
        print(f"| {title} | {mx_text} | {ours_text} | {ratio} |", flush=True)
        if arithmetic.get("flops"):
            flops, gemm = arithmetic["flops"], arithmetic["gemm GFLOP/s"]
            rates = ([("MXNet", mx_t)] if mx_t else []) + list(ours_res.items())
            rate_text = ", ".join(f"{label} {flops / t / 1e9:.0f} ({100 * flops / t / 1e9 / gemm:.0f}%)" for label, t in rates)
            lines = [f"{title}: {flops / 1e9:.1f} GFLOP per step; GFLOP/s (% of the matrix product) "
                     f"{rate_text}; fp32 2048x2048 matrix product {gemm:.0f} GFLOP/s"]
            if mx_t:  # the targets: training steps 1.2x MXNet, fp32 inference 1.3x
                goal = 1.2 if "train" in cfg["kind"] else 1.3
                lines.append(f"  {goal}x MXNet would take {mx_t / goal:.3f} s: "
                             f"{100 * flops / (mx_t / goal) / 1e9 / gemm:.0f}% of the matrix product's rate")
            rates_lines.extend(lines)
        for label in ours_res:
            medians = per_round(label, "race")
            if medians:
                races.append(f"{ROWS[row]['title']}, {label}: " + "; ".join(medians))
    if rates_lines:
        print("arithmetic (torch.utils.flop_counter on our eager step: matrix products and convolutions, backward "
              "included; both sides run the same layers) per step time above, beside this CPU's fp32 matrix product "
              "on the same threads (measured in our processes):")
        print("\n".join(f"  {line}" for line in rates_lines))
    if races:
        print("capture-time race medians (s) per round, beside the steady-state times above:")
        print("\n".join(f"  {line}" for line in races))
    print(f"load average at end {load_text()}")


if __name__ == "__main__":
    main()
