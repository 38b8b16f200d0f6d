"""BERT (Devlin et al. 2019): encoder, pooler, masked-LM head and task heads.

Names and sizes follow GluonNLP (``bert_12_768_12`` = BERT-base,
``bert_24_1024_16`` = BERT-large) plus small configurations for tests and
CPU fine-tuning (``bert_2_128_2``, ``bert_4_256_4``). The layer layout matches
the original BERT (post-norm, exact GELU, LayerNorm eps 1e-12), so weights of
a Hugging Face ``BertModel`` load one-to-one (:mod:`toolkit.nlp.convert`).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...nn import HybridBlock
from ...zoo import ModelFamily
from ..layers import TransformerEncoderLayer, get_activation, init_bert_weights
from .config import Config, ConfigRegistry

__all__ = [
    "bert_cfg_reg",
    "BertModel",
    "BertMLMHead",
    "BertForPretraining",
    "BertForMaskedLM",
    "BertForSequenceClassification",
    "BertForQuestionAnswering",
]

bert_cfg_reg = ConfigRegistry("bert")


def _base_cfg() -> Config:
    return Config(
        vocab_size=30522,
        units=768,
        hidden_size=3072,
        num_layers=12,
        num_heads=12,
        max_length=512,
        num_token_types=2,
        dropout=0.1,
        attention_dropout=0.1,
        activation="gelu",
        layer_norm_eps=1e-12,
        pad_id=0,
        initializer_range=0.02,
    )


@bert_cfg_reg.register
def bert_12_768_12() -> Config:
    return _base_cfg()


@bert_cfg_reg.register
def bert_24_1024_16() -> Config:
    cfg = _base_cfg()
    cfg.update(units=1024, hidden_size=4096, num_layers=24, num_heads=16)
    return cfg


@bert_cfg_reg.register
def bert_4_256_4() -> Config:
    cfg = _base_cfg()
    cfg.update(units=256, hidden_size=1024, num_layers=4, num_heads=4)
    return cfg


@bert_cfg_reg.register
def bert_2_128_2() -> Config:
    cfg = _base_cfg()
    cfg.update(units=128, hidden_size=512, num_layers=2, num_heads=2)
    return cfg


@bert_cfg_reg.register
def bert_6_384_12() -> Config:
    """MiniLM-L6-H384's sizes (e.g. sentence-transformers' all-MiniLM-L6-v2)."""
    cfg = _base_cfg()
    cfg.update(units=384, hidden_size=1536, num_layers=6, num_heads=12)
    return cfg


def _is_exporting() -> bool:
    fn = getattr(torch.compiler, "is_exporting", None)
    return bool(fn and fn()) or torch.compiler.is_compiling()


def _check_ids(input_ids: torch.Tensor, max_length: int) -> None:
    # Clear errors in eager mode; under capture the checks would become guards
    # that pin the dynamic sequence length, so they are skipped there.
    if _is_exporting():
        return
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be (batch, seq), got shape {tuple(input_ids.shape)}")
    if input_ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"input_ids must be an integer tensor, got {input_ids.dtype}")
    if input_ids.shape[1] == 0:
        raise ValueError("input_ids is an empty sequence (length 0)")
    if input_ids.shape[1] > max_length:
        raise ValueError(f"sequence length {input_ids.shape[1]} exceeds the model's max_length {max_length}")


class _BertBase(HybridBlock):
    dynamic_axes = {0: "batch", 1: "seq"}
    cfg_reg = bert_cfg_reg

    @classmethod
    def get_cfg(cls, name: str = "bert_12_768_12") -> Config:
        """A registered config (``bert_12_768_12``, ``bert_2_128_2`` ...)."""
        return bert_cfg_reg.get(name)

    def example_inputs(self, batch_size: int = 2, seq_length: int = 8) -> tuple[torch.Tensor, ...]:
        gen = torch.Generator().manual_seed(0)
        vocab = self.cfg.vocab_size
        ids = torch.randint(1, vocab, (batch_size, seq_length), generator=gen)
        types = torch.zeros_like(ids)
        types[:, seq_length // 2 :] = 1
        mask = torch.ones_like(ids)
        mask[-1, seq_length - 2 :] = 0  # one padded sample
        return ids, types, mask


class BertModel(_BertBase):
    """The BERT encoder with the pooler.

    Parameters
    ----------
    cfg : Config
        From :meth:`get_cfg` (keys: ``vocab_size``, ``units``, ``hidden_size``,
        ``num_layers``, ``num_heads``, ``max_length``, ``num_token_types``,
        ``dropout``, ``attention_dropout``, ``activation``, ``layer_norm_eps``).

    Call
    ----
    ``model(input_ids, token_type_ids=None, attention_mask=None)`` with
    ``(B, L)`` integer tensors (``attention_mask`` 1 for real tokens, 0 for
    padding) returns ``(sequence_output (B, L, units), pooled_output (B, units))``.
    """

    output_names = ("sequence_output", "pooled_output")

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = Config(cfg).freeze()
        c = self.cfg
        self.word_embed = nn.Embedding(c.vocab_size, c.units, padding_idx=c.pad_id)
        self.token_type_embed = nn.Embedding(c.num_token_types, c.units)
        self.position_embed = nn.Embedding(c.max_length, c.units)
        self.embed_norm = nn.LayerNorm(c.units, eps=c.layer_norm_eps)
        self.embed_dropout = nn.Dropout(c.dropout)
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(
                c.units, c.hidden_size, c.num_heads, c.dropout, c.attention_dropout, c.activation,
                pre_norm=False, layer_norm_eps=c.layer_norm_eps,
            )
            for _ in range(c.num_layers)
        )
        self.pooler = nn.Linear(c.units, c.units)
        init_bert_weights(self, c.initializer_range)
        self.metadata.update(task="bert", vocab_size=c.vocab_size, pad_id=c.pad_id, max_length=c.max_length)

    @classmethod
    def from_cfg(cls, cfg: Config) -> "BertModel":
        return cls(cfg)

    def encode(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The sequence output ``(B, L, units)`` only."""
        _check_ids(input_ids, self.cfg.max_length)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.word_embed(input_ids) + self.token_type_embed(token_type_ids) + self.position_embed(positions)
        x = self.embed_dropout(self.embed_norm(x))
        mask = None if attention_mask is None else (attention_mask != 0).unsqueeze(1)
        for layer in self.layers:
            x = layer(x, mask)
        return x

    def pool(self, sequence_output: torch.Tensor) -> torch.Tensor:
        """tanh(dense(first token)): the ``[CLS]`` summary used by sentence-level heads."""
        return torch.tanh(self.pooler(sequence_output[:, 0]))

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        seq = self.encode(input_ids, token_type_ids, attention_mask)
        return seq, self.pool(seq)


