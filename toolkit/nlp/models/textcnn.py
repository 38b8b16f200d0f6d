"""TextCNN (Kim 2014): convolutions of several widths over word embeddings, max-over-time pooling.

The four variants of the paper are configs: ``textcnn_rand`` (embedding
learned from scratch), ``textcnn_static`` (pretrained embedding kept fixed),
``textcnn_non_static`` (pretrained embedding fine-tuned) and
``textcnn_multichannel`` (one fixed and one fine-tuned copy). Pretrained
vectors are copied in with :meth:`TextCNN.load_embedding`.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...nn import HybridBlock
from ...zoo import ModelFamily
from .config import Config, ConfigRegistry

__all__ = ["textcnn_cfg_reg", "TextCNN", "build_textcnn"]

textcnn_cfg_reg = ConfigRegistry("textcnn")


def _cfg(mode: str) -> Config:
    return Config(vocab_size=20000, embed_size=300, kernel_sizes=[3, 4, 5], num_filters=100,
                  dropout=0.5, num_classes=2, mode=mode, pad_id=0)


for _mode in ("rand", "static", "non_static", "multichannel"):
    textcnn_cfg_reg.register(lambda m=_mode: _cfg(m), name=f"textcnn_{_mode}")

_MODES = ("rand", "static", "non_static", "multichannel")


class TextCNN(HybridBlock):
    """Sentence classifier of Kim (2014).

    Call
    ----
    ``model(token_ids (B, L))`` returns class logits ``(B, num_classes)``.
    The embedded sequence is zero-padded at the end by the widest kernel
    minus one, so any length >= 1 works.
    """

    dynamic_axes = {0: "batch", 1: "seq"}
    output_names = ("logits",)

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = c = Config(cfg).freeze()
        if c.mode not in _MODES:
            raise ValueError(f"unknown TextCNN mode {c.mode!r}; choose from {_MODES}")
        self.embedding = nn.Embedding(c.vocab_size, c.embed_size, padding_idx=c.pad_id)
        channels = 1
        if c.mode == "multichannel":
            self.static_embedding = nn.Embedding(c.vocab_size, c.embed_size, padding_idx=c.pad_id)
            self.static_embedding.weight.requires_grad_(False)
            channels = 2
        if c.mode == "static":
            self.embedding.weight.requires_grad_(False)
        self.convs = nn.ModuleList(nn.Conv1d(channels * c.embed_size, c.num_filters, k) for k in c.kernel_sizes)
        self.dropout = nn.Dropout(c.dropout)
        self.classifier = nn.Linear(c.num_filters * len(c.kernel_sizes), c.num_classes)
        self.metadata.update(task="text_classification", vocab_size=c.vocab_size, num_classes=c.num_classes, pad_id=c.pad_id)

    @classmethod
    def get_cfg(cls, name: str = "textcnn_rand") -> Config:
        return textcnn_cfg_reg.get(name)

    @classmethod
    def from_cfg(cls, cfg: Config) -> "TextCNN":
        return cls(cfg)

    def example_inputs(self, batch_size: int = 2, seq_length: int = 12) -> tuple[torch.Tensor]:
        gen = torch.Generator().manual_seed(0)
        return (torch.randint(1, self.cfg.vocab_size, (batch_size, seq_length), generator=gen),)

    def load_embedding(self, vectors: torch.Tensor) -> None:
        """Copy pretrained vectors ``(vocab_size, embed_size)`` into the embedding(s)."""
        vectors = torch.as_tensor(vectors, dtype=self.embedding.weight.dtype)
        if tuple(vectors.shape) != tuple(self.embedding.weight.shape):
            raise ValueError(f"vectors have shape {tuple(vectors.shape)}, the embedding {tuple(self.embedding.weight.shape)}")
        with torch.no_grad():
            self.embedding.weight.copy_(vectors)
            if self.cfg.mode == "multichannel":
                self.static_embedding.weight.copy_(vectors)

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        x = self.embedding(token_ids)
        if self.cfg.mode == "multichannel":
            x = torch.cat([x, self.static_embedding(token_ids)], dim=-1)
        x = x.transpose(1, 2)  # (B, C, L)
        # Pad to the widest kernel so that short sentences still give one window.
        x = F.pad(x, (0, max(self.cfg.kernel_sizes) - 1))
        pooled = [torch.relu(conv(x)).amax(dim=2) for conv in self.convs]
        return self.classifier(self.dropout(torch.cat(pooled, dim=1)))


def build_textcnn(name: str = "textcnn_rand", **kwargs: Any) -> TextCNN:
    """Build the TextCNN config ``name`` with overrides (``vocab_size``, ``num_classes`` ...)."""
    return TextCNN(textcnn_cfg_reg.get(name).clone(**kwargs))


TEXTCNN_FAMILY = ModelFamily(task="text_classification").register_configs(
    build_textcnn, textcnn_cfg_reg.list(), doc="TextCNN {name} (see :func:`{build}`).")
