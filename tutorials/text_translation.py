"""Translate English to Spanish with a small Transformer trained on the Bible.

The steps of a translation model, with the toolkit's pieces:

1. the parallel corpus (``toolkit.nlp.datasets.bible``: World English Bible and
   Reina-Valera 1909 verses, exported by ``diatheke`` from the Debian packages
   ``sword-text-web`` / ``sword-text-sparv``, split by chapter);
2. a joint SentencePiece vocabulary (``toolkit.nlp.tokenizers.train_sentencepiece``);
3. batches with a token budget from ``toolkit.data.FixedBucketSampler``
   (``use_average_length=True``): sentences of similar length go together, so
   little of each batch is padding (``sampler.stats()`` shows the buckets);
4. a zoo Transformer (shared embeddings, label-smoothed loss, inverse-sqrt warmup);
5. beam search over the model's incremental decoder
   (``toolkit.nlp.decoding.BeamSearchSampler``) and corpus BLEU (sacrebleu).

Run from the repository root::

    python tutorials/text_translation.py            # 2 epochs of transformer_tiny (about an hour on a shared CPU)
    python tutorials/text_translation.py --tiny     # a few hundred verses, seconds (what the tests run)

The full recipe, with logging, checkpoints, resume and torchrun, is
``scripts/machine_translation/train_transformer.py``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from toolkit.data import ExpWidthBucket, FixedBucketSampler, Pad  # noqa: E402
from toolkit.nlp.datasets.bible import load_bible_pairs  # noqa: E402
from toolkit.nlp.decoding import BeamSearchSampler, BeamSearchScorer  # noqa: E402
from toolkit.nlp.metrics import bleu  # noqa: E402
from toolkit.nlp.tokenizers import train_sentencepiece  # noqa: E402
from toolkit.zoo import get_model  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="a few hundred verses and a few steps")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--workdir", default=None)
    args = p.parse_args(argv)
    torch.manual_seed(0)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="translation-"))

    # 1. Data: (reference, English, Spanish) verses; splits never share a chapter.
    train, test = load_bible_pairs("train"), load_bible_pairs("test")
    if args.tiny:
        train, test = train[:300], test[:8]
    print(f"{len(train)} training verses, {len(test)} test verses; e.g. {train[0].en!r} -> {train[0].es!r}")

    # 2. One SentencePiece model for both languages, so the embeddings can be shared.
    tok = train_sentencepiece([v.en for v in train] + [v.es for v in train], vocab_size=500 if args.tiny else 8000,
                              hard_vocab_limit=False)
    tok.save(workdir / "tokenizer")
    vocab = tok.vocab
    pad_id, bos_id, eos_id = vocab.pad_id, vocab.bos_id, vocab.eos_id
    src = [ids[:99] + [eos_id] for ids in tok.encode([v.en for v in train])]
    tgt = [ids[:99] + [eos_id] for ids in tok.encode([v.es for v in train])]
    print("pieces:", tok.encode(train[0].en, output_type=str)[:12])

    # 3. Token-budget buckets over (source length, target length).
    sampler = FixedBucketSampler(list(zip(map(len, src), map(len, tgt))), batch_size=600 if args.tiny else 2048,
                                 num_buckets=4 if args.tiny else 10, use_average_length=True, shuffle=True,
                                 bucket_scheme=ExpWidthBucket(1.2), seed=0)
    print(sampler.stats())

    # 4. Model and training loop: label smoothing 0.1, Adam, inverse-sqrt warmup.
    model = get_model("transformer_tiny", vocab_size=len(vocab), pad_id=pad_id, bos_id=bos_id, eos_id=eos_id)
    warmup = 20 if args.tiny else 150
    opt = torch.optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
    units = model.cfg.units
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 0.5 * units ** -0.5 * min(max(step, 1) ** -0.5, max(step, 1) * warmup ** -1.5))
    pad = Pad(val=pad_id)
    epochs = 1 if args.tiny else args.epochs
    start = time.time()
    losses = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        model.train()
        for ids in sampler:
            s = pad([src[i] for i in ids])
            t = pad([tgt[i] for i in ids])
            valid = torch.tensor([len(src[i]) for i in ids])
            t_in = torch.cat([torch.full((len(ids), 1), bos_id), t[:, :-1]], dim=1)
            logits = model(s, valid, t_in)
            loss = F.cross_entropy(logits.flatten(0, 1), t.flatten(), ignore_index=pad_id, label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        print(f"epoch {epoch}: mean loss {sum(losses[-len(sampler):]) / len(sampler):.3f} "
              f"({time.time() - start:.0f} s)")

    # 5. Translate the test verses with beam search, score with BLEU.
    model.eval()
    sources = [v.en for v in test]
    enc = [ids[:99] + [eos_id] for ids in tok.encode(sources)]
    searcher = BeamSearchSampler(beam_size=4, decoder=model.decode_step, eos_id=eos_id, max_length=60,
                                 scorer=BeamSearchScorer(alpha=0.6, K=5.0))
    hyps = []
    for i in range(0, len(enc), 32):
        chunk = enc[i: i + 32]
        states = model.init_states(pad(chunk), torch.tensor([len(c) for c in chunk]))
        samples, scores, lengths = searcher(torch.full((len(chunk),), bos_id), states)
        for row in range(len(chunk)):
            n = int(lengths[row, 0])
            hyps.append(tok.decode([t for t in samples[row, 0, 1:n].tolist() if t != eos_id]))
    score = bleu(hyps, [v.es for v in test])
    for v, h in list(zip(test, hyps))[:3]:
        print(f"EN  {v.en}\nES  {v.es}\nMT  {h}\n")
    print(f"BLEU on {len(test)} test verses: {score:.2f}")
    return {"bleu": score, "losses": losses, "translations": hyps}


if __name__ == "__main__":
    main()
