#!/usr/bin/env python
"""Fine-tune BERT for sentence or sentence-pair classification (GLUE-style).

GluonNLP's ``finetune_classifier.py`` recipe: ``[CLS] a [SEP] b [SEP]``
inputs, the pooled output into a dropout + dense classifier, AdamW with
linear warmup and decay, no weight decay on biases and LayerNorm.

From a Hugging Face BERT checkpoint folder (converted by
``toolkit.nlp.convert.from_huggingface``)::

    python scripts/bert/finetune_classifier.py --model-dir /path/bert-base-uncased \\
        --dataset glue --task mrpc --num-epochs 3 --save-dir runs/mrpc

Datasets as in ``scripts/text_classification`` (``gensim``, ``sst2``,
``glue --task T``, ``trec``, ``imdb``, ``tsv --data-dir DIR``). Data parallel
with ``torchrun``. Writes ``config.json``, ``log.jsonl``, ``train.log``,
``checkpoint-last.pt`` (``--resume-from``), ``<name>.safetensors``,
``weights.sha256`` and ``metrics.json`` (test ``accuracy``, plus ``f1`` and
``mcc`` for two classes).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

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
from scripts.text_classification.data import DATASETS, load_classification  # noqa: E402
from scripts.text_classification.loop import train_loop  # noqa: E402
from toolkit.data import Pad  # noqa: E402
from toolkit.nlp import metrics as M  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Fine-tune BERT for classification.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_model_args(p)
    a = p.add_argument
    a("--dataset", default="glue", choices=DATASETS)
    a("--task", default="mrpc", help="GLUE task for --dataset glue")
    a("--data-dir", default=None)
    a("--max-train-samples", type=int, default=0)
    a("--max-len", type=int, default=128, help="longest [CLS] a [SEP] b [SEP] input")
    a("--num-epochs", type=int, default=3)
    a("--stop-after-steps", type=int, default=0)
    a("--batch-size", type=int, default=32)
    a("--log-interval", type=int, default=10)
    a("--save-dir", default="runs/bert_classifier")
    a("--resume-from", default=None)
    a("--seed", type=int, default=2)
    a("--num-threads", type=int, default=0)
    a("--hybridize", action="store_true", help="evaluate with a captured graph")
    return p


def encode(tokenizer, texts: tuple[str, ...], max_len: int) -> tuple[list[int], list[int]]:
    if len(texts) == 1:
        ids = tokenizer.encode(texts[0])
        types = [0] * len(ids)
    else:
        ids, types = tokenizer.encode_pair(texts[0], texts[1])
    if len(ids) > max_len:  # keep the final [SEP]
        ids, types = ids[: max_len - 1] + ids[-1:], types[: max_len - 1] + types[-1:]
    return ids, types


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(build_parser(), argv, task="bert")
    run = start_run(args)
    dist, save_dir, logger, start = run.dist, run.save_dir, run.logger, run.start_time

    splits, classes = load_classification(args.dataset, args.data_dir, args.task, args.max_train_samples)
    regression = not classes or args.task == "stsb"
    model, tokenizer = load_bert(args, "classification", num_classes=1 if regression else len(classes))
    pad_id = tokenizer.vocab.pad_id
    data = {s: [(*encode(tokenizer, texts, args.max_len), label) for texts, label in rows] for s, rows in splits.items()}
    steps_per_epoch = math.ceil(len(data["train"]) / dist.world_size / args.batch_size)
    optimizer, scheduler = make_optimizer(args, model, steps_per_epoch * args.num_epochs)
    if dist.is_main:
        dump_config(args, save_dir / "config.json", extra={
            "model_cfg": dict(model.cfg), "classes": classes, "split_sizes": {s: len(r) for s, r in data.items()}})
    pad = Pad(val=pad_id)

    def tensors(rows):
        ids = pad([r[0] for r in rows])
        types = Pad(val=0)([r[1] for r in rows])
        mask = (ids != pad_id).long()
        label = torch.tensor([r[2] for r in rows], dtype=torch.float if regression else torch.long)
        return ids, types, mask, label

    def batches_for_epoch(epoch: int):
        order = np.random.default_rng([args.seed, epoch]).permutation(len(data["train"]))[dist.rank:: dist.world_size]
        return [order[i: i + args.batch_size] for i in range(0, len(order), args.batch_size)]

    def step_loss(net, idx):
        ids, types, mask, label = tensors([data["train"][i] for i in idx])
        out = net(ids, types, mask)
        return F.mse_loss(out[:, 0], label) if regression else F.cross_entropy(out, label)

    @torch.no_grad()
    def scores(split: str) -> dict[str, float]:
        model.eval()
        if args.hybridize:
            model.hybridize()
        preds, gold = [], []
        rows = data[split]
        for i in range(0, len(rows), 64):
            ids, types, mask, label = tensors(rows[i: i + 64])
            out = model(ids, types, mask)
            preds.append(out[:, 0].numpy() if regression else out.argmax(-1).numpy())
            gold.append(label.numpy())
        model.hybridize(False)
        model.train()
        pred, gold_arr = np.concatenate(preds), np.concatenate(gold)
        if regression:
            return {"pearson": float(np.corrcoef(pred, gold_arr)[0, 1]), "mse": float(np.mean((pred - gold_arr) ** 2))}
        out = {"accuracy": M.accuracy(pred, gold_arr)}
        if len(classes) == 2:
            out.update(f1=M.f1(pred, gold_arr), mcc=M.mcc(pred, gold_arr))
        return out

    result = train_loop(args, model, optimizer, scheduler, batches_for_epoch, step_loss, lambda: scores("dev"),
                        save_dir, logger, dist)
    metrics: dict[str, Any] = {}
    if not result["stopped"] and dist.is_main:
        test = scores("test")
        name = model.metadata.get("name", "bert")
        metrics = {"model": name, "dataset": args.dataset, "task": args.task,
                   **{k: round(v, 4) for k, v in test.items()},
                   "dev": {k: round(v, 4) for k, v in result["dev"].items()}, "test_samples": len(data["test"]),
                   "steps": result["steps"], "wall_time_s": round(time.time() - start, 1),
                   "hardware": hardware_info(world_size=dist.world_size), "sha256": None}
        metrics = finish_run(save_dir, model, f"{name}_classifier.safetensors", metrics, logger=logger)
        logger.info("test " + " ".join(f"{k} {v:.4f}" for k, v in test.items()))
    logger.close()
    cleanup_distributed()
    return metrics


if __name__ == "__main__":
    main()
