"""Intrinsic evaluation of word vectors: word similarity (Spearman) and analogies (3CosAdd, 3CosMul).

The protocol matches gensim's ``KeyedVectors.evaluate_word_pairs`` and
``evaluate_word_analogies`` (only the first ``restrict_vocab`` vectors are
used, lookups are case-insensitive with the most frequent case variant
winning, questions with unknown words are skipped), so the numbers are
comparable with those reported with gensim.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .token_embedding import TokenEmbedding

__all__ = ["evaluate_analogy", "evaluate_similarity", "read_analogies", "read_word_pairs"]


def read_word_pairs(path: str | os.PathLike, delimiter: str = "\t", encoding: str = "utf-8"
                    ) -> list[tuple[str, str, float]]:
    """Read ``word1<TAB>word2<TAB>score`` lines (``#`` starts a comment), e.g. WordSim-353, SimLex-999.

    Lines that do not have exactly three fields with a numeric third one
    (such as a column header) are skipped.
    """
    pairs = []
    with open(path, encoding=encoding) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(delimiter)
            if len(parts) != 3:
                continue
            try:
                pairs.append((parts[0], parts[1], float(parts[2])))
            except ValueError:
                continue
    if not pairs:
        raise ValueError(f"{path} holds no 'word1{delimiter!r}word2{delimiter!r}score' lines")
    return pairs


def read_analogies(path: str | os.PathLike, encoding: str = "utf-8") -> list[tuple[str, str, str, str, str]]:
    """Read word2vec's ``questions-words.txt`` layout: ``: section`` lines, then ``a b c d`` per line.

    Returns ``(section, a, b, c, d)`` tuples meaning "a is to b as c is to d".
    """
    out = []
    section = ""
    with open(path, encoding=encoding) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            if line.startswith(":"):
                section = line[1:].strip()
                continue
            parts = line.split()
            if len(parts) != 4:
                raise ValueError(f"{path}:{lineno}: expected four words, got {line!r}")
            out.append((section, *parts))
    if not out:
        raise ValueError(f"{path} holds no analogy questions")
    return out


def _lookup_table(emb: TokenEmbedding, restrict_vocab: int, case_insensitive: bool) -> tuple[dict[str, int], int]:
    n = min(len(emb), restrict_vocab)
    table: dict[str, int] = {}
    for i, tok in enumerate(emb.idx_to_token[:n]):
        key = tok.upper() if case_insensitive else tok
        table.setdefault(key, i)  # first (most frequent) case variant wins
    return table, n


def evaluate_similarity(emb: TokenEmbedding, pairs: Sequence[tuple[str, str, float]] | str | os.PathLike,
                        restrict_vocab: int = 300_000, case_insensitive: bool = True) -> dict[str, float]:
    """Spearman (and Pearson) correlation between cosine similarity and human scores.

    Parameters
    ----------
    emb : TokenEmbedding
    pairs : list of (word1, word2, score), or a file for :func:`read_word_pairs`
    restrict_vocab : int
        Use only the first ``restrict_vocab`` vectors.
    case_insensitive : bool

    Returns
    -------
    dict with ``spearman``, ``pearson``, ``num_pairs`` (evaluated), ``num_oov``
    (skipped) and ``oov_ratio`` (percent).
    """
    from scipy import stats  # imported here: only the evaluation needs scipy

    if isinstance(pairs, (str, os.PathLike)):
        pairs = read_word_pairs(Path(pairs))
    table, _ = _lookup_table(emb, restrict_vocab, case_insensitive)
    unit = emb.unit_vectors()
    gold, model = [], []
    oov = 0
    for a, b, score in pairs:
        ka, kb = (a.upper(), b.upper()) if case_insensitive else (a, b)
        if ka not in table or kb not in table:
            oov += 1
            continue
        gold.append(score)
        model.append(float(unit[table[ka]] @ unit[table[kb]]))
    if len(gold) < 2:
        raise ValueError(f"only {len(gold)} of {len(pairs)} pairs have vectors for both words; "
                         "cannot compute a correlation")
    return {"spearman": float(stats.spearmanr(gold, model).statistic),
            "pearson": float(stats.pearsonr(gold, model).statistic),
            "num_pairs": len(gold), "num_oov": oov, "oov_ratio": 100.0 * oov / (len(gold) + oov)}


def evaluate_analogy(emb: TokenEmbedding, questions: Sequence[tuple] | str | os.PathLike,
                     method: str = "3CosAdd", restrict_vocab: int = 300_000, case_insensitive: bool = True,
                     eps: float = 1e-3, batch_size: int = 512, return_predictions: bool = False) -> dict:
    """Accuracy on analogy questions "a is to b as c is to d".

    The answer is the vocabulary word (other than a, b, c) that maximises
    ``cos(x, b) - cos(x, a) + cos(x, c)`` (3CosAdd, Mikolov et al., 2013) or
    ``cos'(x, b) * cos'(x, c) / (cos'(x, a) + eps)`` with ``cos' = (cos + 1) / 2``
    (3CosMul, Levy & Goldberg, 2014).

    Parameters
    ----------
    emb : TokenEmbedding
    questions : list of (a, b, c, d) or (section, a, b, c, d), or a file for :func:`read_analogies`
    method : {"3CosAdd", "3CosMul"}
    restrict_vocab : int
        Candidates and question words come from the first ``restrict_vocab`` vectors.
    case_insensitive : bool
    eps : float
        3CosMul's guard against division by zero.
    batch_size : int
        Questions scored at once (memory is ``batch_size * restrict_vocab`` floats).
    return_predictions : bool
        Also return ``predictions``: ``(a, b, c, d, predicted)`` for every answered question.

    Returns
    -------
    dict with ``accuracy``, ``correct``, ``total`` (answered questions),
    ``num_oov`` (skipped) and ``sections`` (section -> ``(correct, total)``).
    """
    if method not in ("3CosAdd", "3CosMul"):
        raise ValueError(f"method must be '3CosAdd' or '3CosMul', got {method!r}")
    if isinstance(questions, (str, os.PathLike)):
        questions = read_analogies(Path(questions))
    table, n = _lookup_table(emb, restrict_vocab, case_insensitive)
    keys = np.array([t.upper() if case_insensitive else t for t in emb.idx_to_token[:n]], dtype=object)
    unit = emb.unit_vectors()[:n]
    rows, sections, oov = [], [], 0
    for q in questions:
        section, words = (q[0], q[1:]) if len(q) == 5 else ("", q)
        if len(words) != 4:
            raise ValueError(f"an analogy question needs four words, got {q!r}")
        ks = [w.upper() if case_insensitive else w for w in words]
        if any(k not in table for k in ks):
            oov += 1
            continue
        rows.append([table[k] for k in ks])
        sections.append(section)
    idx = np.array(rows, dtype=np.int64).reshape(-1, 4)
    predicted = np.empty(len(idx), dtype=np.int64)
    for start in range(0, len(idx), batch_size):
        a, b, c = (idx[start:start + batch_size, j] for j in range(3))
        cos_a, cos_b, cos_c = unit[a] @ unit.T, unit[b] @ unit.T, unit[c] @ unit.T
        if method == "3CosAdd":
            scores = cos_b - cos_a + cos_c
        else:
            scores = ((cos_b + 1) / 2) * ((cos_c + 1) / 2) / ((cos_a + 1) / 2 + eps)
        rows_i = np.arange(len(a))
        for col in (a, b, c):
            scores[rows_i, col] = -np.inf
        # also exclude other case variants of the question words, as gensim does
        order = np.argsort(-scores, axis=1)[:, :8]
        for r in range(len(a)):
            banned = {keys[a[r]], keys[b[r]], keys[c[r]]}
            pick = next((j for j in order[r] if keys[j] not in banned), order[r][0])
            predicted[start + r] = pick
    correct = keys[predicted] == keys[idx[:, 3]] if len(idx) else np.zeros(0, dtype=bool)
    per_section: dict[str, tuple[int, int]] = {}
    for s, ok in zip(sections, correct):
        c_, t_ = per_section.get(s, (0, 0))
        per_section[s] = (c_ + int(ok), t_ + 1)
    total = len(idx)
    result = {"accuracy": float(correct.mean()) if total else math.nan, "correct": int(correct.sum()),
              "total": total, "num_oov": oov, "sections": per_section}
    if return_predictions:
        tokens = emb.idx_to_token
        result["predictions"] = [(*(tokens[i] for i in row), tokens[p]) for row, p in zip(idx, predicted)]
    return result
