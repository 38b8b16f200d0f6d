"""LSTM language models: GluonNLP's ``standard_lstm_lm_*`` and ``awd_lstm_lm_*``.

``StandardRNN`` (Zaremba et al. 2014): embedding, stacked LSTM, dropout,
output layer tied to the embedding. ``AWDRNN`` (Merity et al. 2017) adds
DropConnect on the hidden-to-hidden weights ("weight drop"), embedding
(word) dropout and variational (locked) dropout on the inputs, between
layers and on the output. Sizes and dropout rates are GluonNLP 0.10's.

Every layer is its own ``nn.LSTM`` so that the states are a list of
``(h, c)`` pairs with the batch on dim 0, the layout the searchers of
:mod:`toolkit.nlp.decoding` reorder; :meth:`LSTMLanguageModel.decode_step`
follows their decoder interface, so text can be sampled from the model.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ...nn import HybridBlock
from ...zoo import ModelFamily
from .config import Config, ConfigRegistry

__all__ = ["lm_cfg_reg", "LSTMLanguageModel", "StandardRNN", "AWDRNN", "build_language_model"]

lm_cfg_reg = ConfigRegistry("language_model")

State = list[tuple[torch.Tensor, torch.Tensor]]


def _cfg(**kw: Any) -> Config:
    base = dict(vocab_size=33278, tie_weights=True, weight_drop=0.0, drop_h=0.0, drop_i=0.0, drop_e=0.0, awd=False)
    base.update(kw)
    return Config(base)


@lm_cfg_reg.register
def standard_lstm_lm_200() -> Config:
    return _cfg(embed_size=200, hidden_size=200, num_layers=2, dropout=0.2)


@lm_cfg_reg.register
def standard_lstm_lm_650() -> Config:
    return _cfg(embed_size=650, hidden_size=650, num_layers=2, dropout=0.5)


@lm_cfg_reg.register
def standard_lstm_lm_1500() -> Config:
    return _cfg(embed_size=1500, hidden_size=1500, num_layers=2, dropout=0.65)


@lm_cfg_reg.register
def awd_lstm_lm_1150() -> Config:
    return _cfg(embed_size=400, hidden_size=1150, num_layers=3, dropout=0.4, weight_drop=0.5,
                drop_h=0.2, drop_i=0.65, drop_e=0.1, awd=True)


@lm_cfg_reg.register
def awd_lstm_lm_600() -> Config:
    return _cfg(embed_size=200, hidden_size=600, num_layers=3, dropout=0.2, weight_drop=0.2,
                drop_h=0.1, drop_i=0.3, drop_e=0.05, awd=True)


def locked_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Variational dropout on ``(B, L, C)``: one mask per sequence, shared over time."""
    if not training or p == 0.0:
        return x
    mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1 - p) / (1 - p)
    return x * mask


