"""Layers shared by the text models: attention, feed-forward, Transformer layers.

Everything here is plain PyTorch that ``torch.export`` captures with dynamic
batch and sequence sizes (no Python branching on tensor values), so the models
built from these layers hybridize and export to ONNX.

Masks follow one convention throughout: a boolean tensor where ``True`` means
"may attend". Attention uses :func:`torch.nn.functional.scaled_dot_product_attention`
(the fused kernel of PyTorch) with an additive float mask built from it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "MultiHeadAttention",
    "PositionwiseFFN",
    "SinusoidalPositionalEmbedding",
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "get_activation",
    "valid_length_mask",
    "causal_mask",
]


def get_activation(name: str) -> nn.Module:
    """Activation module by name: ``relu``, ``gelu`` (exact, erf), ``gelu_tanh``, ``tanh``."""
    table = {
        "relu": nn.ReLU,
        "gelu": nn.GELU,
        "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
        "tanh": nn.Tanh,
    }
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(table)}")
    return table[name]()


def valid_length_mask(valid_length: torch.Tensor, max_length: int | torch.SymInt) -> torch.Tensor:
    """Boolean ``(B, L)`` mask, ``True`` for positions ``< valid_length``."""
    steps = torch.arange(max_length, device=valid_length.device)
    return steps.unsqueeze(0) < valid_length.unsqueeze(1)


def causal_mask(length: int | torch.SymInt, device: torch.device | None = None) -> torch.Tensor:
    """Boolean ``(1, L, L)`` lower-triangular mask: position i may attend to j <= i."""
    steps = torch.arange(length, device=device)
    return (steps.unsqueeze(1) >= steps.unsqueeze(0)).unsqueeze(0)


def _additive(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    # A large finite negative (not -inf) keeps rows that mask every key finite
    # (uniform attention) instead of NaN, as BERT implementations do.
    if mask is None:
        return None
    zero = torch.zeros((), dtype=dtype, device=mask.device)
    low = torch.full((), torch.finfo(dtype).min, dtype=dtype, device=mask.device)
    return torch.where(mask, zero, low)


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention with separate Q/K/V projections.

    Parameters
    ----------
    units : int
        Model width (query, key, value and output size).
    num_heads : int
        Number of heads; must divide ``units``.
    dropout : float
        Dropout on the attention weights (training only).
    bias : bool
        Whether the projections have a bias.
    """

    def __init__(self, units: int, num_heads: int, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        if units % num_heads:
            raise ValueError(f"units={units} is not divisible by num_heads={num_heads}")
        self.units = units
        self.num_heads = num_heads
        self.head_dim = units // num_heads
        self.dropout = dropout
        self.query = nn.Linear(units, units, bias=bias)
        self.key = nn.Linear(units, units, bias=bias)
        self.value = nn.Linear(units, units, bias=bias)
        self.out = nn.Linear(units, units, bias=bias)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        # (B, L, C) -> (B, H, L, D)
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)

    def project_kv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of ``x`` ``(B, L, C)`` as ``(B, H, L, D)`` tensors (cacheable)."""
        return self._heads(self.key(x)), self._heads(self.value(x))

    def attend(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Attention of ``query`` ``(B, Lq, C)`` over projected ``key``/``value``.

        ``mask`` is a 3-D boolean tensor broadcastable to ``(B, Lq, Lk)``,
        ``True`` = attend.
        """
        if mask is not None and mask.dim() != 3:
            raise ValueError(f"attention mask must be 3-D (B, Lq, Lk), got shape {tuple(mask.shape)}")
        q = self._heads(self.query(query))
        attn_mask = None if mask is None else _additive(mask.unsqueeze(1), q.dtype)
        out = F.scaled_dot_product_attention(
            q, key, value, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out(out.transpose(1, 2).flatten(2))

    def forward(
        self, query: torch.Tensor, memory: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Attend from ``query`` to ``memory`` (self-attention when ``memory`` is None)."""
        k, v = self.project_kv(query if memory is None else memory)
        return self.attend(query, k, v, mask)


class PositionwiseFFN(nn.Module):
    """Two dense layers with an activation: ``units -> hidden_size -> units``."""

    def __init__(self, units: int, hidden_size: int, dropout: float = 0.0, activation: str = "relu") -> None:
        super().__init__()
        self.ffn_1 = nn.Linear(units, hidden_size)
        self.activation = get_activation(activation)
        self.ffn_2 = nn.Linear(hidden_size, units)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.ffn_2(self.activation(self.ffn_1(x))))


class SinusoidalPositionalEmbedding(nn.Module):
    """Fixed sin/cos position codes (Vaswani et al. 2017), interleaved as in GluonNLP 0.x.

    Parameters
    ----------
    units : int
        Embedding width.
    max_length : int
        Longest position supported; longer inputs raise an error.
    """

    def __init__(self, units: int, max_length: int = 1024) -> None:
        super().__init__()
        position = torch.arange(max_length, dtype=torch.float64).unsqueeze(1)
        rate = torch.pow(10000.0, 2 * (torch.arange(units) // 2).double() / units)
        angle = position / rate
        table = torch.zeros(max_length, units, dtype=torch.float64)
        table[:, 0::2] = torch.sin(angle[:, 0::2])
        table[:, 1::2] = torch.cos(angle[:, 1::2])
        self.max_length = max_length
        self.register_buffer("table", table.float(), persistent=False)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        """Codes of integer ``positions`` (any shape) -> ``(*shape, units)``."""
        return F.embedding(positions, self.table)


class TransformerEncoderLayer(nn.Module):
    """Self-attention + feed-forward, each with residual, dropout and LayerNorm.

    ``pre_norm=False`` is the original post-norm layer (BERT, GluonNLP 0.x
    Transformer); ``pre_norm=True`` normalises before each sub-layer.
    """

    def __init__(
        self,
        units: int,
        hidden_size: int,
        num_heads: int,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        activation: str = "relu",
        pre_norm: bool = False,
        layer_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        self.attention = MultiHeadAttention(units, num_heads, attention_dropout)
        self.attention_dropout = nn.Dropout(dropout)
        self.attention_norm = nn.LayerNorm(units, eps=layer_norm_eps)
        self.ffn = PositionwiseFFN(units, hidden_size, dropout, activation)
        self.ffn_norm = nn.LayerNorm(units, eps=layer_norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(B, L, C)``; ``mask`` boolean broadcastable to ``(B, L, L)``."""
        if self.pre_norm:
            x = x + self.attention_dropout(self.attention(self.attention_norm(x), mask=mask))
            return x + self.ffn(self.ffn_norm(x))
        x = self.attention_norm(x + self.attention_dropout(self.attention(x, mask=mask)))
        return self.ffn_norm(x + self.ffn(x))


class TransformerDecoderLayer(nn.Module):
    """Causal self-attention, attention over the encoder memory, feed-forward.

    :meth:`forward` runs a whole target sequence (training, teacher forcing);
    :meth:`step` runs one new position against cached keys/values (decoding).
    """

    def __init__(
        self,
        units: int,
        hidden_size: int,
        num_heads: int,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        activation: str = "relu",
        pre_norm: bool = False,
        layer_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        self.self_attention = MultiHeadAttention(units, num_heads, attention_dropout)
        self.self_norm = nn.LayerNorm(units, eps=layer_norm_eps)
        self.cross_attention = MultiHeadAttention(units, num_heads, attention_dropout)
        self.cross_norm = nn.LayerNorm(units, eps=layer_norm_eps)
        self.ffn = PositionwiseFFN(units, hidden_size, dropout, activation)
        self.ffn_norm = nn.LayerNorm(units, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)

    def _block(self, x, norm, fn):
        if self.pre_norm:
            return x + self.dropout(fn(norm(x)))
        return norm(x + self.dropout(fn(x)))

    def _ffn(self, x):
        if self.pre_norm:
            return x + self.ffn(self.ffn_norm(x))
        return self.ffn_norm(x + self.ffn(x))

    def forward(
        self,
        x: torch.Tensor,
        memory_kv: tuple[torch.Tensor, torch.Tensor],
        self_mask: torch.Tensor | None,
        memory_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """``x`` ``(B, T, C)``; ``memory_kv`` from ``cross_attention.project_kv(memory)``."""

        def self_att(h):
            k, v = self.self_attention.project_kv(h)
            return self.self_attention.attend(h, k, v, self_mask)

        x = self._block(x, self.self_norm, self_att)
        x = self._block(x, self.cross_norm, lambda h: self.cross_attention.attend(h, *memory_kv, memory_mask))
        return self._ffn(x)

    def step(
        self,
        x: torch.Tensor,
        cache: tuple[torch.Tensor, torch.Tensor],
        memory_kv: tuple[torch.Tensor, torch.Tensor],
        memory_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One position ``x`` ``(B, 1, C)``; ``cache`` holds keys/values ``(B, H, t, D)`` of earlier positions.

        Returns the output ``(B, 1, C)`` and the cache grown by one position.
        """
        new_cache: list[tuple[torch.Tensor, torch.Tensor]] = []

        def self_att(h):
            k, v = self.self_attention.project_kv(h)
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
            new_cache.append((k, v))
            return self.self_attention.attend(h, k, v, None)  # all earlier positions are visible

        x = self._block(x, self.self_norm, self_att)
        x = self._block(x, self.cross_norm, lambda h: self.cross_attention.attend(h, *memory_kv, memory_mask))
        return self._ffn(x), new_cache[0]


def init_bert_weights(module: nn.Module, std: float = 0.02) -> None:
    """BERT's initialisation: normal(0, std) weights, zero biases, unit LayerNorm."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=std)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def init_xavier(module: nn.Module) -> None:
    """Xavier-uniform dense weights, normal(0, units^-0.5) embeddings (Transformer)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=1.0 / math.sqrt(m.embedding_dim))
