"""Model loading and optimisation shared by the BERT fine-tuning scripts."""
from __future__ import annotations

import argparse
from typing import Any

import torch

from scripts.common import fused_options

__all__ = ["add_model_args", "load_bert", "make_optimizer"]


def add_model_args(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("--model-dir", default=None,
      help="Hugging Face BERT checkpoint folder (config.json, model.safetensors, vocab.txt or tokenizer.json)")
    a("--model", default="bert_12_768_12", help="zoo config for a randomly initialised BERT (without --model-dir)")
    a("--vocab-file", default=None, help="WordPiece vocab.txt for --model without --model-dir")
    a("--cased", action="store_true", help="with --vocab-file: do not lower-case")
    a("--lr", type=float, default=2e-5)
    a("--warmup-ratio", type=float, default=0.1)
    a("--wd", type=float, default=0.01)
    a("--clip", type=float, default=1.0)


def load_bert(args, head: str, **head_kwargs: Any):
    """``(model, tokenizer)``: a checkpoint's encoder with a new ``head``, or a random zoo BERT."""
    from toolkit.nlp.models.bert import _HEADS, build_bert

    if args.model_dir:
        from toolkit.nlp.convert import from_huggingface

        backbone, tokenizer = from_huggingface(args.model_dir)
        if tokenizer is None:
            raise SystemExit(f"{args.model_dir} has no vocab.txt or tokenizer.json")
        model = _HEADS[head](backbone.cfg, **head_kwargs)
        model.backbone.load_state_dict(backbone.state_dict())
        model.metadata.update({k: v for k, v in backbone.metadata.items() if k.endswith("_id") or k == "lowercase"})
        return model, tokenizer
    if not args.vocab_file:
        raise SystemExit("give --model-dir (a pretrained checkpoint) or --model with --vocab-file")
    from toolkit.nlp.tokenizers import BertWordPieceTokenizer

    tokenizer = BertWordPieceTokenizer.from_vocab_file(args.vocab_file, lowercase=not args.cased)
    model = build_bert(args.model, head=head, vocab_size=len(tokenizer.vocab), **head_kwargs)
    return model, tokenizer


def make_optimizer(args, model: torch.nn.Module, total_steps: int):
    """AdamW without decay on biases and LayerNorm, linear warmup then linear decay (BERT's recipe)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.dim() == 1 else decay).append(p)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=args.lr,
                                  **fused_options(model))
    warmup = max(int(args.warmup_ratio * total_steps), 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(total_steps - warmup, 1))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
