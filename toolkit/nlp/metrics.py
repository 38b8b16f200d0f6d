"""Text metrics: corpus BLEU (sacrebleu), SQuAD EM/F1, perplexity, accuracy, F1 and MCC.

Classification metrics take class ids or scores (``[N, C]`` logits/probabilities,
reduced with argmax) as numpy arrays, torch tensors or lists. They are small
numpy functions over a confusion matrix, written here so the text half does
not need scikit-learn; the tests check them against hand-computed values.
"""
from __future__ import annotations

import collections
import math
import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "accuracy",
    "bleu",
    "confusion_matrix",
    "f1",
    "mcc",
    "normalize_answer",
    "perplexity",
    "squad_em_f1",
]


# --------------------------------------------------------------------------- BLEU
def bleu(hypotheses: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]],
         tokenize: str = "13a", lowercase: bool = False, smooth_method: str = "exp") -> float:
    """Corpus BLEU (0-100) computed by ``sacrebleu``.

    Parameters
    ----------
    hypotheses : list of str
        One detokenized system output per segment.
    references : list of str, or list of list of str
        For every hypothesis one reference string, or a list of references
        (all hypotheses must then have the same number of references).
    tokenize : str
        sacrebleu tokenizer: ``"13a"`` (WMT default), ``"intl"``, ``"zh"``,
        ``"char"``, or ``"none"`` for text that is already tokenized.
    lowercase : bool
    smooth_method : str
        sacrebleu smoothing (``"exp"``, ``"floor"``, ``"add-k"``, ``"none"``).
    """
    import sacrebleu  # imported here: sacrebleu is only needed by this metric

    hyps = list(hypotheses)
    refs = list(references)
    if any(not isinstance(h, str) for h in hyps):
        raise TypeError("hypotheses must be strings (join tokens with spaces and use tokenize='none')")
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    if not hyps:
        raise ValueError("BLEU of an empty corpus is undefined")
    if all(isinstance(r, str) for r in refs):
        streams = [refs]
    else:
        per_seg = [[r] if isinstance(r, str) else list(r) for r in refs]
        n = {len(r) for r in per_seg}
        if len(n) != 1 or 0 in n:
            raise ValueError(f"every hypothesis needs the same, non-zero number of references, got {sorted(n)}")
        streams = [list(s) for s in zip(*per_seg)]
    return float(sacrebleu.corpus_bleu(hyps, streams, tokenize=tokenize, lowercase=lowercase,
                                       smooth_method=smooth_method).score)