class BertMLMHead(nn.Module):
    """Masked-LM head: dense + GELU + LayerNorm, then the (tied) word embedding as decoder."""

    def __init__(self, cfg: Config, word_embed: nn.Embedding) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.units, cfg.units)
        self.activation = get_activation(cfg.activation)
        self.norm = nn.LayerNorm(cfg.units, eps=cfg.layer_norm_eps)
        self.decoder = nn.Linear(cfg.units, cfg.vocab_size)
        self.decoder.weight = word_embed.weight  # tied as in BERT

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.norm(self.activation(self.dense(x))))


class BertForPretraining(_BertBase):
    """BERT with the masked-LM and next-sentence heads.

    Returns ``(mlm_logits (B, L, V), nsp_logits (B, 2))``; with
    ``masked_positions`` ``(B, P)`` the MLM logits are only computed there ``(B, P, V)``.
    """

    output_names = ("mlm_logits", "nsp_logits")

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.backbone = BertModel(cfg)
        self.cfg = self.backbone.cfg
        self.mlm = BertMLMHead(self.cfg, self.backbone.word_embed)
        self.nsp = nn.Linear(self.cfg.units, 2)
        init_bert_weights(self.mlm.dense, self.cfg.initializer_range)
        nn.init.zeros_(self.mlm.decoder.bias)
        self.metadata.update(self.backbone.metadata)

    @classmethod
    def from_cfg(cls, cfg: Config) -> "BertForPretraining":
        return cls(cfg)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, masked_positions=None):
        seq, pooled = self.backbone(input_ids, token_type_ids, attention_mask)
        if masked_positions is not None:
            seq = torch.gather(seq, 1, masked_positions.unsqueeze(-1).expand(-1, -1, seq.shape[-1]))
        return self.mlm(seq), self.nsp(pooled)