class LSTMLanguageModel(HybridBlock):
    """Word-level LSTM language model.

    Parameters
    ----------
    cfg : Config
        Keys: ``vocab_size``, ``embed_size``, ``hidden_size``, ``num_layers``,
        ``dropout``, ``tie_weights``, and for AWD ``weight_drop``, ``drop_h``,
        ``drop_i``, ``drop_e``.

    Call
    ----
    ``model(inputs (B, L), states=None)`` returns ``(logits (B, L, V), states)``
    where ``states`` is a list (one per layer) of ``(h, c)``, each ``(B, H)``;
    pass them back in for truncated back-propagation through time.
    """

    # No dynamic axes: the graph torch.export captures for nn.LSTM is specialised to the
    # traced batch and sequence sizes (a runtime guard, not a range), so each input shape
    # gets its own capture and an exported graph takes the example's shape.
    dynamic_axes: dict = {}

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = c = Config(cfg).freeze()
        if c.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {c.num_layers}")
        # Exported graph outputs: the logits, then the final (h, c) of every layer.
        self.output_names = ["logits"] + [f"{k}{i}" for i in range(c.num_layers) for k in ("h", "c")]
        self.embedding = nn.Embedding(c.vocab_size, c.embed_size)
        sizes = [c.embed_size] + [c.hidden_size] * (c.num_layers - 1)
        # With tied weights the last layer must emit embed_size features (AWD-LSTM's choice).
        outs = [c.hidden_size] * (c.num_layers - 1) + [c.embed_size if c.tie_weights else c.hidden_size]
        self.rnns = nn.ModuleList(nn.LSTM(i, o, batch_first=True) for i, o in zip(sizes, outs))
        self.decoder = nn.Linear(outs[-1], c.vocab_size)
        if c.tie_weights:
            self.decoder.weight = self.embedding.weight
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        self.metadata.update(task="language_model", vocab_size=c.vocab_size)

    @classmethod
    def get_cfg(cls, name: str = "standard_lstm_lm_200") -> Config:
        return lm_cfg_reg.get(name)

    @classmethod
    def from_cfg(cls, cfg: Config) -> "LSTMLanguageModel":
        return cls(cfg)

    def example_inputs(self, batch_size: int = 2, seq_length: int = 6) -> tuple[torch.Tensor]:
        gen = torch.Generator().manual_seed(0)
        return (torch.randint(0, self.cfg.vocab_size, (batch_size, seq_length), generator=gen),)

    def begin_state(self, batch_size: int, device: torch.device | None = None) -> State:
        """Zero states for ``batch_size`` sequences."""
        return [
            (torch.zeros(batch_size, rnn.hidden_size, device=device), torch.zeros(batch_size, rnn.hidden_size, device=device))
            for rnn in self.rnns
        ]

    def _embedding_weight(self) -> torch.Tensor:
        w = self.embedding.weight
        p = self.cfg.drop_e
        if self.training and p > 0:
            # Word dropout: whole rows of the embedding are zeroed for this batch.
            w = w * (w.new_empty(w.shape[0], 1).bernoulli_(1 - p) / (1 - p))
        return w

    def _run_rnn(self, rnn: nn.LSTM, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        hc = (state[0].unsqueeze(0), state[1].unsqueeze(0))
        p = self.cfg.weight_drop
        if self.training and p > 0:
            # DropConnect on the recurrent weights, one mask per batch (Merity et al. 2017).
            dropped = F.dropout(rnn.weight_hh_l0, p, training=True)
            out, (h, c) = functional_call(rnn, {"weight_hh_l0": dropped}, (x, hc), strict=False)
        else:
            out, (h, c) = rnn(x, hc)
        return out, (h[0], c[0])

    def forward(self, inputs: torch.Tensor, states: State | None = None) -> tuple[torch.Tensor, State]:
        if inputs.dim() != 2:
            raise ValueError(f"inputs must be (batch, seq) token ids, got shape {tuple(inputs.shape)}")
        if states is None:
            states = self.begin_state(inputs.shape[0], inputs.device)
        if len(states) != len(self.rnns):
            raise ValueError(f"{len(states)} states given for {len(self.rnns)} layers")
        c = self.cfg
        x = F.embedding(inputs, self._embedding_weight())
        x = locked_dropout(x, c.drop_i, self.training) if c.awd else F.dropout(x, c.dropout, self.training)
        new_states: State = []
        for i, (rnn, state) in enumerate(zip(self.rnns, states)):
            x, state = self._run_rnn(rnn, x, state)
            new_states.append(state)
            if i < len(self.rnns) - 1:
                x = locked_dropout(x, c.drop_h, self.training) if c.awd else F.dropout(x, c.dropout, self.training)
        x = locked_dropout(x, c.dropout, self.training) if c.awd else F.dropout(x, c.dropout, self.training)
        return self.decoder(x), new_states

    def decode_step(self, step_input: torch.Tensor, states: State) -> tuple[torch.Tensor, State]:
        """Searcher interface: token ids ``(N,)`` -> log-probabilities ``(N, V)`` and new states."""
        logits, states = self(step_input.unsqueeze(1), states)
        return F.log_softmax(logits[:, 0].float(), dim=-1), states


class StandardRNN(LSTMLanguageModel):
    """GluonNLP's ``StandardRNN`` name for the plain LSTM language model."""


class AWDRNN(LSTMLanguageModel):
    """GluonNLP's ``AWDRNN`` name for the AWD-LSTM language model."""


def build_language_model(name: str, **kwargs: Any) -> LSTMLanguageModel:
    """Build the config ``name`` with overrides (``vocab_size``, ``dropout`` ...)."""
    cfg = lm_cfg_reg.get(name).clone(**kwargs)
    return (AWDRNN if cfg.awd else StandardRNN)(cfg)


LANGUAGE_MODEL_FAMILY = ModelFamily(task="language_model").register_configs(
    build_language_model, lm_cfg_reg.list(), doc="LSTM language model {name} (see :func:`{build}`).")
