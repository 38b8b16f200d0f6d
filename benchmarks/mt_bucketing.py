#!/usr/bin/env python
"""Token-budget bucketing vs random batching for Transformer MT training.

Both runs train the same small Transformer (``transformer_tiny`` by default)
from the same initial weights on English->Spanish Bible pairs for ``--steps``
updates:

* bucketed: ``toolkit.data.FixedBucketSampler`` with ``use_average_length``
  (``--token-budget`` tokens per batch, exponential bucket widths), shuffled;
* random: sentences in random order, a fixed number per batch equal to the
  bucketed run's mean batch size, so both see about as many sentences per step.

Printed per run: padding fraction (padded positions / all positions, source
and target), real tokens per second of training (forward + backward + Adam),
and the ratios bucketed / random. Words are the Bible module's simple tokens
with a training-set vocabulary (no subword model, to keep setup short).

    python benchmarks/mt_bucketing.py --steps 30 --threads 1
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from toolkit.data import ExpWidthBucket, FixedBucketSampler, Pad  # noqa: E402
from toolkit.nlp import Vocab, count_tokens  # noqa: E402
from toolkit.zoo import get_model  # noqa: E402


def load_pairs(max_pairs: int):
    from toolkit.nlp.datasets.bible import load_bible_pairs, tokenize

    pairs = load_bible_pairs("train")[:max_pairs]
    src = [tokenize(p.en.lower()) for p in pairs]
    tgt = [tokenize(p.es.lower()) for p in pairs]
    vocab = Vocab(count_tokens([w for s in src + tgt for w in s]), min_freq=2, bos_token="<bos>", eos_token="<eos>")
    eos = vocab.eos_id
    data = [(vocab[s][:100] + [eos], vocab[t][:100] + [eos]) for s, t in zip(src, tgt)]
    return data, vocab


def run(model, data, batches, steps: int, vocab) -> dict[str, float]:
    pad = Pad(val=vocab.pad_id)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    real = padded = 0
    model.train()
    # one warm-up step outside the timing
    for i, ids in enumerate(batches[: steps + 1]):
        src = pad([data[j][0] for j in ids])
        tgt = pad([data[j][1] for j in ids])
        valid = torch.tensor([len(data[j][0]) for j in ids])
        tgt_in = torch.cat([torch.full((len(ids), 1), vocab.bos_id), tgt[:, :-1]], 1)
        if i == 1:
            start = time.perf_counter()
        logits = model(src, valid, tgt_in)
        loss = F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=vocab.pad_id)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 1:
            real += int((src != vocab.pad_id).sum() + (tgt != vocab.pad_id).sum())
            padded += src.numel() + tgt.numel()
    elapsed = time.perf_counter() - start
    return {"padding": 1 - real / padded, "tokens_per_s": real / elapsed, "seconds": elapsed,
            "steps": min(steps, len(batches) - 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="transformer_tiny")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--token-budget", type=int, default=2048)
    p.add_argument("--num-buckets", type=int, default=10)
    p.add_argument("--max-pairs", type=int, default=8000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    data, vocab = load_pairs(args.max_pairs)
    lengths = [(len(s), len(t)) for s, t in data]
    sampler = FixedBucketSampler(lengths, batch_size=args.token_budget, num_buckets=args.num_buckets,
                                 use_average_length=True, shuffle=True, bucket_scheme=ExpWidthBucket(1.2),
                                 seed=args.seed)
    bucketed = list(sampler)
    mean_batch = int(round(np.mean([len(b) for b in bucketed])))
    order = np.random.default_rng(args.seed).permutation(len(data))
    random_batches = [order[i: i + mean_batch].tolist() for i in range(0, len(order), mean_batch)]

    torch.manual_seed(args.seed)
    init = get_model(args.model, vocab_size=len(vocab), pad_id=vocab.pad_id, bos_id=vocab.bos_id,
                     eos_id=vocab.eos_id).state_dict()
    results = {}
    for name, batches in (("bucketed", bucketed), ("random", random_batches)):
        model = get_model(args.model, vocab_size=len(vocab), pad_id=vocab.pad_id, bos_id=vocab.bos_id,
                          eos_id=vocab.eos_id)
        model.load_state_dict(init)
        torch.manual_seed(args.seed)
        results[name] = run(model, data, batches, args.steps, vocab)

    print(f"{args.model}, {len(data)} Bible en->es pairs, vocab {len(vocab)}, token budget {args.token_budget}, "
          f"{args.threads} thread(s), {torch.get_num_threads()} torch threads")
    print(f"bucketed: {len(bucketed)} batches, mean {np.mean([len(b) for b in bucketed]):.1f} sentences/batch; "
          f"random: {mean_batch} sentences/batch")
    print(f"{'batching':<10} {'steps':>5} {'padding':>8} {'tokens/s':>9} {'seconds':>8}")
    for name, r in results.items():
        print(f"{name:<10} {r['steps']:>5} {r['padding']:>8.3f} {r['tokens_per_s']:>9.0f} {r['seconds']:>8.1f}")
    b, r = results["bucketed"], results["random"]
    print(f"ratio bucketed/random: padding {b['padding'] / r['padding']:.3f}, "
          f"tokens/s {b['tokens_per_s'] / r['tokens_per_s']:.2f}x")


if __name__ == "__main__":
    main()
