"""Sequence generation: greedy search, beam search with length penalty, and sampling.

The searchers follow GluonNLP 0.x (``gluonnlp.model.BeamSearchSampler`` and
friends) and work with any step-wise decoder that follows one small interface::

    log_probs, new_states = decoder(step_input, states)

* ``step_input``: ``LongTensor[N]``, the previous token of each sequence;
* ``states``: any nesting of tuples, lists and dicts of tensors (``None`` and
  non-tensor leaves are passed through) whose tensors have the batch on dim 0;
  the searchers expand and reorder them with ``index_select`` on dim 0;
* ``log_probs``: ``FloatTensor[N, V]``, log-probabilities of the next token.

Every searcher's ``__call__(inputs, states)`` returns ``(samples, scores,
valid_length)``: ``samples`` is ``LongTensor[B, beam, L]`` whose first column
is ``inputs`` (the start token) and whose positions past ``valid_length`` are
filled with ``eos_id``; ``valid_length`` counts the start token and the
``eos`` token. ``max_length`` is the largest number of tokens generated after
the start token. Decoding runs under ``torch.no_grad()``.

Nothing here could be taken from torch or another maintained package: PyTorch
has no generic searcher, and ``transformers``' ``generate`` is tied to its own
model classes and cache objects.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["BeamSearchSampler", "BeamSearchScorer", "GreedySearch", "SequenceSampler", "map_states"]

Decoder = Callable[[Tensor, Any], tuple[Tensor, Any]]


def map_states(states: Any, fn: Callable[[Tensor], Tensor]) -> Any:
    """Apply ``fn`` to every tensor of a nested tuple/list/dict, keeping the structure."""
    if isinstance(states, Tensor):
        return fn(states)
    if isinstance(states, dict):
        return {k: map_states(v, fn) for k, v in states.items()}
    if isinstance(states, tuple) and hasattr(states, "_fields"):  # namedtuple
        return type(states)(*(map_states(v, fn) for v in states))
    if isinstance(states, (list, tuple)):
        return type(states)(map_states(v, fn) for v in states)
    return states


def _select(states: Any, index: Tensor) -> Any:
    return map_states(states, lambda t: t.index_select(0, index.to(t.device)))


def _check_inputs(inputs: Tensor) -> Tensor:
    if not isinstance(inputs, Tensor) or inputs.dim() != 1 or inputs.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"inputs must be a 1-D integer tensor [batch], got "
                         f"{getattr(inputs, 'shape', type(inputs).__name__)} "
                         f"{getattr(inputs, 'dtype', '')}")
    if inputs.numel() == 0:
        raise ValueError("inputs is empty: the batch needs at least one sequence")
    return inputs.long()


def _call_decoder(decoder: Decoder, step_input: Tensor, states: Any) -> tuple[Tensor, Any]:
    out = decoder(step_input, states)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ValueError("decoder must return a (log_probs, new_states) tuple")
    log_probs, new_states = out
    if not isinstance(log_probs, Tensor) or log_probs.dim() != 2 or log_probs.shape[0] != step_input.shape[0]:
        raise ValueError(f"decoder returned log_probs of shape {tuple(getattr(log_probs, 'shape', ()))}; "
                         f"expected [{step_input.shape[0]}, vocab_size]")
    return log_probs.float(), new_states


def _check_common(eos_id: int, max_length: int) -> None:
    if not isinstance(eos_id, int) or eos_id < 0:
        raise ValueError(f"eos_id must be a non-negative int, got {eos_id!r}")
    if not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"max_length must be a positive int, got {max_length!r}")


class BeamSearchScorer:
    """GNMT length-normalised score: ``sum_log_probs / ((K + length) / (K + 1)) ** alpha``.

    Parameters
    ----------
    alpha : float
        Strength of the length penalty; 0 ranks by the plain sum of log-probabilities.
    K : float
        Offset of the penalty (5 in Wu et al., 2016).
    """

    def __init__(self, alpha: float = 1.0, K: float = 5.0) -> None:
        if K <= -1:
            raise ValueError(f"K must be > -1, got {K}")
        self.alpha = float(alpha)
        self.K = float(K)

    def __call__(self, log_prob_sum: Tensor, length: Tensor | int) -> Tensor:
        """Score of sequences with ``length`` generated tokens (eos included) and summed log-probs."""
        if self.alpha == 0:
            return log_prob_sum
        if not isinstance(length, Tensor):
            length = torch.tensor(float(length), device=log_prob_sum.device)
        penalty = ((self.K + length.to(log_prob_sum.dtype)) / (self.K + 1.0)) ** self.alpha
        return log_prob_sum / penalty

    def __repr__(self) -> str:
        return f"BeamSearchScorer(alpha={self.alpha}, K={self.K})"


class GreedySearch:
    """Pick the most likely token at every step.

    ``scores`` are the summed log-probabilities of the generated tokens (no length penalty).
    """

    def __init__(self, decoder: Decoder, eos_id: int, max_length: int) -> None:
        _check_common(eos_id, max_length)
        self.decoder, self.eos_id, self.max_length = decoder, eos_id, max_length

    @torch.no_grad()
    def __call__(self, inputs: Tensor, states: Any) -> tuple[Tensor, Tensor, Tensor]:
        inputs = _check_inputs(inputs)
        batch = inputs.shape[0]
        device = inputs.device
        tokens = [inputs]
        scores = torch.zeros(batch, device=device)
        lengths = torch.ones(batch, dtype=torch.long, device=device)
        alive = torch.ones(batch, dtype=torch.bool, device=device)
        step_input = inputs
        for _ in range(self.max_length):
            log_probs, states = _call_decoder(self.decoder, step_input, states)
            tok = log_probs.argmax(-1)
            tok = torch.where(alive, tok, torch.full_like(tok, self.eos_id))
            scores += torch.where(alive, log_probs.gather(1, tok[:, None])[:, 0], 0.0)
            lengths += alive.long()
            alive &= tok != self.eos_id
            tokens.append(tok)
            step_input = tok
            if not bool(alive.any()):
                break
        samples = torch.stack(tokens, dim=1)
        return samples[:, None, :], scores[:, None], lengths[:, None]


class BeamSearchSampler:
    """Beam search with a length-normalising scorer, as GluonNLP 0.x's ``BeamSearchSampler``.

    A beam that emitted ``eos`` keeps its slot with its final score and
    competes with the growing beams under the scorer; the search stops when
    every beam of every batch element has finished or after ``max_length``
    steps. Beams are returned best first; ``scores`` are the scorer's values.

    Parameters
    ----------
    beam_size : int
    decoder : callable ``(step_input, states) -> (log_probs, new_states)``
    eos_id : int
    max_length : int
        Largest number of generated tokens.
    scorer : BeamSearchScorer
    """

    def __init__(self, beam_size: int, decoder: Decoder, eos_id: int, max_length: int,
                 scorer: BeamSearchScorer | None = None) -> None:
        if not isinstance(beam_size, int) or beam_size < 1:
            raise ValueError(f"beam_size must be a positive int, got {beam_size!r}")
        _check_common(eos_id, max_length)
        self.beam_size, self.decoder, self.eos_id, self.max_length = beam_size, decoder, eos_id, max_length
        self.scorer = scorer if scorer is not None else BeamSearchScorer()

    @torch.no_grad()
    def __call__(self, inputs: Tensor, states: Any) -> tuple[Tensor, Tensor, Tensor]:
        inputs = _check_inputs(inputs)
        B, K, eos = inputs.shape[0], self.beam_size, self.eos_id
        device = inputs.device
        expand = torch.arange(B, device=device).repeat_interleave(K)
        states = _select(states, expand)
        step_input = inputs[expand]
        samples = step_input.view(B, K, 1)
        neg_inf = torch.tensor(float("-inf"), device=device)
        log_sum = torch.zeros(B, K, device=device)
        log_sum[:, 1:] = neg_inf  # all beams start identical: keep only the first one
        lengths = torch.ones(B, K, dtype=torch.long, device=device)
        alive = torch.ones(B, K, dtype=torch.bool, device=device)
        batch_offset = (torch.arange(B, device=device) * K)[:, None]
        for step in range(self.max_length):
            log_probs, states = _call_decoder(self.decoder, step_input, states)
            V = log_probs.shape[1]
            if eos >= V:
                raise ValueError(f"eos_id {eos} is outside the decoder's vocabulary of {V}")
            cand_sum = log_sum[:, :, None] + log_probs.view(B, K, V)
            cand_score = self.scorer(cand_sum, step + 1)
            cand_score = torch.where(alive[:, :, None], cand_score, neg_inf)
            # A finished beam offers exactly one candidate: itself (padded with eos), at its final score.
            final = self.scorer(log_sum, lengths - 1)
            cand_score[:, :, eos] = torch.where(alive, cand_score[:, :, eos], final)
            _top_score, top_idx = cand_score.view(B, K * V).topk(K, dim=1)
            beam_idx, tok = top_idx // V, top_idx % V
            was_alive = alive.gather(1, beam_idx)
            log_sum = torch.where(was_alive, cand_sum.view(B, K * V).gather(1, top_idx), log_sum.gather(1, beam_idx))
            lengths = lengths.gather(1, beam_idx) + was_alive.long()
            alive = was_alive & (tok != eos)
            samples = torch.cat([samples.gather(1, beam_idx[:, :, None].expand(-1, -1, samples.shape[2])),
                                 tok[:, :, None]], dim=2)
            flat = (beam_idx + batch_offset).view(-1)
            states = _select(states, flat)
            step_input = tok.view(-1)
            if not bool(alive.any()):
                break
        scores = self.scorer(log_sum, lengths - 1)
        scores, order = scores.sort(dim=1, descending=True)
        samples = samples.gather(1, order[:, :, None].expand(-1, -1, samples.shape[2]))
        return samples, scores, lengths.gather(1, order)


class SequenceSampler:
    """Draw ``beam_size`` independent samples per input, with temperature, top-k and nucleus (top-p) filtering.

    ``scores`` are the summed log-probabilities of the sampled tokens under the
    decoder's own distribution (before temperature and filtering).

    Parameters
    ----------
    beam_size : int
        Samples per batch element.
    decoder, eos_id, max_length
        As for :class:`BeamSearchSampler`.
    temperature : float
        Divides the log-probabilities before sampling (< 1 sharpens).
    top_k : int, optional
        Sample only among the ``top_k`` most likely tokens.
    top_p : float, optional
        Sample only among the smallest set of tokens whose probability sums to ``top_p``.
    seed : int, optional
        Seeds this sampler's own generator, so a new sampler with the same seed
        draws the same samples; without it the global torch RNG is used.
    """

    def __init__(self, beam_size: int, decoder: Decoder, eos_id: int, max_length: int,
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 seed: int | None = None) -> None:
        if not isinstance(beam_size, int) or beam_size < 1:
            raise ValueError(f"beam_size must be a positive int, got {beam_size!r}")
        _check_common(eos_id, max_length)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k must be a positive int or None, got {top_k!r}")
        if top_p is not None and not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        self.beam_size, self.decoder, self.eos_id, self.max_length = beam_size, decoder, eos_id, max_length
        self.temperature, self.top_k, self.top_p, self.seed = float(temperature), top_k, top_p, seed
        self._generators: dict[str, torch.Generator] = {}

    def _generator(self, device: torch.device) -> torch.Generator | None:
        if self.seed is None:
            return None
        key = str(device)
        if key not in self._generators:
            gen = torch.Generator(device=device)
            gen.manual_seed(self.seed)
            self._generators[key] = gen
        return self._generators[key]

    def _filter(self, logits: Tensor) -> Tensor:
        if self.top_k is not None and self.top_k < logits.shape[1]:
            kth = logits.topk(self.top_k, dim=1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p is not None and self.top_p < 1:
            sorted_logits, order = logits.sort(dim=1, descending=True)
            probs = sorted_logits.softmax(dim=1)
            # Drop a token when the tokens before it already reach top_p (the first one is always kept).
            drop_sorted = (probs.cumsum(dim=1) - probs) >= self.top_p
            drop = torch.zeros_like(drop_sorted).scatter(1, order, drop_sorted)
            logits = logits.masked_fill(drop, float("-inf"))
        return logits

    @torch.no_grad()
    def __call__(self, inputs: Tensor, states: Any) -> tuple[Tensor, Tensor, Tensor]:
        inputs = _check_inputs(inputs)
        B, K, eos = inputs.shape[0], self.beam_size, self.eos_id
        device = inputs.device
        expand = torch.arange(B, device=device).repeat_interleave(K)
        states = _select(states, expand)
        step_input = inputs[expand]
        N = B * K
        tokens = [step_input]
        scores = torch.zeros(N, device=device)
        lengths = torch.ones(N, dtype=torch.long, device=device)
        alive = torch.ones(N, dtype=torch.bool, device=device)
        gen = self._generator(device)
        for _ in range(self.max_length):
            log_probs, states = _call_decoder(self.decoder, step_input, states)
            probs = self._filter(log_probs / self.temperature).softmax(dim=1)
            tok = torch.multinomial(probs, 1, generator=gen)[:, 0]
            tok = torch.where(alive, tok, torch.full_like(tok, eos))
            scores += torch.where(alive, log_probs.gather(1, tok[:, None])[:, 0], 0.0)
            lengths += alive.long()
            alive &= tok != eos
            tokens.append(tok)
            step_input = tok
            if not bool(alive.any()):
                break
        samples = torch.stack(tokens, dim=1).view(B, K, -1)
        return samples, scores.view(B, K), lengths.view(B, K)
