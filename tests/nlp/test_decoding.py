import itertools
import math

import pytest
import torch

from toolkit.nlp.decoding import (
    BeamSearchSampler,
    BeamSearchScorer,
    GreedySearch,
    SequenceSampler,
    map_states,
)

BOS, EOS, A, B = 0, 1, 2, 3


def table_decoder(table):
    """Decoder whose next-token log-probs depend only on the previous token (a transition table)."""
    logt = torch.log(torch.tensor(table, dtype=torch.float32))

    def decoder(step_input, states):
        return logt[step_input], states
    return decoder


# From BOS: A 0.6, B 0.4. After A: EOS 0.5 (total 0.30). After B: EOS 0.9 (total 0.36).
MYOPIC = [[0.0, 0.0, 0.6, 0.4],
          [0.0, 1.0, 0.0, 0.0],
          [0.0, 0.5, 0.25, 0.25],
          [0.0, 0.9, 0.05, 0.05]]


class HistoryDecoder:
    """Random log-probs that depend on the whole prefix, tracked through nested states.

    The prefix id lives in the states (not in step_input), so a searcher that reorders
    states wrongly gets different numbers than the brute-force reference.
    """

    def __init__(self, vocab=4, max_len=3, seed=0):
        g = torch.Generator().manual_seed(seed)
        n = sum(vocab ** i for i in range(max_len + 2)) * 2
        self.table = torch.randn(n, vocab, generator=g).mul(2).log_softmax(-1)
        self.V = vocab

    def init_states(self, batch):
        # (prefix id, [unused leaf, started flag]): a nested structure with the batch on dim 0
        return {"prefix": (torch.zeros(batch, dtype=torch.long), [None, torch.zeros(batch, dtype=torch.bool)])}

    def prefix_id(self, tokens):
        h = 0
        for t in tokens:
            h = h * self.V + t + 1
        return h

    def __call__(self, step_input, states):
        prefix, (none, started) = states["prefix"]
        # the start token is not part of the prefix; every later step_input is
        prefix = torch.where(started, prefix * self.V + step_input + 1, prefix)
        return self.table[prefix], {"prefix": (prefix, [none, torch.ones_like(started)])}


def seq_logprob(dec, seq):
    """Summed log-prob of generated tokens `seq` under HistoryDecoder semantics."""
    total, prefix = 0.0, []
    for i, t in enumerate(seq):
        h = 0 if i == 0 else dec.prefix_id(prefix)
        total += dec.table[h, t].item()
        prefix.append(t)
    return total


def brute_force(dec, max_len, scorer):
    """All finished (ending in EOS) or truncated sequences, best first, by scorer value."""
    results = []
    for n in range(1, max_len + 1):
        for seq in itertools.product(range(dec.V), repeat=n):
            if EOS in seq[:-1] or (n < max_len and seq[-1] != EOS):
                continue
            lp = seq_logprob(dec, seq)
            results.append((scorer(torch.tensor(lp), n).item(), seq))
    return sorted(results, reverse=True)


def test_greedy_is_myopic_and_beam_is_not():
    dec = table_decoder(MYOPIC)
    inputs = torch.tensor([BOS])
    s, sc, vl = GreedySearch(dec, EOS, max_length=5)(inputs, None)
    assert s.shape == (1, 1, 3) and s[0, 0].tolist() == [BOS, A, EOS] and vl.tolist() == [[3]]
    assert sc.item() == pytest.approx(math.log(0.3), abs=1e-6)
    s, sc, vl = BeamSearchSampler(2, dec, EOS, 5, scorer=BeamSearchScorer(alpha=0.0))(inputs, None)
    assert s[0, 0].tolist() == [BOS, B, EOS] and sc[0, 0].item() == pytest.approx(math.log(0.36), abs=1e-6)
    assert sc[0, 0] > sc[0, 1] and vl[0].tolist() == [3, 3]


def test_beam_search_matches_brute_force_with_length_penalty():
    max_len, V = 3, 4
    for seed in range(3):
        dec = HistoryDecoder(V, max_len, seed)
        scorer = BeamSearchScorer(alpha=1.0, K=5.0)
        ref = brute_force(dec, max_len, scorer)
        # a beam wide enough to hold every sequence makes the search exact
        sampler = BeamSearchSampler(V ** max_len, dec, EOS, max_len, scorer=scorer)
        s, sc, vl = sampler(torch.tensor([BOS]), dec.init_states(1))
        got = [tuple(s[0, k, 1:vl[0, k]].tolist()) for k in range(len(ref))]
        assert got[0] == ref[0][1]
        assert sc[0, :len(ref)].tolist() == pytest.approx([r[0] for r in ref], abs=1e-5)
        # a small beam still returns valid, sorted, correctly scored hypotheses
        s, sc, vl = BeamSearchSampler(3, dec, EOS, max_len, scorer=scorer)(
            torch.tensor([BOS]), dec.init_states(1))
        assert sc[0].tolist() == sorted(sc[0].tolist(), reverse=True)
        for k in range(3):
            seq = s[0, k, 1:vl[0, k]].tolist()
            assert sc[0, k].item() == pytest.approx(scorer(torch.tensor(seq_logprob(dec, seq)), len(seq)).item(),
                                                    abs=1e-5)


