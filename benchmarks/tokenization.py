"""Throughput of the toolkit's tokenizers next to calling ``sentencepiece`` / ``tokenizers`` directly.

Text: the English side of the aligned Bible corpus (:mod:`toolkit.nlp.datasets.bible`)
when it can be loaded, else gensim's Lee background corpus. A SentencePiece
unigram model, a BERT WordPiece vocabulary and a byte-level BPE model are
trained on that text first; then, for every tokenizer, the same sentences
are encoded through our wrapper ("ours") and through the library's own call
("direct"), both to ids:

* batch: one call for all sentences (``encode(list)`` vs ``sp.encode(list)``
  / ``Tokenizer.encode_batch`` + ``.ids``);
* single: one call per sentence, in a Python loop.

Repetitions alternate ours/direct (order flipped every repetition) and the
median times are reported with the ratio ours / direct (1.00 = no overhead).
The ``tokenizers`` thread pool is limited to one thread (``RAYON_NUM_THREADS``)
unless set, so the numbers do not depend on what else runs on a shared machine.

Usage::

    PYTHONPATH=. python benchmarks/tokenization.py [--sentences 4000] [--reps 7]
"""
from __future__ import annotations

import os

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # before tokenizers is imported
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from toolkit.nlp.tokenizers import (
    BertWordPieceTokenizer,
    ByteBPETokenizer,
    train_sentencepiece,
)


def load_text() -> tuple[list[str], str]:
    """English Bible verses, or the Lee corpus when the Bible export is not available."""
    try:
        from toolkit.nlp.datasets.bible import load_bible_pairs
        return [p.en for p in load_bible_pairs()], "English Bible (WEB), all verses"
    except (OSError, ValueError) as e:  # MissingDatasetError (an OSError), or a broken export
        import importlib.util
        spec = importlib.util.find_spec("gensim")
        if spec is None:
            raise SystemExit(f"no text: the Bible is unavailable ({e}) and gensim is not installed")
        path = Path(next(iter(spec.submodule_search_locations))) / "test" / "test_data" / "lee_background.cor"
        with open(path, encoding="latin-1") as f:
            return [line.strip() for line in f if line.strip()], "gensim lee_background.cor"


def train_wordpiece_vocab(lines: list[str], size: int, out: Path) -> Path:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(lines, trainers.WordPieceTrainer(
        vocab_size=size, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False))
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    out.write_text("".join(t + "\n" for t, _ in vocab), encoding="utf-8")
    return out


def time_pair(ours: Callable[[], object], direct: Callable[[], object], reps: int) -> tuple[float, float]:
    """Interleaved repetitions (order flipped each time); median seconds of each."""
    if ours() != direct():
        raise SystemExit("wrapper and direct call disagree: the comparison would be meaningless")
    t_ours, t_direct = [], []
    for r in range(reps):
        for which in ((0, 1) if r % 2 == 0 else (1, 0)):
            fn, sink = (ours, t_ours) if which == 0 else (direct, t_direct)
            t0 = time.perf_counter()
            fn()
            sink.append(time.perf_counter() - t0)
    return statistics.median(t_ours), statistics.median(t_direct)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sentences", type=int, default=4000, help="sentences encoded per repetition")
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--vocab-size", type=int, default=8000)
    args = ap.parse_args()

    lines, source = load_text()
    sample = lines[: args.sentences]
    n_words = sum(len(s.split()) for s in sample)
    print(f"text: {source}; training on {len(lines)} sentences, timing {len(sample)} sentences "
          f"({n_words} words), {args.reps} interleaved repetitions, medians")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spm = train_sentencepiece(lines, vocab_size=args.vocab_size, model_type="unigram")
        bert = BertWordPieceTokenizer.from_vocab_file(train_wordpiece_vocab(lines, args.vocab_size, tmp / "v.txt"))
        bpe = ByteBPETokenizer.train(lines, vocab_size=args.vocab_size)

    sp, hb, hp = spm.processor, bert.backend, bpe.backend
    cases = [
        ("sentencepiece", "batch", lambda: spm.encode(sample), lambda: sp.encode(sample)),
        ("sentencepiece", "single", lambda: [spm.encode(s) for s in sample], lambda: [sp.encode(s) for s in sample]),
        ("bert-wordpiece", "batch", lambda: bert.encode(sample), lambda: [e.ids for e in hb.encode_batch(sample)]),
        ("bert-wordpiece", "single", lambda: [bert.encode(s) for s in sample],
         lambda: [hb.encode(s).ids for s in sample]),
        ("byte-bpe", "batch", lambda: bpe.encode(sample), lambda: [e.ids for e in hp.encode_batch(sample)]),
        ("byte-bpe", "single", lambda: [bpe.encode(s) for s in sample], lambda: [hp.encode(s).ids for s in sample]),
    ]
    print(f"{'tokenizer':<16}{'mode':<8}{'ours ms':>10}{'direct ms':>11}{'ours/direct':>13}{'sent/s (ours)':>15}")
    for name, mode, ours, direct in cases:
        t_o, t_d = time_pair(ours, direct, args.reps)
        print(f"{name:<16}{mode:<8}{t_o * 1e3:>10.1f}{t_d * 1e3:>11.1f}{t_o / t_d:>13.3f}{len(sample) / t_o:>15.0f}")


if __name__ == "__main__":
    main()
