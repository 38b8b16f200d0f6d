"""Bucketing vs random batching on the English Bible, and Pad vs pad_sequence.

Part 1: on the English side of the aligned Bible corpus (whitespace/punctuation
tokens, :func:`toolkit.nlp.datasets.bible.tokenize`), the fraction of padding
tokens and the number of batches per epoch for :class:`FixedBucketSampler`
settings versus random batching at the same batch size.

Part 2: collate time of :class:`toolkit.data.Pad` versus
``torch.nn.utils.rnn.pad_sequence`` on the same batches (one epoch of random
batches), for tensor, numpy and python-list samples. Repetitions alternate
A/B (order flipped every repetition); medians are reported, and the ratio
Pad / pad_sequence (< 1 means Pad is faster). For numpy and list samples the
pad_sequence side includes the conversion to tensors it needs.

Usage::

    PYTHONPATH=. python benchmarks/bucketing.py [--root DIR] [--batch-size 32] [--reps 7]
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: no spinning threads on a shared box

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.nn.utils.rnn import pad_sequence  # noqa: E402

from toolkit.data import ExpWidthBucket, FixedBucketSampler, LinearWidthBucket, Pad, SortedBucketSampler  # noqa: E402
from toolkit.nlp.datasets.bible import load_bible_pairs, tokenize  # noqa: E402


def padding_stats(batches: list[list[int]], lengths: np.ndarray) -> tuple[float, int, float]:
    """(padding fraction, number of batches, mean batch size)."""
    real = padded = 0
    for b in batches:
        ls = lengths[b]
        real += int(ls.sum())
        padded += int(ls.max()) * len(b)
    return 1 - real / padded, len(batches), float(np.mean([len(b) for b in batches]))


def random_batches(n: int, batch_size: int, seed: int = 0) -> list[list[int]]:
    perm = np.random.default_rng(seed).permutation(n).tolist()
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


def time_ab(fn_a, fn_b, reps: int) -> tuple[float, float]:
    """Interleaved repetitions, order alternating; medians in seconds."""
    ta, tb = [], []
    fn_a(), fn_b()  # warm-up
    for r in range(reps):
        for name in (("a", "b") if r % 2 == 0 else ("b", "a")):
            fn = fn_a if name == "a" else fn_b
            t0 = time.perf_counter()
            fn()
            (ta if name == "a" else tb).append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=None, help="dataset root (default: $TOOLKIT_DATA or ~/.toolkit/datasets)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(1)  # padding is a copy; one thread keeps timings stable on 2 shared cores

    pairs = load_bible_pairs(root=args.root)
    tokens = [tokenize(p.en) for p in pairs]
    lengths = np.array([max(len(t), 1) for t in tokens])
    bs = args.batch_size
    print(f"English Bible: {len(lengths)} verses, {int(lengths.sum())} tokens, length mean "
          f"{lengths.mean():.1f} / median {int(np.median(lengths))} / max {lengths.max()}; batch size {bs}")
    print(f"torch {torch.__version__}, numpy {np.__version__}, threads {torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}\n")

    budget = int(round(bs * lengths.mean()))
    settings: list[tuple[str, list[list[int]]]] = [("random batching", random_batches(len(lengths), bs))]
    for nb in (5, 10, 20):
        for ratio in (0.0, 0.5):
            s = FixedBucketSampler(lengths, bs, num_buckets=nb, ratio=ratio)
            settings.append((f"FixedBucket nb={nb} ratio={ratio}", list(s)))
    settings.append(("FixedBucket nb=10 Linear", list(FixedBucketSampler(lengths, bs, bucket_scheme=LinearWidthBucket()))))
    settings.append(("FixedBucket nb=10 Exp(1.1)", list(FixedBucketSampler(lengths, bs, bucket_scheme=ExpWidthBucket()))))
    for nb in (10, 20):
        s = FixedBucketSampler(lengths, budget, num_buckets=nb, use_average_length=True)
        settings.append((f"FixedBucket nb={nb} tokens<={budget}", list(s)))
    settings.append(("SortedBucket mult=100", list(SortedBucketSampler(lengths, bs, shuffle=True, seed=0))))

    base_pad, base_n, _ = padding_stats(settings[0][1], lengths)
    print(f"{'setting':34s} {'pad frac':>9s} {'vs random':>9s} {'batches':>8s} {'vs random':>9s} {'mean bs':>8s}")
    for name, batches in settings:
        frac, n, mean_bs = padding_stats(batches, lengths)
        print(f"{name:34s} {frac:9.3f} {frac / base_pad:9.2f} {n:8d} {n / base_n:9.2f} {mean_bs:8.1f}")

    # -- collate throughput on the same batches
    rng = np.random.default_rng(0)
    ids_np = [rng.integers(4, 30000, size=int(n), dtype=np.int64) for n in lengths]
    ids_pt = [torch.from_numpy(a) for a in ids_np]
    ids_py = [a.tolist() for a in ids_np]
    pad = Pad(val=0)
    print(f"\nCollate one epoch, {args.reps} interleaved reps, medians (ms); ratio = Pad / pad_sequence")
    print(f"{'batches':28s} {'input':8s} {'Pad':>9s} {'pad_seq':>9s} {'ratio':>7s}")
    for label, batches in (("random bs=32", settings[0][1]), ("FixedBucket nb=10 ratio=0", settings[3][1])):
        samples = {
            "tensor": ([[ids_pt[i] for i in b] for b in batches], lambda xs: pad_sequence(xs, batch_first=True)),
            "numpy": ([[ids_np[i] for i in b] for b in batches],
                      lambda xs: pad_sequence([torch.from_numpy(x) for x in xs], batch_first=True)),
            "list": ([[ids_py[i] for i in b] for b in batches],
                     lambda xs: pad_sequence([torch.tensor(x, dtype=torch.int64) for x in xs], batch_first=True)),
        }
        for kind, (data, ref) in samples.items():
            for b in data[:20]:  # same result before timing anything
                assert torch.equal(pad(b), ref(b))
            ta, tb = time_ab(lambda: [pad(b) for b in data], lambda: [ref(b) for b in data], args.reps)
            print(f"{label:28s} {kind:8s} {ta * 1e3:9.1f} {tb * 1e3:9.1f} {ta / tb:7.2f}")


if __name__ == "__main__":
    main()
