"""Text inputs of ``toolkit predict``: reading the files, encoding a line, feeding the graph."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ...deploy.fileformat import ExportError
from ..tokenizers import BaseTokenizer, BertWordPieceTokenizer

__all__ = ["read_text_inputs", "encode_classification", "encode_source"]

_GRAPH_INPUTS = {
    "text_classification": ("input_ids", "token_type_ids", "attention_mask"),
    "translation": ("src_ids", "src_valid_length", "tgt_ids"),
}


def read_text_inputs(paths: Sequence[str | os.PathLike]) -> list[str]:
    """The inputs of text files: every line that is not empty or whitespace-only, in file order.

    A line is what lies between ``"\\n"`` characters, without a trailing ``"\\r"``
    (so CRLF files read like LF files); other Unicode line separators stay inside the line.

    Raises
    ------
    ExportError
        A file that cannot be read, is not valid UTF-8, or has no non-blank line.
    """
    lines: list[str] = []
    for p in paths:
        path = Path(p)
        try:
            data = path.read_bytes()
        except OSError as err:
            raise ExportError(f"cannot read input file {path}: {err.strerror or err}") from err
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ExportError(f"input file {path} is not valid UTF-8 (byte {err.start}: {err.reason})") from err
        found = [line.removesuffix("\r") for line in text.split("\n")]
        found = [line for line in found if line.strip()]
        if not found:
            raise ExportError(f"input file {path} has no non-empty line")
        lines.extend(found)
    return lines


def _graph_io(model: Any, task: str) -> tuple[list[str], int]:
    meta = model.metadata
    names = [spec["name"] for spec in meta.get("inputs") or []]
    allowed = _GRAPH_INPUTS[task]
    other = [n for n in names if n not in allowed]
    if other:
        raise ExportError(f"a {task} graph takes inputs among {list(allowed)}; this one also takes {other}")
    if task == "translation" and sorted(names) != sorted(allowed):
        raise ExportError(f"a translation graph takes {list(allowed)}; this one takes {names}")
    if "input_ids" not in names and task == "text_classification":
        raise ExportError(f"a text classifier takes input_ids; this graph takes {names}")
    outs = [spec["name"] for spec in meta.get("outputs") or []]
    return names, outs.index("logits") if "logits" in outs else 0


def _run(model: Any, names: list[str], feed: Mapping[str, np.ndarray], out_index: int) -> np.ndarray:
    out = model(*[feed[n] for n in names])
    if isinstance(out, (tuple, list)):
        out = out[out_index]
    return np.asarray(out)


def _folder(model: Any) -> Path:
    prefix = getattr(model, "prefix", None)
    if prefix is None:
        raise ExportError("the loaded model does not say where its files are (no .prefix); pass the export prefix")
    return Path(prefix).parent


def encode_classification(tokenizer: BaseTokenizer, spec: Mapping[str, Any], line: str) -> list[int]:
    """``[cls] + wordpiece(line) + [sep]``, word pieces cut from the end to fit ``max_length``."""
    pieces = tokenizer.encode(line, add_special_tokens=False) if isinstance(tokenizer, BertWordPieceTokenizer) \
        else tokenizer.encode(line)
    return [spec["cls_id"], *pieces[: spec["max_length"] - 2], spec["sep_id"]]


def encode_source(tokenizer: BaseTokenizer, spec: Mapping[str, Any], line: str) -> list[int]:
    """``sentencepiece(line)[: max_length - 1] + [eos]`` (lower-cased first if the tokenizer says so)."""
    return [*tokenizer.encode(line)[: spec["max_length"] - 1], spec["eos_id"]]