class BertForMaskedLM(_BertBase):
    """BERT with the masked-LM head only; returns ``mlm_logits (B, L, V)``."""

    output_names = ("mlm_logits",)

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.backbone = BertModel(cfg)
        self.cfg = self.backbone.cfg
        self.mlm = BertMLMHead(self.cfg, self.backbone.word_embed)
        nn.init.zeros_(self.mlm.decoder.bias)
        self.metadata.update(self.backbone.metadata)

    @classmethod
    def from_cfg(cls, cfg: Config) -> "BertForMaskedLM":
        return cls(cfg)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        return self.mlm(self.backbone.encode(input_ids, token_type_ids, attention_mask))


class BertForSequenceClassification(_BertBase):
    """Sentence (pair) classification / regression from the pooled output.

    Parameters
    ----------
    cfg : Config
        Backbone config.
    num_classes : int
        Output size (1 for regression such as STS-B).
    classifier_dropout : float, optional
        Dropout before the classifier; default ``cfg.dropout``.
    """

    output_names = ("logits",)

    def __init__(self, cfg: Config, num_classes: int = 2, classifier_dropout: float | None = None) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.backbone = BertModel(cfg)
        self.cfg = self.backbone.cfg
        self.dropout = nn.Dropout(self.cfg.dropout if classifier_dropout is None else classifier_dropout)
        self.classifier = nn.Linear(self.cfg.units, num_classes)
        init_bert_weights(self.classifier, self.cfg.initializer_range)
        self.metadata.update(self.backbone.metadata, task="text_classification", num_classes=num_classes)

    @classmethod
    def from_cfg(cls, cfg: Config, **kwargs: Any) -> "BertForSequenceClassification":
        return cls(cfg, **kwargs)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        _, pooled = self.backbone(input_ids, token_type_ids, attention_mask)
        return self.classifier(self.dropout(pooled))


class BertForQuestionAnswering(_BertBase):
    """Span QA (SQuAD): start and end logits per token.

    Positions where ``attention_mask`` is 0 get a very low logit so that a
    span never starts or ends in padding. Returns ``(start_logits, end_logits)``, each ``(B, L)``.
    """

    output_names = ("start_logits", "end_logits")

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.backbone = BertModel(cfg)
        self.cfg = self.backbone.cfg
        self.span = nn.Linear(self.cfg.units, 2)
        init_bert_weights(self.span, self.cfg.initializer_range)
        self.metadata.update(self.backbone.metadata, task="question_answering")

    @classmethod
    def from_cfg(cls, cfg: Config) -> "BertForQuestionAnswering":
        return cls(cfg)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        seq = self.backbone.encode(input_ids, token_type_ids, attention_mask)
        logits = self.span(seq)
        start, end = logits[..., 0], logits[..., 1]
        if attention_mask is not None:
            low = torch.full((), -1e4, dtype=start.dtype, device=start.device)
            valid = attention_mask != 0
            start = torch.where(valid, start, low)
            end = torch.where(valid, end, low)
        return start, end


_HEADS = {
    None: BertModel,
    "pretrain": BertForPretraining,
    "mlm": BertForMaskedLM,
    "classification": BertForSequenceClassification,
    "qa": BertForQuestionAnswering,
}


def build_bert(name: str, head: str | None = None, **kwargs: Any) -> HybridBlock:
    """Build a BERT config ``name`` with an optional task ``head``.

    Parameters
    ----------
    name : str
        A config of :data:`bert_cfg_reg`.
    head : {None, "pretrain", "mlm", "classification", "qa"}
        ``None`` gives the bare :class:`BertModel`.
    **kwargs
        Config overrides (``vocab_size``, ``dropout`` ...) and, for
        ``classification``, ``num_classes`` / ``classifier_dropout``.
    """
    if head not in _HEADS:
        raise ValueError(f"unknown BERT head {head!r}; choose from {list(_HEADS)}")
    head_kwargs = {k: kwargs.pop(k) for k in ("num_classes", "classifier_dropout") if k in kwargs}
    if head_kwargs and head != "classification":
        raise ValueError(f"{sorted(head_kwargs)} only apply to head='classification'")
    cfg = bert_cfg_reg.get(name).clone(**kwargs)
    return _HEADS[head](cfg, **head_kwargs)


BERT_FAMILY = ModelFamily(task="bert").register_configs(
    build_bert, bert_cfg_reg.list(), doc="BERT {name} (see :func:`{build}` for ``head`` and overrides).")
