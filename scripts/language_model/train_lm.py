#!/usr/bin/env python
"""Train a word-level LSTM language model of the zoo and report perplexity.

GluonNLP 0.x's ``word_language_model.py`` recipe on PyTorch: the corpus is one
token stream (``<eos>`` after every sentence) cut into ``--batch-size``
parallel rows, trained with truncated back-propagation through time
(``--bptt``) carrying the LSTM states across windows, SGD with gradient
clipping and the learning rate divided by ``--lr-update-factor`` whenever the
validation perplexity does not improve.

English Bible (``toolkit.nlp.datasets.bible``, the English side of the
chapter-hash splits)::

    python scripts/language_model/train_lm.py --model standard_lstm_lm_200 --dataset bible \\
        --epochs 6 --save-dir runs/lm

Any tokenized text in ``DIR/{train,valid,test}.txt`` (WikiText layout)::

    python scripts/language_model/train_lm.py --dataset files --data-dir DIR ...

Data parallel: ``torchrun --nproc_per_node N scripts/language_model/train_lm.py ...``
(each process trains on its own ``--batch-size`` rows of the stream).

Writes into ``--save-dir``: ``config.json``, ``log.jsonl``, ``train.log``,
``vocab.json``, ``checkpoint-last.pt`` (exact resume with ``--resume-from``)
and at the end ``<model>.safetensors``, ``weights.sha256`` and
``metrics.json`` (``perplexity`` on the test split, ``num_params``,
``wall_time_s``, ``hardware``, ``sha256``; validation perplexity under ``details``).
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
from toolkit.nlp import Vocab, count_tokens  # noqa: E402
from toolkit.zoo import get_model  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train an LSTM language model.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a = p.add_argument
    a("--model", default="standard_lstm_lm_200", help="zoo name (standard_lstm_lm_200/650/1500, awd_lstm_lm_600/1150)")
    a("--dataset", default="bible", choices=("bible", "files"))
    a("--data-dir", default=None, help="folder with train.txt, valid.txt, test.txt for --dataset files")
    a("--lang", default="en", help="side of the Bible corpus")
    a("--lowercase", action="store_true")
    a("--min-freq", type=int, default=2, help="rarer words become <unk>")
    a("--max-train-sentences", type=int, default=0, help="use only the first N training sentences (0: all)")
    a("--epochs", type=int, default=40)
    a("--stop-after-steps", type=int, default=0, help="stop (with a checkpoint) after this many steps; resume later")
    a("--max-train-minutes", type=float, default=0,
      help="end training after this wall time, then evaluate (0: no limit); the log records the steps done")
    a("--batch-size", type=int, default=20, help="parallel rows of the stream per process")
    a("--bptt", type=int, default=35)
    a("--eval-batch-size", type=int, default=10)
    a("--optimizer", default="sgd", choices=("sgd", "adam"))
    a("--lr", type=float, default=20.0)
    a("--lr-update-factor", type=float, default=4.0, help="divide the lr by this when validation stalls")
    a("--wd", type=float, default=0.0)
    a("--clip", type=float, default=0.25)
    a("--dropout", type=float, default=None, help="override the model's output dropout")
    a("--log-interval", type=int, default=100)
    a("--save-dir", default="runs/lm")
    a("--resume-from", default=None)
    a("--seed", type=int, default=100)
    a("--num-threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    a("--hybridize", action="store_true", help="run evaluation as a captured graph")
    return p


# --------------------------------------------------------------------------- data
def load_sentences(args) -> dict[str, list[list[str]]]:
    if args.dataset == "bible":
        from toolkit.nlp.datasets.bible import load_bible_pairs, tokenize

        out = {}
        for split, name in (("train", "train"), ("valid", "dev"), ("test", "test")):
            texts = [getattr(p, args.lang) for p in load_bible_pairs(name)]
            out[split] = [tokenize(t.lower() if args.lowercase else t) for t in texts]
    else:
        if not args.data_dir:
            raise SystemExit("--dataset files needs --data-dir")
        out = {}
        for split in ("train", "valid", "test"):
            path = Path(args.data_dir) / f"{split}.txt"
            if not path.is_file():
                raise SystemExit(f"missing {path} (one tokenized sentence per line)")
            lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
            out[split] = [(ln.lower() if args.lowercase else ln).split() for ln in lines]
    if args.max_train_sentences:
        out["train"] = out["train"][: args.max_train_sentences]
    for split, sents in out.items():
        if not sents:
            raise SystemExit(f"the {split} split is empty")
    return out


def to_stream(sentences: list[list[str]], vocab: Vocab) -> torch.Tensor:
    """All sentences as one id stream, ``<eos>`` after each."""
    ids: list[int] = []
    eos = vocab.eos_id
    for s in sentences:
        ids.extend(vocab[s])
        ids.append(eos)
    return torch.tensor(ids, dtype=torch.long)


def batchify(stream: torch.Tensor, rows: int) -> torch.Tensor:
    """``(rows, N)``: row r is the r-th contiguous slice of the stream (the tail is dropped)."""
    n = stream.numel() // rows
    if n < 2:
        raise SystemExit(f"a stream of {stream.numel()} tokens is too short for {rows} rows")
    return stream[: n * rows].view(rows, n)


def detach(states):
    return [(h.detach(), c.detach()) for h, c in states]


@torch.no_grad()
def evaluate(model, data: torch.Tensor, bptt: int, hybridize: bool) -> float:
    """Mean negative log-likelihood per token over ``data`` ``(rows, N)``."""
    model.eval()
    if hybridize:
        model.hybridize()
    states = model.begin_state(data.shape[0])
    total, count = 0.0, 0
    for i in range(0, data.shape[1] - 1, bptt):
        x = data[:, i: i + bptt]
        y = data[:, i + 1: i + 1 + bptt]
        x = x[:, : y.shape[1]]
        logits, states = model(x, states)
        total += float(F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum"))
        count += y.numel()
    if hybridize:
        model.hybridize(False)
    return total / max(count, 1)


def perplexity(nll_sum: float, num_tokens: int) -> float:
    try:
        from toolkit.nlp.metrics import perplexity as ppl
    except ImportError:
        return math.exp(nll_sum / num_tokens)
    return float(ppl(nll_sum, num_tokens))


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(build_parser(), argv, task="language_model")
    run = start_run(args)
    dist, save_dir, logger, start_time = run.dist, run.save_dir, run.logger, run.start_time

    sentences = load_sentences(args)
    vocab_file = save_dir / "vocab.json"
    if vocab_file.is_file():  # a resumed run keeps its vocabulary
        vocab = Vocab.load(vocab_file)
    else:
        counter = count_tokens([t for s in sentences["train"] for t in s])
        vocab = Vocab(counter, min_freq=args.min_freq, unknown_token="<unk>", padding_token=None,
                      bos_token=None, eos_token="<eos>")
        if dist.is_main:
            vocab.save(vocab_file)
    train = batchify(to_stream(sentences["train"], vocab), args.batch_size * dist.world_size)
    train = train[dist.rank * args.batch_size: (dist.rank + 1) * args.batch_size]
    valid = batchify(to_stream(sentences["valid"], vocab), args.eval_batch_size)
    test = batchify(to_stream(sentences["test"], vocab), args.eval_batch_size)

    overrides: dict[str, Any] = {"vocab_size": len(vocab)}
    if args.dropout is not None:
        overrides["dropout"] = args.dropout
    model = get_model(args.model, **overrides)
    num_params = sum(p.numel() for p in model.parameters())
    train_model = torch.nn.parallel.DistributedDataParallel(model) if dist.distributed else model
    if args.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, weight_decay=args.wd, **fused_options(model))
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.wd, **fused_options(model))
    steps_per_epoch = math.ceil((train.shape[1] - 1) / args.bptt)
    if dist.is_main:
        dump_config(args, save_dir / "config.json", extra={
            "model_cfg": dict(model.cfg), "num_params": num_params, "vocab_size": len(vocab),
            "train_tokens": int(train.numel()) * dist.world_size, "valid_tokens": int(valid.numel()),
            "test_tokens": int(test.numel()), "steps_per_epoch": steps_per_epoch,
        })
        logger.info(f"model {args.model}: {num_params} parameters, vocab {len(vocab)}, "
                    f"{train.numel() * dist.world_size} training tokens, {steps_per_epoch} steps per epoch")

    start_epoch, start_batch, global_step = 0, 0, 0
    best_valid = float("inf")
    states = model.begin_state(args.batch_size)
    if args.resume_from:
        ckpt = resume_checkpoint(args.resume_from, model, optimizer)
        start_epoch, start_batch, global_step = int(ckpt["epoch"]), int(ckpt["batch_in_epoch"]), int(ckpt["step"])
        best_valid = float(ckpt["best_valid"])
        if start_batch:
            states = [(h, c) for h, c in ckpt["states"]]
        logger.info(f"resumed from {args.resume_from} at epoch {start_epoch}, batch {start_batch} (step {global_step})")

    def checkpoint(epoch: int, batch_in_epoch: int) -> None:
        if dist.is_main:
            save_checkpoint(save_dir / "checkpoint-last.pt", model, optimizer, epoch=epoch,
                            batch_in_epoch=batch_in_epoch, step=global_step, best_valid=best_valid,
                            states=[[h, c] for h, c in states])

    stopped = out_of_time = False
    valid_nll = float("nan")
    for epoch in range(start_epoch, args.epochs):
        model.train()
        if epoch != start_epoch or not start_batch:
            states = model.begin_state(args.batch_size)
        window_loss, window_tokens, window_start = 0.0, 0, time.time()
        for b, i in enumerate(range(0, train.shape[1] - 1, args.bptt)):
            if epoch == start_epoch and b < start_batch:
                continue
            x = train[:, i: i + args.bptt]
            y = train[:, i + 1: i + 1 + args.bptt]
            x = x[:, : y.shape[1]]
            states = detach(states)
            logits, states = train_model(x, states)
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if args.clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            global_step += 1
            window_loss += float(loss.detach()) * y.numel()
            window_tokens += y.numel()
            if global_step % args.log_interval == 0:
                avg = window_loss / window_tokens
                elapsed = time.time() - window_start
                logger.log(kind="train", epoch=epoch, step=global_step, batch=b + 1, num_batches=steps_per_epoch,
                           loss=avg, perplexity=math.exp(avg), lr=optimizer.param_groups[0]["lr"],
                           tokens_per_s=window_tokens * dist.world_size / max(elapsed, 1e-9))
                logger.info(f"[epoch {epoch} batch {b + 1}/{steps_per_epoch}] loss {avg:.3f} ppl {math.exp(avg):.1f} "
                            f"lr {optimizer.param_groups[0]['lr']:.3g} {window_tokens / max(elapsed, 1e-9):.0f} tok/s")
                window_loss, window_tokens, window_start = 0.0, 0, time.time()
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
        valid_nll = evaluate(model, valid, args.bptt, args.hybridize)
        logger.log(kind="eval", epoch=epoch, step=global_step, valid_loss=valid_nll, valid_perplexity=math.exp(valid_nll),
                   lr=optimizer.param_groups[0]["lr"])
        logger.info(f"[epoch {epoch}] valid ppl {math.exp(valid_nll):.2f} ({time.time() - start_time:.0f} s)")
        if valid_nll < best_valid:
            best_valid = valid_nll
        else:  # plateau: anneal, as GluonNLP's word LM script does
            for group in optimizer.param_groups:
                group["lr"] /= args.lr_update_factor
        if out_of_time:
            break
        checkpoint(epoch + 1, 0)

    metrics: dict[str, Any] = {}
    if not stopped and dist.is_main:
        if math.isnan(valid_nll):
            valid_nll = evaluate(model, valid, args.bptt, args.hybridize)
        test_nll = evaluate(model, test, args.bptt, args.hybridize)
        test_tokens = test.shape[0] * (test.shape[1] - 1)
        # Top-level numbers are the row's scores; the rest goes under "details".
        metrics = {
            "model": args.model, "dataset": f"{args.dataset} {args.lang}" if args.dataset == "bible" else args.dataset,
            "perplexity": round(perplexity(test_nll * test_tokens, test_tokens), 2), "num_params": num_params,
            "epochs": epoch + (0 if out_of_time else 1), "steps": global_step,
            "wall_time_s": round(time.time() - start_time, 1), "hardware": hardware_info(world_size=dist.world_size),
            "sha256": None,
            "details": {"valid_perplexity": round(math.exp(valid_nll), 2), "test_tokens": test_tokens,
                        "vocab_size": len(vocab), "time_budget_reached": out_of_time},
        }
        metrics = finish_run(save_dir, model, f"{args.model}.safetensors", metrics, logger=logger)
        logger.info(f"test perplexity {metrics['perplexity']:.2f}")
    logger.close()
    cleanup_distributed()
    return metrics


if __name__ == "__main__":
    main()
