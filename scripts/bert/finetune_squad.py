#!/usr/bin/env python
"""Fine-tune BERT for SQuAD-style extractive question answering (1.1 and 2.0).

GluonNLP's ``finetune_squad.py`` recipe: ``[CLS] question [SEP] context [SEP]``
features over a sliding window of the context (``--doc-stride``), start/end
logits from a dense layer over the sequence output, answers mapped back to
the context through the tokenizer's character offsets, the best span per
question over all its windows (``--n-best``, ``--max-answer-len``) and the
official exact-match / F1 (``toolkit.nlp.metrics.squad_em_f1``). For SQuAD
2.0 the ``[CLS]`` position stands for "no answer".

::

    python scripts/bert/finetune_squad.py --model-dir /path/bert-base-uncased --version 1.1 \\
        --num-epochs 2 --save-dir runs/squad

The JSON files are read from ``toolkit.data.data_root()/squad`` or ``--data-dir``.
Writes ``config.json``, ``log.jsonl``, ``train.log``, ``checkpoint-last.pt``,
``predictions.json``, ``<name>_qa.safetensors``, ``weights.sha256`` and
``metrics.json`` (dev ``exact_match`` and ``f1``).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.bert.bert_common import add_model_args, load_bert, make_optimizer  # noqa: E402
from scripts.common import (  # noqa: E402
    cleanup_distributed,
    dump_config,
    finish_run,
    hardware_info,
    parse_args,
    start_run,
)
from scripts.text_classification.loop import train_loop  # noqa: E402
from toolkit.data import Pad  # noqa: E402
from toolkit.nlp import metrics as M  # noqa: E402


class Feature(NamedTuple):
    qid: str
    ids: list[int]
    types: list[int]
    offsets: list[tuple[int, int] | None]  # char span in the context, None outside it
    start: int  # answer token positions (0 = [CLS]: no answer in this window)
    end: int


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Fine-tune BERT on SQuAD.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_model_args(p)
    a = p.add_argument
    a("--version", default="1.1", choices=("1.1", "2.0"))
    a("--data-dir", default=None, help="folder with {train,dev}-v{version}.json (default data_root()/squad)")
    a("--max-train-samples", type=int, default=0)
    a("--max-eval-samples", type=int, default=0)
    a("--max-seq-length", type=int, default=384)
    a("--max-query-length", type=int, default=64)
    a("--doc-stride", type=int, default=128)
    a("--max-answer-len", type=int, default=30)
    a("--n-best", type=int, default=20)
    a("--null-score-diff-threshold", type=float, default=0.0, help="SQuAD 2.0: predict no answer above this margin")
    a("--num-epochs", type=int, default=2)
    a("--stop-after-steps", type=int, default=0)
    a("--batch-size", type=int, default=12)
    a("--log-interval", type=int, default=10)
    a("--save-dir", default="runs/squad")
    a("--resume-from", default=None)
    a("--seed", type=int, default=6)
    a("--num-threads", type=int, default=0)
    return p


def make_features(tokenizer, sample, args, train: bool) -> list[Feature]:
    """Sliding-window features of one question."""
    vocab = tokenizer.vocab
    cls_id, sep_id = vocab.cls_id, vocab.sep_id
    q_ids = tokenizer.encode(sample.question, add_special_tokens=False)[: args.max_query_length]
    ctx_ids, ctx_offsets = tokenizer.encode_with_offsets(sample.context, output_type=int, add_special_tokens=False)
    room = args.max_seq_length - len(q_ids) - 3
    if room <= 0:
        raise SystemExit("--max-seq-length leaves no room for the context after the question")
    ans = None
    if sample.answers and not sample.is_impossible:
        a_start = sample.answer_starts[0]
        a_end = a_start + len(sample.answers[0])
        toks = [i for i, (s, e) in enumerate(ctx_offsets) if s < a_end and e > a_start]
        if toks:
            ans = (toks[0], toks[-1])
    features = []
    begin = 0
    while True:
        span = range(begin, min(begin + room, len(ctx_ids)))
        ids = [cls_id] + q_ids + [sep_id] + [ctx_ids[i] for i in span] + [sep_id]
        types = [0] * (len(q_ids) + 2) + [1] * (len(span) + 1)
        offsets: list[tuple[int, int] | None] = [None] * (len(q_ids) + 2) + [tuple(ctx_offsets[i]) for i in span] + [None]
        first = len(q_ids) + 2
        start = end = 0
        if ans is not None and span and ans[0] >= span.start and ans[1] < span.stop:
            start, end = first + ans[0] - span.start, first + ans[1] - span.start
        if not (train and ans is not None and start == 0 and args.version == "1.1"):
            features.append(Feature(sample.qid, ids, types, offsets, start, end))
        if span.stop >= len(ctx_ids):
            break
        begin += args.doc_stride
    return features


def best_answers(samples, features, start_logits, end_logits, args) -> dict[str, str]:
    """Best span text per question over all its windows."""
    by_qid: dict[str, list[int]] = {}
    for i, f in enumerate(features):
        by_qid.setdefault(f.qid, []).append(i)
    contexts = {s.qid: s.context for s in samples}
    preds = {}
    for qid, idx in by_qid.items():
        best, best_score, null_score = "", -math.inf, math.inf
        for i in idx:
            f, s_log, e_log = features[i], start_logits[i], end_logits[i]
            null_score = min(null_score, float(s_log[0] + e_log[0]))
            n = len(f.ids)
            starts = np.argsort(s_log[:n])[::-1][: args.n_best]
            ends = np.argsort(e_log[:n])[::-1][: args.n_best]
            for s in starts:
                for e in ends:
                    if f.offsets[s] is None or f.offsets[e] is None or e < s or e - s + 1 > args.max_answer_len:
                        continue
                    score = float(s_log[s] + e_log[e])
                    if score > best_score:
                        best_score = score
                        best = contexts[qid][f.offsets[s][0]: f.offsets[e][1]]
        if args.version == "2.0" and null_score - best_score > args.null_score_diff_threshold:
            best = ""
        preds[qid] = best
    return preds


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(build_parser(), argv, task="bert")
    run = start_run(args)
    dist, save_dir, logger, start = run.dist, run.save_dir, run.logger, run.start_time

    from toolkit.nlp.datasets import SQuAD

    train_samples = list(SQuAD(args.version, "train", root=args.data_dir))
    dev_samples = list(SQuAD(args.version, "dev", root=args.data_dir))
    if args.max_train_samples:
        train_samples = train_samples[: args.max_train_samples]
    if args.max_eval_samples:
        dev_samples = dev_samples[: args.max_eval_samples]
    model, tokenizer = load_bert(args, "qa")
    pad_id = tokenizer.vocab.pad_id
    train_feats = [f for s in train_samples for f in make_features(tokenizer, s, args, train=True)]
    dev_feats = [f for s in dev_samples for f in make_features(tokenizer, s, args, train=False)]
    if not train_feats:
        raise SystemExit("no training features: every answer falls outside its window")
    steps_per_epoch = math.ceil(len(train_feats) / dist.world_size / args.batch_size)
    optimizer, scheduler = make_optimizer(args, model, steps_per_epoch * args.num_epochs)
    if dist.is_main:
        dump_config(args, save_dir / "config.json", extra={
            "model_cfg": dict(model.cfg), "train_questions": len(train_samples), "train_features": len(train_feats),
            "dev_questions": len(dev_samples), "dev_features": len(dev_feats)})

    def tensors(feats):
        ids = Pad(val=pad_id)([f.ids for f in feats])
        types = Pad(val=0)([f.types for f in feats])
        return ids, types, (ids != pad_id).long()

    def batches_for_epoch(epoch: int):
        order = np.random.default_rng([args.seed, epoch]).permutation(len(train_feats))[dist.rank:: dist.world_size]
        return [order[i: i + args.batch_size] for i in range(0, len(order), args.batch_size)]

    def step_loss(net, idx):
        feats = [train_feats[i] for i in idx]
        start_logits, end_logits = net(*tensors(feats))
        s = torch.tensor([f.start for f in feats])
        e = torch.tensor([f.end for f in feats])
        return (F.cross_entropy(start_logits, s) + F.cross_entropy(end_logits, e)) / 2

    @torch.no_grad()
    def evaluate() -> dict[str, float]:
        model.eval()
        starts, ends = [], []
        for i in range(0, len(dev_feats), 32):
            s, e = model(*tensors(dev_feats[i: i + 32]))
            starts.extend(s.numpy())
            ends.extend(e.numpy())
        model.train()
        preds = best_answers(dev_samples, dev_feats, starts, ends, args)
        evaluate.predictions = preds
        gold = {s.qid: (s.answers if s.answers else [""]) for s in dev_samples}
        result = M.squad_em_f1(preds, gold)
        return {"exact_match": float(result["exact_match"]), "f1": float(result["f1"])}

    result = train_loop(args, model, optimizer, scheduler, batches_for_epoch, step_loss, evaluate,
                        save_dir, logger, dist)
    metrics: dict[str, Any] = {}
    if not result["stopped"] and dist.is_main:
        dev = result["dev"]
        (save_dir / "predictions.json").write_text(json.dumps(getattr(evaluate, "predictions", {}), indent=1) + "\n")
        name = model.metadata.get("name", "bert")
        metrics = {"model": name, "dataset": f"squad{args.version}", **{k: round(v, 3) for k, v in dev.items()},
                   "dev_questions": len(dev_samples), "steps": result["steps"],
                   "wall_time_s": round(time.time() - start, 1), "hardware": hardware_info(world_size=dist.world_size),
                   "sha256": None}
        metrics = finish_run(save_dir, model, f"{name}_qa.safetensors", metrics, logger=logger)
        logger.info(f"dev exact match {dev['exact_match']:.2f} F1 {dev['f1']:.2f}")
    logger.close()
    cleanup_distributed()
    return metrics


if __name__ == "__main__":
    main()