# -------------------------------------------------------------------------- SQuAD
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """The official SQuAD normalisation: lower-case, drop punctuation, articles and extra whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _exact(pred: str, gold: str) -> float:
    return float(normalize_answer(pred) == normalize_answer(gold))


def _f1(pred: str, gold: str) -> float:
    p, g = normalize_answer(pred).split(), normalize_answer(gold).split()
    if not p or not g:  # SQuAD 2.0 rule: no-answer is right only against no-answer
        return float(p == g)
    common = collections.Counter(p) & collections.Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def squad_em_f1(predictions: Mapping[str, str] | Sequence[str],
                references: Mapping[str, Sequence[str]] | Sequence[Sequence[str]]) -> dict[str, float]:
    """Exact match and token F1 (percent), the maximum over each question's gold answers.

    Parameters
    ----------
    predictions : dict id -> answer text, or list of answer texts
    references : dict id -> list of gold answers, or list of such lists
        An empty list of gold answers marks an unanswerable SQuAD 2.0 question,
        for which only the empty prediction scores 1.

    Returns
    -------
    dict with ``exact_match`` and ``f1`` in percent, and ``count``.
    """
    if isinstance(predictions, Mapping) != isinstance(references, Mapping):
        raise TypeError("predictions and references must both be dicts (by question id) or both lists")
    if isinstance(references, Mapping):
        missing = [k for k in references if k not in predictions]
        if missing:
            raise ValueError(f"{len(missing)} questions have no prediction, e.g. {missing[:3]}")
        pairs = [(predictions[k], references[k]) for k in references]
    else:
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
        pairs = list(zip(predictions, references))
    if not pairs:
        raise ValueError("no questions to score")
    em = f1_sum = 0.0
    for pred, golds in pairs:
        if isinstance(golds, str):
            golds = [golds]
        golds = [g for g in golds if normalize_answer(g)] or [""]
        em += max(_exact(pred, g) for g in golds)
        f1_sum += max(_f1(pred, g) for g in golds)
    n = len(pairs)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1_sum / n, "count": n}


# --------------------------------------------------------------- language models
def perplexity(total_nll: float, num_tokens: int) -> float:
    """``exp(total_nll / num_tokens)``: perplexity from a summed negative log-likelihood (natural log)."""
    total_nll = float(total_nll)
    if num_tokens <= 0:
        raise ValueError(f"num_tokens must be positive, got {num_tokens}")
    if not math.isfinite(total_nll) or total_nll < 0:
        raise ValueError(f"total_nll must be a finite non-negative number, got {total_nll}")
    return math.exp(total_nll / num_tokens)


# ----------------------------------------------------------------- classification
def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _labels(predictions: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    pred, true = _to_numpy(predictions), _to_numpy(labels)
    if pred.ndim == 2:
        pred = pred.argmax(axis=1)
    if pred.ndim != 1 or true.ndim != 1:
        raise ValueError(f"expected class ids [N] (or scores [N, C]) and labels [N], got shapes "
                         f"{pred.shape} and {true.shape}")
    if pred.shape[0] != true.shape[0]:
        raise ValueError(f"{pred.shape[0]} predictions but {true.shape[0]} labels")
    if pred.shape[0] == 0:
        raise ValueError("no samples to score")
    return pred.astype(np.int64), true.astype(np.int64)


def confusion_matrix(predictions: Any, labels: Any, num_classes: int | None = None) -> np.ndarray:
    """``C[i, j]`` = number of samples of true class ``i`` predicted as ``j``."""
    pred, true = _labels(predictions, labels)
    if min(pred.min(), true.min()) < 0:
        raise ValueError("class ids must be non-negative")
    n = int(max(pred.max(), true.max())) + 1 if num_classes is None else num_classes
    return np.bincount(true * n + pred, minlength=n * n).reshape(n, n)


def accuracy(predictions: Any, labels: Any) -> float:
    """Share of correct predictions."""
    pred, true = _labels(predictions, labels)
    return float((pred == true).mean())


def f1(predictions: Any, labels: Any, average: str = "binary", pos_label: int = 1) -> float:
    """F1 score.

    Parameters
    ----------
    average : {"binary", "macro", "micro"}
        ``binary``: F1 of ``pos_label`` (GLUE MRPC/QQP); ``macro``: unweighted
        mean over classes present in labels or predictions; ``micro``: from
        global counts (equals accuracy for single-label data).
    """
    cm = confusion_matrix(predictions, labels)
    tp = np.diag(cm).astype(np.float64)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        per_class = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    if average == "binary":
        return float(per_class[pos_label]) if pos_label < len(per_class) else 0.0
    if average == "macro":
        present = (cm.sum(axis=0) + cm.sum(axis=1)) > 0
        return float(per_class[present].mean())
    if average == "micro":
        return float(2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum()))
    raise ValueError(f"average must be 'binary', 'macro' or 'micro', got {average!r}")


def mcc(predictions: Any, labels: Any) -> float:
    """Matthews correlation coefficient (multi-class form of Gorodkin, 2004); 0 when undefined."""
    cm = confusion_matrix(predictions, labels).astype(np.float64)
    t, p = cm.sum(axis=1), cm.sum(axis=0)
    c, s = np.trace(cm), cm.sum()
    denom = math.sqrt(s * s - (p * p).sum()) * math.sqrt(s * s - (t * t).sum())
    return 0.0 if denom == 0 else float((c * s - (t * p).sum()) / denom)
