#!/usr/bin/env python
"""Train a TextCNN sentence classifier (Kim 2014) of the zoo.

Words come from ``toolkit.nlp.tokenizers.BasicTokenizer`` (lower-cased), the
vocabulary from the training split; ``--embedding-file`` (word2vec / GloVe /
fastText text or word2vec binary, read by ``toolkit.nlp.embedding``) fills the
embedding for the ``static``, ``non_static`` and ``multichannel`` variants.
Adam, dropout 0.5, 3/4/5-wide filters, 100 each, as in the paper's setup.

Gensim's 200 sentiment sentences (no download needed)::

    python scripts/text_classification/train_textcnn.py --model textcnn_rand --dataset gensim \\
        --num-epochs 20 --save-dir runs/textcnn

Other data: ``--dataset sst2|trec|imdb|glue --task TASK`` (files under
``toolkit.data.data_root()``) or ``--dataset tsv --data-dir DIR``. Data
parallel with ``torchrun``. BERT fine-tuning for the same data:
``scripts/bert/finetune_classifier.py``.

Writes ``config.json``, ``log.jsonl``, ``train.log``, ``vocab.json``,
``checkpoint-last.pt`` (``--resume-from``), ``<model>.safetensors``,
``weights.sha256`` and ``metrics.json`` (test ``accuracy`` and ``f1``/``mcc``
for two classes, ``wall_time_s``, ``hardware``).
"""
from __future__ import annotations

import argparse
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

from scripts.common import (cleanup_distributed, dump_config, finish_run, fused_options, hardware_info,  # noqa: E402
                            parse_args, start_run)
