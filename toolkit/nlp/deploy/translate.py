"""The ``translation`` predictor of ``toolkit predict``: greedy decoding over the whole exported graph."""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from ...deploy.fileformat import ExportError
from ...deploy.predict import register_predictor
from .export import DEFAULT_MAX_LEN_A, DEFAULT_MAX_LEN_B
from .inputs import _folder, _graph_io, _run, encode_source, read_text_inputs
from .tokenizer import load_deploy_tokenizer

__all__ = ["translate", "greedy_translate", "decode_limit"]


def _log_softmax64(row: np.ndarray) -> np.ndarray:
    x = np.asarray(row, dtype=np.float64)
    shifted = x - x.max()
    return shifted - np.log(np.exp(shifted).sum())


def greedy_translate(
    step: Any,
    src: Sequence[int],
    bos_id: int,
    eos_id: int,
    limit: int,
) -> tuple[list[int], float, list[float]]:
    """Greedy decoding that re-runs the full graph on the growing target, as the native runners do.

    Parameters
    ----------
    step : callable
        ``step(src_ids (1, S), src_valid_length (1,), tgt_ids (1, T)) -> logits (1, T, V)``
        on int64 numpy arrays (an exported graph, or a wrapper around the eager model).
    src : sequence of int
        Source ids, eos included.
    bos_id, eos_id : int
    limit : int
        Most tokens generated (eos included).

    Returns
    -------
    (ids, logprob, first_logits)
        Generated ids without bos and the final eos; the float64 sum of the log-softmax
        of every chosen token (eos included); the logits row of the first step.
    """
    src_ids = np.asarray([list(src)], dtype=np.int64)
    valid = np.asarray([len(src)], dtype=np.int64)
    tgt = [int(bos_id)]
    logprob = 0.0
    first: list[float] = []
    while len(tgt) - 1 < limit:
        logits = np.asarray(step(src_ids, valid, np.asarray([tgt], dtype=np.int64)))
        if logits.ndim != 3 or logits.shape[:2] != (1, len(tgt)):
            raise ExportError(f"the graph returned shape {list(logits.shape)}; a translation graph returns (1, T, V)")
        row = logits[0, -1]
        if not np.isfinite(row).all():
            raise ExportError("the model returned non-finite logits (NaN or infinity) while translating")
        if not first:
            first = [float(v) for v in logits[0, 0]]
        nxt = int(np.argmax(row))  # the first maximum: ties go to the lower index
        logprob += float(_log_softmax64(row)[nxt])
        tgt.append(nxt)
        if nxt == eos_id:
            break
    ids = tgt[1:]
    if ids and ids[-1] == eos_id:
        ids = ids[:-1]
    return ids, logprob, first


def decode_limit(spec: Mapping[str, Any], decoding: Mapping[str, Any], source_length: int) -> int:
    """``min(int(max_len_a * S + max_len_b), max_length - 1)``: the most tokens greedy decoding emits."""
    a = float(decoding.get("max_len_a", DEFAULT_MAX_LEN_A))
    b = float(decoding.get("max_len_b", DEFAULT_MAX_LEN_B))
    return min(int(a * source_length + b), int(spec["max_length"]) - 1)


@register_predictor("translation")
def translate(
    model: Any,
    inputs: Sequence[str | os.PathLike],
    k: int = 5,
    with_logits: bool = False,
) -> list[dict[str, Any]]:
    """Translate every non-blank line of UTF-8 text files greedily with an exported Transformer.

    Parameters
    ----------
    model : ExportedBlock or OpenVINOBlock
        A loaded translation export.
    inputs : sequence of path
        Text files; each non-blank line is one source sentence.
    k : int
        Unused (greedy decoding keeps one hypothesis); accepted for the common interface.
    with_logits : bool
        Also return the logits row of the first decoding step.

    Returns
    -------
    list of dict
        ``{"input": LINE, "output": TEXT, "ids": [...], "logprob": float}`` per line.
    """
    del k
    meta = model.metadata
    tokenizer, spec = load_deploy_tokenizer(meta, _folder(model))
    for role in ("bos_id", "eos_id"):
        if not isinstance(spec.get(role), int):
            raise ExportError(f"a translation tokenizer block needs {role}")
    decoding = meta.get("decoding") or {}
    if decoding.get("strategy", "greedy") != "greedy":
        raise ExportError(f"toolkit predict decodes greedily; the metadata asks for {decoding.get('strategy')!r}")
    names, out_index = _graph_io(model, "translation")

    def step(src_ids: np.ndarray, valid: np.ndarray, tgt_ids: np.ndarray) -> np.ndarray:
        return _run(model, names, {"src_ids": src_ids, "src_valid_length": valid, "tgt_ids": tgt_ids}, out_index)

    results = []
    for line in read_text_inputs(inputs):
        src = encode_source(tokenizer, spec, line)
        ids, logprob, first = greedy_translate(step, src, spec["bos_id"], spec["eos_id"],
                                               decode_limit(spec, decoding, len(src)))
        item: dict[str, Any] = {"input": line, "output": tokenizer.decode(ids), "ids": ids, "logprob": logprob}
        if with_logits:
            item["logits"] = first
        results.append(item)
    return results
