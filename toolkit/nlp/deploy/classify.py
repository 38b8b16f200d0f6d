"""The ``text_classification`` predictor of ``toolkit predict``."""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from ...deploy.fileformat import ExportError
from ...deploy.predict import register_predictor, topk_item
from .inputs import _folder, _graph_io, _run, encode_classification, read_text_inputs
from .tokenizer import load_deploy_tokenizer

__all__ = ["classify_text"]


@register_predictor("text_classification")
def classify_text(
    model: Any,
    inputs: Sequence[str | os.PathLike],
    k: int = 5,
    with_logits: bool = False,
) -> list[dict[str, Any]]:
    """Classify every non-blank line of UTF-8 text files with an exported sentence classifier.

    Parameters
    ----------
    model : ExportedBlock or OpenVINOBlock
        A loaded text-classification export.
    inputs : sequence of path
        Text files; each non-blank line is one input.
    k : int
        Classes per line.
    with_logits : bool
        Also return the raw ``logits``.

    Returns
    -------
    list of dict
        ``{"input": LINE, "topk": [{"index", "label", "prob"}, ...]}`` per line.
    """
    meta = model.metadata
    tokenizer, spec = load_deploy_tokenizer(meta, _folder(model))
    for role in ("cls_id", "sep_id"):
        if not isinstance(spec.get(role), int):
            raise ExportError(f"a text classifier's tokenizer block needs {role}")
    names, out_index = _graph_io(model, "text_classification")
    results = []
    for line in read_text_inputs(inputs):
        ids = np.asarray([encode_classification(tokenizer, spec, line)], dtype=np.int64)
        feed = {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": np.ones_like(ids)}
        logits = _run(model, names, feed, out_index)
        if logits.ndim != 2 or logits.shape[0] != 1:
            raise ExportError(f"the graph returned shape {list(logits.shape)}; a classifier returns (1, classes)")
        results.append(topk_item(line, logits[0], meta, k, with_logits))
    return results
