import math

import numpy as np
import pytest
import torch

from toolkit.nlp.metrics import (
    accuracy,
    bleu,
    confusion_matrix,
    f1,
    mcc,
    normalize_answer,
    perplexity,
    squad_em_f1,
)


def test_bleu():
    import sacrebleu
    hyps = ["the cat sat on the mat", "a quick brown fox jumps"]
    refs = ["the cat sat on the mat", "the quick brown fox jumped over"]
    assert bleu(hyps[:1], refs[:1]) == pytest.approx(100.0)
    assert bleu(hyps, refs) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    # several references per hypothesis: transposed into sacrebleu's reference streams
    multi = [["the cat sat on the mat", "a cat was on the mat"], ["a quick brown fox jumps", "foxes jump"]]
    assert bleu(hyps, multi) == pytest.approx(100.0)
    assert bleu(hyps, multi) > bleu(hyps, refs)
    assert bleu(["completely different words here"], ["the cat sat on the mat"]) < 10
    assert bleu(["The Cat"], ["the cat"], lowercase=True) == pytest.approx(bleu(["the cat"], ["the cat"]))
    with pytest.raises(ValueError, match="2 hypotheses but 1"):
        bleu(hyps, refs[:1])
    with pytest.raises(ValueError, match="same, non-zero number"):
        bleu(hyps, [["a"], ["b", "c"]])
    with pytest.raises(ValueError, match="empty"):
        bleu([], [])
    with pytest.raises(TypeError):
        bleu([["tok", "ens"]], ["tok ens"])


def test_squad():
    assert normalize_answer("  The  Denver Broncos! ") == "denver broncos"
    assert normalize_answer("an apple, a day") == "apple day"
    r = squad_em_f1({"q1": "the Denver Broncos", "q2": "Denver", "q3": "Paris"},
                    {"q1": ["Denver Broncos"], "q2": ["Denver Broncos", "Broncos"], "q3": ["London"]})
    # q1 exact; q2: P=1, R=1/2 vs first gold -> 2/3, vs second 0 -> 2/3; q3: 0
    assert r["exact_match"] == pytest.approx(100 / 3)
    assert r["f1"] == pytest.approx(100 * (1 + 2 / 3 + 0) / 3)
    # repeated tokens count with multiplicity
    r = squad_em_f1(["a b b b"], [["b b c"]])  # pred [b,b,b] gold [b,b,c]: common 2, P=R=2/3
    assert r["f1"] == pytest.approx(100 * 2 / 3)
    # SQuAD 2.0 unanswerable: only the empty answer is right
    r = squad_em_f1(["", "something"], [[], []])
    assert r["exact_match"] == 50.0 and r["f1"] == 50.0
    with pytest.raises(ValueError, match="no prediction"):
        squad_em_f1({}, {"q": ["a"]})
    with pytest.raises(TypeError):
        squad_em_f1(["a"], {"q": ["a"]})


def test_perplexity():
    assert perplexity(0.0, 10) == 1.0
    assert perplexity(10 * math.log(50), 10) == pytest.approx(50.0)
    with pytest.raises(ValueError):
        perplexity(1.0, 0)
    with pytest.raises(ValueError):
        perplexity(float("nan"), 3)


def test_classification_metrics():
    pred = [1, 1, 1, 0, 0, 1, 0]
    true = [1, 1, 0, 0, 0, 1, 1]  # tp=3 fp=1 fn=1 tn=2
    assert accuracy(pred, true) == pytest.approx(5 / 7)
    assert confusion_matrix(pred, true).tolist() == [[2, 1], [1, 3]]
    assert f1(pred, true) == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert f1(pred, true, pos_label=0) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert mcc(pred, true) == pytest.approx((3 * 2 - 1 * 1) / math.sqrt(4 * 4 * 3 * 3))
    # scores [N, C] are reduced with argmax; torch tensors work
    logits = torch.tensor([[0.1, 0.9], [2.0, -1.0]])
    assert accuracy(logits, torch.tensor([1, 0])) == 1.0
    # multi-class MCC equals the correlation of one-hot codes (an independent route)
    rng = np.random.default_rng(0)
    t = rng.integers(0, 3, 200)
    p = np.where(rng.random(200) < 0.6, t, rng.integers(0, 3, 200))
    X, Y = np.eye(3)[p], np.eye(3)[t]
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    ref = (Xc * Yc).sum() / math.sqrt((Xc * Xc).sum() * (Yc * Yc).sum())
    assert mcc(p, t) == pytest.approx(ref)
    assert f1(p, t, average="micro") == pytest.approx(accuracy(p, t))
    per = [f1(p, t, pos_label=c) for c in range(3)]
    assert f1(p, t, average="macro") == pytest.approx(sum(per) / 3)
    assert mcc([0, 0, 0], [0, 0, 0]) == 0.0  # undefined -> 0
    with pytest.raises(ValueError, match="3 predictions but 2"):
        accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="no samples"):
        accuracy([], [])
    with pytest.raises(ValueError, match="average"):
        f1(pred, true, average="weighted")
