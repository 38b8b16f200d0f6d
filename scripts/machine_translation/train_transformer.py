#!/usr/bin/env python
"""Train and evaluate a Transformer translation model of the zoo.

GluonNLP 0.x's ``train_transformer.py`` recipe on PyTorch: a joint
SentencePiece vocabulary with shared (tied) embeddings, label-smoothed
cross-entropy, Adam with the inverse-square-root warmup schedule of Vaswani
et al., token-budget batches from ``toolkit.data.FixedBucketSampler``
(``use_average_length``), beam search with the GNMT length penalty from
``toolkit.nlp.decoding`` and detokenized corpus BLEU with sacrebleu.

English -> Spanish on the Bible corpus (``toolkit.nlp.datasets.bible``)::

    python scripts/machine_translation/train_transformer.py --model transformer_small \\
        --dataset bible --src-lang en --tgt-lang es --num-epochs 4 --save-dir runs/mt

Any parallel text in ``DIR/{train,dev,test}.{src,tgt}`` (one sentence per line)::

    python scripts/machine_translation/train_transformer.py --dataset files --data-dir DIR ...

Data parallel: ``torchrun --nproc_per_node N scripts/machine_translation/train_transformer.py ...``
(the token budget is per process).

Writes into ``--save-dir``: ``config.json``, ``log.jsonl``, ``train.log``,
``tokenizer/``, ``checkpoint-last.pt`` (exact resume with ``--resume-from``)
and at the end ``<model>.safetensors``, ``weights.sha256``,
``translations.test.txt`` and ``metrics.json`` (``bleu`` on the test split,
``num_params``, ``wall_time_s``, ``hardware``, ``sha256``; dev loss and decoding
settings under ``details``).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.common import (  # noqa: E402
    fused_options,
    cleanup_distributed,
    dump_config,
    finish_run,
    hardware_info,
    parse_args,
    resume_checkpoint,
    save_checkpoint,
    start_run,
)
from toolkit.data import ExpWidthBucket, FixedBucketSampler, Pad  # noqa: E402
from toolkit.nlp.decoding import BeamSearchSampler, BeamSearchScorer  # noqa: E402
from toolkit.zoo import get_model  # noqa: E402

SPLITS = ("train", "dev", "test")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train a Transformer translation model.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a = p.add_argument
    a("--model", default="transformer_small", help="zoo name (transformer_en_de_512, transformer_small, transformer_tiny)")
    a("--dataset", default="bible", choices=("bible", "files"))
    a("--data-dir", default=None, help="folder with {train,dev,test}.{src,tgt} for --dataset files")
    a("--src-lang", default="en")
    a("--tgt-lang", default="es")
    a("--max-train-samples", type=int, default=0, help="use only the first N training pairs (0: all)")
    a("--max-eval-samples", type=int, default=0, help="use only the first N dev/test pairs (0: all)")
    a("--vocab-size", type=int, default=8000, help="joint SentencePiece vocabulary size")
    a("--max-length", type=int, default=128, help="truncate token sequences to this length")
    a("--num-epochs", type=int, default=10)
    a("--stop-after-steps", type=int, default=0, help="stop (with a checkpoint) after this many steps; resume later")
    a("--max-train-minutes", type=float, default=0,
      help="end training after this wall time (mid-epoch if need be), then evaluate; 0: no limit. "
           "The step count then depends on the machine's speed: the log records it")
    a("--batch-size", type=int, default=4096, help="token budget per batch (use_average_length)")
    a("--num-buckets", type=int, default=10)
    a("--bucket-len-step", type=float, default=1.2, help="ExpWidthBucket growth factor")
    a("--lr", type=float, default=1.0, help="scale of the inverse-sqrt schedule")
    a("--warmup-steps", type=int, default=4000)
    a("--label-smoothing", type=float, default=0.1)
    a("--dropout", type=float, default=None, help="override the model's dropout")
    a("--clip", type=float, default=0.0, help="gradient norm clipping (0: off)")
    a("--beam-size", type=int, default=4)
    a("--lp-alpha", type=float, default=0.6)
    a("--lp-k", type=float, default=5.0)
    a("--tgt-max-len-a", type=float, default=1.2, help="decode at most a * src_len + b tokens")
    a("--tgt-max-len-b", type=int, default=10)
    a("--eval-batch-size", type=int, default=64, help="sentences per batch when translating")
    a("--log-interval", type=int, default=50)
    a("--save-dir", default="runs/transformer")
    a("--resume-from", default=None, help="checkpoint to continue from (exactly)")
    a("--seed", type=int, default=100)
    a("--num-threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    a("--hybridize", action="store_true", help="run evaluation forward passes as a captured graph")
    return p


# --------------------------------------------------------------------------- data
def load_corpus(args) -> dict[str, tuple[list[str], list[str]]]:
    corpus: dict[str, tuple[list[str], list[str]]] = {}
    if args.dataset == "bible":
        from toolkit.nlp.datasets.bible import load_bible_pairs

        for split in SPLITS:
            pairs = load_bible_pairs(split)
            corpus[split] = ([getattr(p, args.src_lang) for p in pairs], [getattr(p, args.tgt_lang) for p in pairs])
    else:
        if not args.data_dir:
            raise SystemExit("--dataset files needs --data-dir")
        root = Path(args.data_dir)
        for split in SPLITS:
            files = [root / f"{split}.src", root / f"{split}.tgt"]
            missing = [str(f) for f in files if not f.is_file()]
            if missing:
                raise SystemExit(f"missing parallel text files: {missing}")
            src, tgt = (f.read_text(encoding="utf-8").splitlines() for f in files)
            if len(src) != len(tgt):
                raise SystemExit(f"{files[0]} has {len(src)} lines but {files[1]} has {len(tgt)}")
            corpus[split] = (src, tgt)
    limits = {"train": args.max_train_samples, "dev": args.max_eval_samples, "test": args.max_eval_samples}
    for split, limit in limits.items():
        if limit:
            corpus[split] = (corpus[split][0][:limit], corpus[split][1][:limit])
        if not corpus[split][0]:
            raise SystemExit(f"the {split} split is empty")
    return corpus


def build_tokenizer(args, corpus, save_dir: Path, is_main: bool):
    from toolkit.nlp.tokenizers import SentencepieceTokenizer, train_sentencepiece

    tok_dir = save_dir / "tokenizer"
    if not tok_dir.is_dir():  # a resumed run reuses the saved tokenizer
        if is_main:
            src, tgt = corpus["train"]
            tok = train_sentencepiece(src + tgt, vocab_size=args.vocab_size, model_type="unigram",
                                      character_coverage=1.0, pad_piece="<pad>", bos_piece="<s>", eos_piece="</s>",
                                      hard_vocab_limit=False)  # tiny corpora get a smaller vocabulary
            tok.save(tok_dir)
        from scripts.common import barrier

        barrier()
    return SentencepieceTokenizer.load(tok_dir)


def encode_pairs(tok, src: list[str], tgt: list[str], max_length: int) -> list[tuple[list[int], list[int]]]:
    eos = tok.vocab.eos_id
    src_ids = tok.encode(src)
    tgt_ids = tok.encode(tgt)
    # Source: tokens + eos; target: tokens + eos (bos is prepended to form the decoder input).
    return [(s[: max_length - 1] + [eos], t[: max_length - 1] + [eos]) for s, t in zip(src_ids, tgt_ids)]


def make_batch(pairs, ids, pad_id: int, bos_id: int):
    src = [pairs[i][0] for i in ids]
    tgt = [pairs[i][1] for i in ids]
    pad = Pad(val=pad_id)
    src_ids = pad(src)
    valid = torch.tensor([len(s) for s in src], dtype=torch.long)
    labels = pad(tgt)
    tgt_in = torch.cat([torch.full((len(ids), 1), bos_id, dtype=torch.long), labels[:, :-1]], dim=1)
    return src_ids, valid, tgt_in, labels


def inverse_sqrt(units: int, warmup: int):
    def factor(step: int) -> float:
        step = max(step, 1)
        return units ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)

    return factor


def seq_loss(logits, labels, pad_id: int, label_smoothing: float) -> tuple[torch.Tensor, int]:
    num = int((labels != pad_id).sum())
    loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=pad_id,
                           label_smoothing=label_smoothing, reduction="sum")
    return loss, num


@torch.no_grad()
def evaluate_loss(model, pairs, args, pad_id: int, bos_id: int) -> float:
    """Mean per-token negative log-likelihood (no label smoothing)."""
    was = model.training
    model.eval()
    if args.hybridize:
        model.hybridize()
    sampler = FixedBucketSampler([(len(s), len(t)) for s, t in pairs], batch_size=args.batch_size,
                                 num_buckets=args.num_buckets, use_average_length=True, shuffle=False)
    total, count = 0.0, 0
    for ids in sampler:
        src, valid, tgt_in, labels = make_batch(pairs, ids, pad_id, bos_id)
        loss, num = seq_loss(model(src, valid, tgt_in), labels, pad_id, 0.0)
        total += float(loss)
        count += num
    if args.hybridize:
        model.hybridize(False)
    model.train(was)
    return total / max(count, 1)


@torch.no_grad()
def translate(model, tok, sources: list[str], args) -> list[str]:
    """Beam-search translations of ``sources`` (best beam, detokenized)."""
    model.eval()
    vocab = tok.vocab
    eos, bos, pad = vocab.eos_id, vocab.bos_id, vocab.pad_id
    encoded = [s[: args.max_length - 1] + [eos] for s in tok.encode(sources)]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))  # similar lengths per batch
    out: list[str] = [""] * len(encoded)
    scorer = BeamSearchScorer(alpha=args.lp_alpha, K=args.lp_k)
    for start in range(0, len(order), args.eval_batch_size):
        ids = order[start: start + args.eval_batch_size]
        src = Pad(val=pad)([encoded[i] for i in ids])
        valid = torch.tensor([len(encoded[i]) for i in ids], dtype=torch.long)
        max_len = int(args.tgt_max_len_a * int(valid.max()) + args.tgt_max_len_b)
        searcher = BeamSearchSampler(args.beam_size, model.decode_step, eos_id=eos, max_length=max_len, scorer=scorer)
        states = model.init_states(src, valid)
        samples, _, lengths = searcher(torch.full((len(ids),), bos, dtype=torch.long), states)
        for row, i in enumerate(ids):
            n = int(lengths[row, 0])
            # drop the start token and the final eos
            toks = [t for t in samples[row, 0, 1:n].tolist() if t != eos]
            out[i] = tok.decode(toks)
    return out


def corpus_bleu(hypotheses: list[str], references: list[str]) -> float:
    try:
        from toolkit.nlp.metrics import bleu
    except ImportError:  # toolkit.nlp.metrics wraps the same sacrebleu call
        import sacrebleu

        return float(sacrebleu.corpus_bleu(hypotheses, [references]).score)
    result = bleu(hypotheses, references)
    return float(getattr(result, "score", result))


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(build_parser(), argv, task="translation")
    run = start_run(args)
    dist, save_dir, logger, start_time = run.dist, run.save_dir, run.logger, run.start_time

    corpus = load_corpus(args)
    tok = build_tokenizer(args, corpus, save_dir, dist.is_main)
    vocab = tok.vocab
    pad_id, bos_id, eos_id = vocab.pad_id, vocab.bos_id, vocab.eos_id
    train_pairs = encode_pairs(tok, *corpus["train"], args.max_length)
    dev_pairs = encode_pairs(tok, *corpus["dev"], args.max_length)

    overrides: dict[str, Any] = dict(vocab_size=len(vocab), pad_id=pad_id, bos_id=bos_id, eos_id=eos_id,
                                     max_length=max(args.max_length, 256))
    if args.dropout is not None:
        overrides["dropout"] = args.dropout
    model = get_model(args.model, **overrides)
    units = model.cfg.units
    num_params = sum(p.numel() for p in model.parameters())
    train_model = model
    if dist.distributed:
        train_model = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.98), eps=1e-9,
                                 **fused_options(model))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, inverse_sqrt(units, args.warmup_steps))

    sampler = FixedBucketSampler([(len(s), len(t)) for s, t in train_pairs], batch_size=args.batch_size,
                                 num_buckets=args.num_buckets, use_average_length=True, shuffle=True,
                                 bucket_scheme=ExpWidthBucket(args.bucket_len_step), seed=args.seed,
                                 num_parts=dist.world_size, part_index=dist.rank)
    if dist.is_main:
        dump_config(args, save_dir / "config.json", extra={
            "model_cfg": dict(model.cfg), "num_params": num_params, "vocab_size": len(vocab),
            "num_train_pairs": len(train_pairs), "num_dev_pairs": len(dev_pairs),
            "num_test_pairs": len(corpus["test"][0]), "batches_per_epoch": len(sampler),
        })
        logger.info(f"model {args.model}: {num_params} parameters, vocab {len(vocab)}")
        logger.info(sampler.stats())

    start_epoch, skip, global_step = 0, 0, 0
    if args.resume_from:
        ckpt = resume_checkpoint(args.resume_from, model, optimizer, scheduler)
        start_epoch, skip, global_step = int(ckpt["epoch"]), int(ckpt["batch_in_epoch"]), int(ckpt["step"])
        logger.info(f"resumed from {args.resume_from} at epoch {start_epoch}, batch {skip} (step {global_step})")

    def checkpoint(epoch: int, batch_in_epoch: int) -> None:
        if dist.is_main:
            save_checkpoint(save_dir / "checkpoint-last.pt", model, optimizer, scheduler,
                            epoch=epoch, batch_in_epoch=batch_in_epoch, step=global_step)

    stopped = out_of_time = False
    dev_loss = float("nan")
    for epoch in range(start_epoch, args.num_epochs):
        sampler.set_epoch(epoch)
        model.train()
        window = {"loss": 0.0, "tokens": 0, "src_tokens": 0, "padded": 0, "time": time.time()}
        batches = list(sampler)
        for b, ids in enumerate(batches):
            if epoch == start_epoch and b < skip:
                continue
            src, valid, tgt_in, labels = make_batch(train_pairs, ids, pad_id, bos_id)
            loss_sum, num = seq_loss(train_model(src, valid, tgt_in), labels, pad_id, args.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            (loss_sum / max(num, 1)).backward()
            if args.clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            scheduler.step()
            global_step += 1
            window["loss"] += float(loss_sum.detach())
            window["tokens"] += num
            window["src_tokens"] += int(valid.sum())
            window["padded"] += src.numel() + labels.numel()
            if global_step % args.log_interval == 0:
                elapsed = time.time() - window["time"]
                real = window["tokens"] + window["src_tokens"]
                rec = logger.log(kind="train", epoch=epoch, step=global_step, batch=b + 1, num_batches=len(batches),
                                 loss=window["loss"] / max(window["tokens"], 1), lr=scheduler.get_last_lr()[0],
                                 tokens_per_s=real / max(elapsed, 1e-9), padding=1 - real / max(window["padded"], 1))
                logger.info(f"[epoch {epoch} batch {b + 1}/{len(batches)} step {global_step}] loss {rec['loss']:.4f} "
                            f"lr {rec['lr']:.2e} {rec['tokens_per_s']:.0f} tok/s")
                window = {"loss": 0.0, "tokens": 0, "src_tokens": 0, "padded": 0, "time": time.time()}
            if args.max_train_minutes and time.time() - start_time > 60 * args.max_train_minutes:
                logger.info(f"time budget of {args.max_train_minutes} min reached at step {global_step}")
                out_of_time = True
                break
            if args.stop_after_steps and global_step >= args.stop_after_steps:
                checkpoint(epoch, b + 1)
                stopped = True
                break
        if stopped:
            logger.info(f"stopped after step {global_step}; resume with --resume-from {save_dir / 'checkpoint-last.pt'}")
            break
        dev_loss = evaluate_loss(model, dev_pairs, args, pad_id, bos_id)
        logger.log(kind="eval", epoch=epoch, step=global_step, dev_loss=dev_loss, dev_perplexity=math.exp(dev_loss))
        logger.info(f"[epoch {epoch}] dev loss {dev_loss:.4f} perplexity {math.exp(dev_loss):.2f} "
                    f"({time.time() - start_time:.0f} s)")
        if out_of_time:
            checkpoint(epoch, b + 1)
            break
        checkpoint(epoch + 1, 0)

    metrics: dict[str, Any] = {}
    if not stopped and dist.is_main:
        if math.isnan(dev_loss):
            dev_loss = evaluate_loss(model, dev_pairs, args, pad_id, bos_id)
        test_src, test_ref = corpus["test"]
        hyps = translate(model, tok, test_src, args)
        (save_dir / "translations.test.txt").write_text("\n".join(hyps) + "\n", encoding="utf-8")
        bleu = corpus_bleu(hyps, test_ref)
        # Top-level numbers are the row's scores (the zoo table shows every numeric key);
        # the rest goes under "details".
        metrics = {
            "model": args.model, "dataset": f"{args.dataset} {args.src_lang}-{args.tgt_lang}",
            "bleu": round(bleu, 2), "num_params": num_params, "epochs": args.num_epochs, "steps": global_step,
            "wall_time_s": round(time.time() - start_time, 1), "hardware": hardware_info(world_size=dist.world_size),
            "sha256": None,
            "details": {
                "bleu_tokenizer": "sacrebleu 13a, detokenized", "test_sentences": len(test_src),
                "beam_size": args.beam_size, "lp_alpha": args.lp_alpha, "lp_k": args.lp_k,
                "dev_loss": round(dev_loss, 4), "dev_perplexity": round(math.exp(dev_loss), 3),
                "time_budget_reached": out_of_time, "vocab_size": len(vocab),
            },
        }
        metrics = finish_run(save_dir, model, f"{args.model}.safetensors", metrics, logger=logger)
        logger.info(f"test BLEU {bleu:.2f} ({len(test_src)} sentences)")
    logger.close()
    cleanup_distributed()
    return metrics


if __name__ == "__main__":
    main()