def test_eos_max_length_and_padding():
    # a loop A->A never ends: max_length stops it; finished rows are padded with EOS
    table = [[0.0, 0.1, 0.9, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.01, 0.98, 0.01], [0.0, 0.9, 0.1, 0.0]]
    dec = table_decoder(table)
    s, _, vl = GreedySearch(dec, EOS, max_length=4)(torch.tensor([BOS, B]), None)
    assert s[0, 0].tolist() == [BOS, A, A, A, A] and vl[0, 0] == 5
    assert s[1, 0].tolist() == [B, EOS, EOS, EOS, EOS] and vl[1, 0] == 2
    s, _sc, vl = BeamSearchSampler(3, dec, EOS, 4)(torch.tensor([BOS, B]), None)
    assert s.shape == (2, 3, 5) and (vl <= 5).all()
    for b in range(2):
        for k in range(3):
            n = vl[b, k].item()
            assert (s[b, k, n:] == EOS).all()
            assert EOS not in s[b, k, 1:n - 1].tolist()


def test_batch_rows_are_independent():
    dec = HistoryDecoder(4, 3, seed=5)
    one = []
    for _ in range(3):
        one.append(BeamSearchSampler(4, dec, EOS, 3)(torch.tensor([BOS]), dec.init_states(1)))
    _s, sc, vl = BeamSearchSampler(4, dec, EOS, 3)(torch.tensor([BOS] * 3), dec.init_states(3))
    for b in range(3):
        assert torch.allclose(sc[b], one[b][1][0]) and torch.equal(vl[b], one[b][2][0])


def test_beam_size_one_equals_greedy():
    for seed in range(4):
        dec = HistoryDecoder(5, 4, seed)
        g = GreedySearch(dec, EOS, 4)(torch.tensor([BOS, BOS]), dec.init_states(2))
        b = BeamSearchSampler(1, dec, EOS, 4, scorer=BeamSearchScorer(alpha=0.0))(
            torch.tensor([BOS, BOS]), dec.init_states(2))
        L = min(g[0].shape[2], b[0].shape[2])
        assert torch.equal(g[0][..., :L], b[0][..., :L]) and torch.equal(g[2], b[2])
        assert torch.allclose(g[1], b[1])


def test_sampling_filters_seed_and_distribution():
    dec = table_decoder(MYOPIC)
    inputs = torch.tensor([BOS, BOS])
    # top_k=1 and a tiny top_p are greedy
    for kw in ({"top_k": 1}, {"top_p": 1e-4}):
        s, _, _ = SequenceSampler(3, dec, EOS, 5, seed=0, **kw)(inputs, None)
        assert (s[:, :, :3] == torch.tensor([BOS, A, EOS])).all()
    a = SequenceSampler(4, dec, EOS, 5, seed=123)(inputs, None)
    b = SequenceSampler(4, dec, EOS, 5, seed=123)(inputs, None)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    # empirical first-token frequencies follow the model (0.6 / 0.4)
    s, sc, _vl = SequenceSampler(2000, dec, EOS, 1, seed=1)(torch.tensor([BOS]), None)
    freq_a = (s[0, :, 1] == A).float().mean().item()
    assert abs(freq_a - 0.6) < 0.05
    # scores are the model's log-probs of the sampled tokens
    expect = torch.log(torch.tensor(MYOPIC))[BOS][s[0, :, 1]]
    assert torch.allclose(sc[0], expect)
    # temperature -> 0 concentrates on the mode; top_p=0.5 keeps only A (0.6 >= 0.5)
    s, _, _ = SequenceSampler(200, dec, EOS, 1, temperature=0.05, seed=2)(torch.tensor([BOS]), None)
    assert (s[0, :, 1] == A).all()
    s, _, _ = SequenceSampler(200, dec, EOS, 1, top_p=0.5, seed=3)(torch.tensor([BOS]), None)
    assert (s[0, :, 1] == A).all()
    s, _, _ = SequenceSampler(200, dec, EOS, 1, top_p=0.7, seed=3)(torch.tensor([BOS]), None)
    assert set(s[0, :, 1].tolist()) == {A, B}


def test_map_states_and_errors():
    st = {"a": (torch.arange(3), [None, torch.ones(3, 2)]), "n": 5}
    out = map_states(st, lambda t: t * 2)
    assert out["a"][0].tolist() == [0, 2, 4] and out["a"][1][0] is None and out["n"] == 5
    dec = table_decoder(MYOPIC)
    with pytest.raises(ValueError, match="1-D integer"):
        GreedySearch(dec, EOS, 3)(torch.tensor([[0]]), None)
    with pytest.raises(ValueError, match="empty"):
        GreedySearch(dec, EOS, 3)(torch.tensor([], dtype=torch.long), None)
    with pytest.raises(ValueError, match="max_length"):
        GreedySearch(dec, EOS, 0)
    with pytest.raises(ValueError, match="beam_size"):
        BeamSearchSampler(0, dec, EOS, 3)
    with pytest.raises(ValueError, match="top_p"):
        SequenceSampler(1, dec, EOS, 3, top_p=1.5)
    with pytest.raises(ValueError, match="log_probs of shape"):
        GreedySearch(lambda x, s: (torch.zeros(5), s), EOS, 3)(torch.tensor([0]), None)
    with pytest.raises(ValueError, match="outside the decoder"):
        BeamSearchSampler(2, dec, 9, 3)(torch.tensor([0]), None)