from scripts.text_classification.data import DATASETS, load_classification  # noqa: E402
from scripts.text_classification.loop import train_loop  # noqa: E402
from toolkit.data import Pad  # noqa: E402
from toolkit.nlp import Vocab, count_tokens  # noqa: E402
from toolkit.nlp import metrics as M  # noqa: E402
from toolkit.nlp.tokenizers import BasicTokenizer  # noqa: E402
from toolkit.zoo import get_model  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train a TextCNN classifier.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a = p.add_argument
    a("--model", default="textcnn_rand", help="textcnn_rand, textcnn_static, textcnn_non_static, textcnn_multichannel")
    a("--dataset", default="gensim", choices=DATASETS)
    a("--task", default="sst2", help="GLUE task for --dataset glue")
    a("--data-dir", default=None)
    a("--max-train-samples", type=int, default=0)
    a("--embedding-file", default=None, help="pretrained word vectors for the static/non_static/multichannel variants")
    a("--embed-size", type=int, default=300)
    a("--max-length", type=int, default=64, help="truncate sentences to this many words")
    a("--min-freq", type=int, default=1)
    a("--num-epochs", type=int, default=20)
    a("--stop-after-steps", type=int, default=0)
    a("--batch-size", type=int, default=50)
    a("--lr", type=float, default=1e-3)
    a("--wd", type=float, default=0.0)
    a("--clip", type=float, default=3.0, help="gradient norm clipping (0: off)")
    a("--dropout", type=float, default=0.5)
    a("--log-interval", type=int, default=10)
    a("--save-dir", default="runs/textcnn")
    a("--resume-from", default=None)
    a("--seed", type=int, default=100)
    a("--num-threads", type=int, default=0)
    a("--hybridize", action="store_true", help="evaluate with a captured graph")
    return p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(build_parser(), argv, task="text_classification")
    run = start_run(args)
    dist, save_dir, logger, start = run.dist, run.save_dir, run.logger, run.start_time

    splits, classes = load_classification(args.dataset, args.data_dir, args.task, args.max_train_samples)
    if any(len(t) != 1 for t, _ in splits["train"][:5]):
        raise SystemExit("TextCNN classifies single sentences; this dataset has sentence pairs")
    words = BasicTokenizer(lowercase=True)
    tokens = {s: words.encode([t[0] for t, _ in rows], output_type=str) for s, rows in splits.items()}
    vocab_file = save_dir / "vocab.json"
    if vocab_file.is_file():
        vocab = Vocab.load(vocab_file)
    else:
        vocab = Vocab(count_tokens([w for sent in tokens["train"] for w in sent]), min_freq=args.min_freq,
                      unknown_token="<unk>", padding_token="<pad>", bos_token=None, eos_token=None)
        if dist.is_main:
            vocab.save(vocab_file)
    data = {s: [(vocab[sent[: args.max_length]] or [vocab.unk_id], int(lab)) for sent, (_, lab) in zip(tokens[s], rows)]
            for s, rows in splits.items()}

    model = get_model(args.model, vocab_size=len(vocab), embed_size=args.embed_size, num_classes=len(classes),
                      dropout=args.dropout, pad_id=vocab.pad_id)
    if args.embedding_file:
        from toolkit.nlp.embedding import TokenEmbedding

        emb = TokenEmbedding.from_file(args.embedding_file)
        model.load_embedding(torch.as_tensor(emb.attach_to(vocab)))
    elif model.cfg.mode != "rand":
        logger.info(f"warning: {args.model} without --embedding-file uses a random (fixed where static) embedding")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=args.lr, weight_decay=args.wd, **fused_options(model))
    if dist.is_main:
        dump_config(args, save_dir / "config.json", extra={
            "model_cfg": dict(model.cfg), "classes": classes, "vocab_size": len(vocab),
            "split_sizes": {s: len(r) for s, r in data.items()}})
    pad = Pad(val=vocab.pad_id)

    def batches_for_epoch(epoch: int):
        order = np.random.default_rng([args.seed, epoch]).permutation(len(data["train"]))
        order = order[dist.rank:: dist.world_size]
        return [order[i: i + args.batch_size] for i in range(0, len(order), args.batch_size)]

    def step_loss(net, ids):
        rows = [data["train"][i] for i in ids]
        x = pad([r[0] for r in rows])
        y = torch.tensor([r[1] for r in rows])
        return F.cross_entropy(net(x), y)

    @torch.no_grad()
    def predict(split: str) -> tuple[np.ndarray, np.ndarray]:
        model.eval()
        if args.hybridize:
            model.hybridize()
        preds, labels = [], []
        rows = data[split]
        for i in range(0, len(rows), 256):
            chunk = rows[i: i + 256]
            preds.append(model(pad([r[0] for r in chunk])).argmax(-1).numpy())
            labels.extend(r[1] for r in chunk)
        model.hybridize(False)
        model.train()
        return np.concatenate(preds), np.asarray(labels)

    def scores(split: str) -> dict[str, float]:
        pred, gold = predict(split)
        out = {"accuracy": M.accuracy(pred, gold)}
        if len(classes) == 2:
            out.update(f1=M.f1(pred, gold), mcc=M.mcc(pred, gold))
        return out

    result = train_loop(args, model, optimizer, None, batches_for_epoch, step_loss, lambda: scores("dev"),
                        save_dir, logger, dist)
    metrics: dict[str, Any] = {}
    if not result["stopped"] and dist.is_main:
        test = scores("test")
        metrics = {"model": args.model, "dataset": args.dataset, **{k: round(v, 4) for k, v in test.items()},
                   "dev": {k: round(v, 4) for k, v in result["dev"].items()}, "test_samples": len(data["test"]),
                   "steps": result["steps"], "wall_time_s": round(time.time() - start, 1),
                   "hardware": hardware_info(world_size=dist.world_size), "sha256": None}
        metrics = finish_run(save_dir, model, f"{args.model}.safetensors", metrics, logger=logger)
        logger.info(f"test accuracy {test['accuracy']:.4f}")
    logger.close()
    cleanup_distributed()
    return metrics


if __name__ == "__main__":
    main()
