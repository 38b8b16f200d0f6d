"""The Transformer encoder-decoder (Vaswani et al. 2017) for machine translation.

``transformer_en_de_512`` is the base configuration of GluonNLP 0.x (6+6
layers, 512 units, 2048 hidden, 8 heads, post-norm, shared and tied
embeddings); ``transformer_small`` and ``transformer_tiny`` are CPU-sized
variants for the Bible rows and the tests.

Decoding follows the searcher interface of :mod:`toolkit.nlp.decoding`::

    states = model.init_states(src_ids, src_valid_length)
    log_probs, states = model.decode_step(step_input, states)   # (N,) -> (N, V)

``states`` is a dict of tensors with the batch on dim 0 (encoder keys/values
per layer, the source mask, the self-attention cache per layer and the
position), so a searcher can reorder or expand it with ``index_select``.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...nn import HybridBlock
from ...zoo import ModelFamily
from ..layers import (
    SinusoidalPositionalEmbedding,
    TransformerDecoderLayer,
    TransformerEncoderLayer,
    causal_mask,
    init_xavier,
    valid_length_mask,
)
from .config import Config, ConfigRegistry

__all__ = ["transformer_cfg_reg", "TransformerModel", "build_transformer"]

transformer_cfg_reg = ConfigRegistry("transformer")


def _base_cfg() -> Config:
    return Config(
        src_vocab_size=32000,
        tgt_vocab_size=32000,
        units=512,
        hidden_size=2048,
        num_heads=8,
        num_enc_layers=6,
        num_dec_layers=6,
        dropout=0.1,
        attention_dropout=0.1,
        activation="relu",
        pre_norm=False,
        layer_norm_eps=1e-5,
        shared_embed=True,
        tie_weights=True,
        scale_embed=True,
        max_length=1024,
        pad_id=0,
        bos_id=2,
        eos_id=3,
    )


@transformer_cfg_reg.register
def transformer_en_de_512() -> Config:
    return _base_cfg()


@transformer_cfg_reg.register
def transformer_small() -> Config:
    cfg = _base_cfg()
    cfg.update(units=256, hidden_size=1024, num_heads=4, num_enc_layers=3, num_dec_layers=3)
    return cfg


@transformer_cfg_reg.register
def transformer_tiny() -> Config:
    cfg = _base_cfg()
    cfg.update(units=128, hidden_size=512, num_heads=4, num_enc_layers=2, num_dec_layers=2, max_length=256)
    return cfg


class TransformerModel(HybridBlock):
    """Encoder-decoder Transformer.

    Parameters
    ----------
    cfg : Config
        From :meth:`get_cfg`; keys as in :func:`transformer_en_de_512`.
        ``shared_embed`` needs ``src_vocab_size == tgt_vocab_size``.

    Call
    ----
    ``model(src_ids (B, S), src_valid_length (B,), tgt_ids (B, T))`` returns
    the next-token logits ``(B, T, tgt_vocab_size)`` (teacher forcing: position
    t sees target tokens 0..t).
    """

    dynamic_axes = {
        "src_ids": {0: "batch", 1: "src_seq"},
        "src_valid_length": {0: "batch"},
        "tgt_ids": {0: "batch", 1: "tgt_seq"},
    }
    output_names = ("logits",)

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = c = Config(cfg).freeze()
        if c.shared_embed and c.src_vocab_size != c.tgt_vocab_size:
            raise ValueError(
                f"shared_embed needs one vocabulary, got src {c.src_vocab_size} and tgt {c.tgt_vocab_size}"
            )
        self.src_embed = nn.Embedding(c.src_vocab_size, c.units, padding_idx=c.pad_id)
        self.tgt_embed = self.src_embed if c.shared_embed else nn.Embedding(c.tgt_vocab_size, c.units, padding_idx=c.pad_id)
        self.position = SinusoidalPositionalEmbedding(c.units, c.max_length)
        self.embed_dropout = nn.Dropout(c.dropout)
        layer_args = (c.units, c.hidden_size, c.num_heads, c.dropout, c.attention_dropout, c.activation, c.pre_norm, c.layer_norm_eps)
        self.encoder = nn.ModuleList(TransformerEncoderLayer(*layer_args) for _ in range(c.num_enc_layers))
        self.decoder = nn.ModuleList(TransformerDecoderLayer(*layer_args) for _ in range(c.num_dec_layers))
        # Pre-norm stacks end with a LayerNorm; post-norm layers already end normalised.
        self.enc_norm = nn.LayerNorm(c.units, eps=c.layer_norm_eps) if c.pre_norm else nn.Identity()
        self.dec_norm = nn.LayerNorm(c.units, eps=c.layer_norm_eps) if c.pre_norm else nn.Identity()
        self.out_proj = nn.Linear(c.units, c.tgt_vocab_size, bias=False)
        init_xavier(self)
        if c.tie_weights:
            self.out_proj.weight = self.tgt_embed.weight
        self.embed_scale = math.sqrt(c.units) if c.scale_embed else 1.0
        self.metadata.update(
            task="translation",
            src_vocab_size=c.src_vocab_size,
            tgt_vocab_size=c.tgt_vocab_size,
            pad_id=c.pad_id,
            bos_id=c.bos_id,
            eos_id=c.eos_id,
        )

    @classmethod
    def get_cfg(cls, name: str = "transformer_en_de_512") -> Config:
        """A registered config (``transformer_en_de_512``, ``transformer_small``, ``transformer_tiny``)."""
        return transformer_cfg_reg.get(name)

    @classmethod
    def from_cfg(cls, cfg: Config) -> "TransformerModel":
        return cls(cfg)

    def example_inputs(self, batch_size: int = 2, src_length: int = 7, tgt_length: int = 5):
        gen = torch.Generator().manual_seed(0)
        src = torch.randint(4, self.cfg.src_vocab_size, (batch_size, src_length), generator=gen)
        valid = torch.full((batch_size,), src_length, dtype=torch.long)
        valid[-1] = max(1, src_length - 2)
        tgt = torch.randint(4, self.cfg.tgt_vocab_size, (batch_size, tgt_length), generator=gen)
        return src, valid, tgt

    # ----------------------------------------------------------------- pieces
    def _embed(self, embed: nn.Embedding, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.embed_dropout(embed(ids) * self.embed_scale + self.position(positions))

    def encode(self, src_ids: torch.Tensor, src_valid_length: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder output ``(B, S, units)`` and the source mask ``(B, 1, S)`` (True = real token)."""
        length = src_ids.shape[1]
        mask = valid_length_mask(src_valid_length, length).unsqueeze(1)
        x = self._embed(self.src_embed, src_ids, torch.arange(length, device=src_ids.device))
        for layer in self.encoder:
            x = layer(x, mask)
        return self.enc_norm(x), mask

    def decode_seq(self, tgt_ids: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor) -> torch.Tensor:
        """Teacher-forced decoder logits ``(B, T, V)``."""
        length = tgt_ids.shape[1]
        x = self._embed(self.tgt_embed, tgt_ids, torch.arange(length, device=tgt_ids.device))
        self_mask = causal_mask(length, tgt_ids.device)
        for layer in self.decoder:
            x = layer(x, layer.cross_attention.project_kv(memory), self_mask, memory_mask)
        return self.out_proj(self.dec_norm(x))

    def forward(self, src_ids: torch.Tensor, src_valid_length: torch.Tensor, tgt_ids: torch.Tensor) -> torch.Tensor:
        memory, mask = self.encode(src_ids, src_valid_length)
        return self.decode_seq(tgt_ids, memory, mask)

    # ----------------------------------------------------------------- incremental decoding
    def init_states(self, src_ids: torch.Tensor, src_valid_length: torch.Tensor) -> dict[str, Any]:
        """Decoder states for :meth:`decode_step`, every tensor with the batch on dim 0."""
        if src_ids.dim() != 2 or src_ids.shape[1] == 0:
            raise ValueError(f"src_ids must be a non-empty (batch, seq) tensor, got shape {tuple(src_ids.shape)}")
        memory, mask = self.encode(src_ids, src_valid_length)
        batch = src_ids.shape[0]
        heads, head_dim = self.cfg.num_heads, self.cfg.units // self.cfg.num_heads
        empty = memory.new_zeros(batch, heads, 0, head_dim)
        return {
            "memory_kv": [layer.cross_attention.project_kv(memory) for layer in self.decoder],
            "memory_mask": mask,
            "cache": [(empty, empty) for _ in self.decoder],
            "position": torch.zeros(batch, dtype=torch.long, device=src_ids.device),
        }

    def decode_step(self, step_input: torch.Tensor, states: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        """One decoding step: token ids ``(N,)`` -> log-probabilities ``(N, V)`` and new states."""
        position = states["position"]
        x = self._embed(self.tgt_embed, step_input.unsqueeze(1), position.unsqueeze(1))
        new_cache = []
        for layer, cache, memory_kv in zip(self.decoder, states["cache"], states["memory_kv"]):
            x, cache = layer.step(x, cache, memory_kv, states["memory_mask"])
            new_cache.append(cache)
        logits = self.out_proj(self.dec_norm(x[:, 0]))
        new_states = dict(states, cache=new_cache, position=position + 1)
        return F.log_softmax(logits.float(), dim=-1), new_states


def build_transformer(name: str, **kwargs: Any) -> TransformerModel:
    """Build the Transformer config ``name`` with config overrides (``src_vocab_size`` ...).

    ``vocab_size`` sets both vocabulary sizes.
    """
    if "vocab_size" in kwargs:
        size = kwargs.pop("vocab_size")
        kwargs.setdefault("src_vocab_size", size)
        kwargs.setdefault("tgt_vocab_size", size)
    return TransformerModel(transformer_cfg_reg.get(name).clone(**kwargs))


TRANSFORMER_FAMILY = ModelFamily(task="translation").register_configs(
    build_transformer, transformer_cfg_reg.list(), doc="Transformer {name} (see :func:`{build}`).")
