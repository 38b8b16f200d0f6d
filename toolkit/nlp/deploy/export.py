"""Writing a text export: the graph, ``PREFIX.json`` with a ``"tokenizer"`` block, and the tokenizer file."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from ...deploy.fileformat import metadata_path, write_bytes_atomic, write_json_atomic
from ..tokenizers import BaseTokenizer, BertWordPieceTokenizer, SentencepieceTokenizer
from ..vocab import Vocab

__all__ = ["TEXT_TASKS", "DEFAULT_MAX_LEN_A", "DEFAULT_MAX_LEN_B", "TOKENIZER_SUFFIX", "export_text",
           "tokenizer_file_name"]

#: Tasks whose exports carry a tokenizer.
TEXT_TASKS = ("text_classification", "translation")
#: Greedy length limit ``int(a * source_length + b)``, as in scripts/machine_translation/train_transformer.py.
DEFAULT_MAX_LEN_A = 1.2
DEFAULT_MAX_LEN_B = 10

#: File name ending of each tokenizer type.
TOKENIZER_SUFFIX = {"wordpiece": ".vocab.txt", "sentencepiece": ".spm.model"}
_SUFFIX = TOKENIZER_SUFFIX


def tokenizer_file_name(prefix: str | os.PathLike, kind: str) -> str:
    """Base name of the tokenizer file of an export (``bert.vocab.txt`` for prefix ``out/bert``)."""
    return Path(prefix).name + _SUFFIX[kind]


def _model_max_length(model: Any) -> int | None:
    cfg = getattr(model, "cfg", None)
    value = getattr(cfg, "max_length", None) if cfg is not None else None
    if value is None:
        value = (getattr(model, "metadata", {}) or {}).get("max_length")
    return int(value) if value is not None else None


def _model_vocab_size(model: Any, task: str) -> int | None:
    meta = getattr(model, "metadata", {}) or {}
    key = "vocab_size" if task == "text_classification" else "src_vocab_size"
    value = meta.get(key)
    return int(value) if value is not None else None


def _tokenizer_block(tokenizer: BaseTokenizer, file_name: str, data: bytes, max_length: int) -> dict[str, Any]:
    vocab = tokenizer.vocab
    if isinstance(tokenizer, BertWordPieceTokenizer):
        opts = tokenizer._config()
        lowercase = bool(opts.get("lowercase", True))
        strip = opts.get("strip_accents")
        block: dict[str, Any] = {
            "type": "wordpiece",
            "file": file_name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "lowercase": lowercase,
            # None means "follow lowercase" in BertNormalizer; the runners get the resolved value
            "strip_accents": lowercase if strip is None else bool(strip),
            "tokenize_chinese_chars": bool(opts.get("tokenize_chinese_chars", True)),
            "clean_text": bool(opts.get("clean_text", True)),
            "max_input_chars_per_word": int(opts.get("max_input_chars_per_word", 100)),
        }
    elif isinstance(tokenizer, SentencepieceTokenizer):
        block = {
            "type": "sentencepiece",
            "file": file_name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "lowercase": bool(tokenizer._lowercase),
        }
    else:
        raise TypeError(
            f"export_text takes a BertWordPieceTokenizer or a SentencepieceTokenizer, not {type(tokenizer).__name__}"
        )
    block.update(
        unk_id=vocab.unk_id, pad_id=vocab.pad_id, cls_id=vocab.cls_id, sep_id=vocab.sep_id,
        bos_id=vocab.bos_id, eos_id=vocab.eos_id, max_length=int(max_length),
    )
    if block["type"] == "wordpiece":
        # Tokens matched verbatim in the raw text before normalisation (as transformers does):
        # the named ones above plus any other special token of the vocabulary (e.g. [MASK]).
        block["special_tokens"] = list(vocab.special_tokens)
    return block


def _tokenizer_bytes(tokenizer: BaseTokenizer) -> tuple[str, bytes]:
    if isinstance(tokenizer, BertWordPieceTokenizer):
        tokens = tokenizer.vocab.idx_to_token
        bad = [t for t in tokens if "\n" in t or "\r" in t]
        if bad:
            raise ValueError(f"vocabulary tokens with line breaks cannot be written one per line: {bad[:3]}")
        return "wordpiece", "".join(t + "\n" for t in tokens).encode("utf-8")
    if isinstance(tokenizer, SentencepieceTokenizer):
        if tokenizer._num_best != 0:
            # deployment encodes deterministically; sampling is a training-time regulariser
            raise ValueError("export a SentencepieceTokenizer with num_best=0 (no subword sampling)")
        return "sentencepiece", bytes(tokenizer._model_bytes)
    raise TypeError(
        f"export_text takes a BertWordPieceTokenizer or a SentencepieceTokenizer, not {type(tokenizer).__name__}"
    )


def export_text(
    model: Any,
    tokenizer: BaseTokenizer,
    prefix: str | os.PathLike,
    max_length: int | None = None,
    check: bool = True,
    max_len_a: float = DEFAULT_MAX_LEN_A,
    max_len_b: int = DEFAULT_MAX_LEN_B,
    **kw: Any,
) -> dict[str, Any]:
    """Export a text model with its tokenizer for ``toolkit predict`` and the native runners.

    Parameters
    ----------
    model : BertForSequenceClassification or TransformerModel
        A block whose ``metadata["task"]`` is ``text_classification`` or ``translation``.
    tokenizer : BertWordPieceTokenizer or SentencepieceTokenizer
        The tokenizer the model was trained with; its ids must fit the model's vocabulary.
    prefix : str or path
        Output path without extension: writes ``PREFIX.onnx``, ``PREFIX.json`` and
        ``PREFIX.vocab.txt`` (WordPiece) or ``PREFIX.spm.model`` (SentencePiece).
    max_length : int, optional
        Longest id sequence fed to the graph, special tokens included; default
        (and upper bound) the model's own ``max_length``.
    check : bool
        Compare onnxruntime with eager PyTorch on the example inputs (see ``export_block``).
    max_len_a, max_len_b : float, int
        Translation only: greedy decoding emits at most ``int(a * S + b)`` tokens
        for a source of ``S`` ids (eos included).
    **kw
        Passed to :meth:`HybridBlock.export` (``example_inputs``, ``metadata`` ...).

    Returns
    -------
    dict
        The metadata written to ``PREFIX.json``, with the ``"tokenizer"`` block
        (``type``, ``file``, ``sha256``, ``lowercase``, the WordPiece options,
        ``unk_id``/``pad_id``/``cls_id``/``sep_id``/``bos_id``/``eos_id``,
        ``max_length``) and for translation ``"decoding"``.

    Raises
    ------
    ValueError
        A task without text deployment, a tokenizer that does not fit the model
        (vocabulary larger than the model's, missing special ids) or a bad ``max_length``.
    """
    meta = getattr(model, "metadata", {}) or {}
    task = meta.get("task")
    if task not in TEXT_TASKS:
        raise ValueError(f"export_text serves tasks {TEXT_TASKS}; model {meta.get('name')!r} has task {task!r}")
    kind, data = _tokenizer_bytes(tokenizer)
    vocab: Vocab = tokenizer.vocab
    size = _model_vocab_size(model, task)
    if size is not None and len(vocab) > size:
        raise ValueError(f"the tokenizer has {len(vocab)} tokens but the model's vocabulary only {size}")
    tgt_size = meta.get("tgt_vocab_size")
    if task == "translation" and tgt_size is not None and int(tgt_size) != len(vocab):
        # every id the decoder can emit must be decodable
        raise ValueError(f"the tokenizer has {len(vocab)} tokens but the model's target vocabulary {tgt_size}")
    limit = _model_max_length(model)
    if max_length is None:
        if limit is None:
            raise ValueError("the model records no max_length; pass max_length")
        max_length = limit
    if not isinstance(max_length, int) or max_length < (3 if task == "text_classification" else 2):
        raise ValueError(f"max_length must be an int >= {3 if task == 'text_classification' else 2}, got {max_length!r}")
    if limit is not None and max_length > limit:
        raise ValueError(f"max_length {max_length} exceeds the model's max_length {limit}")
    if task == "text_classification":
        missing = [r for r in ("unk_id", "cls_id", "sep_id") if getattr(vocab, r) is None]
    else:
        missing = [r for r in ("unk_id", "bos_id", "eos_id") if getattr(vocab, r) is None]
    if missing:
        raise ValueError(f"a {task} tokenizer needs {', '.join(missing)}; this vocabulary has none")
    if task == "translation":
        for role in ("bos_id", "eos_id"):
            if meta.get(role) is not None and meta[role] != getattr(vocab, role):
                raise ValueError(f"the model's {role} is {meta[role]} but the tokenizer's is {getattr(vocab, role)}")
        if not (float(max_len_a) >= 0 and int(max_len_b) >= 0):
            raise ValueError(f"max_len_a and max_len_b must be >= 0, got {max_len_a}, {max_len_b}")

    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    name = tokenizer_file_name(prefix, kind)
    write_bytes_atomic(prefix.parent / name, data)
    extra: dict[str, Any] = dict(kw.pop("metadata", None) or {})
    extra["tokenizer"] = _tokenizer_block(tokenizer, name, data, max_length)
    if task == "translation":
        extra["decoding"] = {"strategy": "greedy", "max_len_a": float(max_len_a), "max_len_b": int(max_len_b)}
    # The metadata write (atomic, by export_block) already holds the tokenizer block,
    # so no reader ever sees a text export without it.
    meta = model.export(os.fspath(prefix), metadata=extra, check=check, **kw)
    outputs = meta.get("outputs") or []
    if task == "translation" and len(outputs) == 1 and len(outputs[0].get("shape", [])) == 3:
        # export_block names output axes after the first input only; the logits' time axis is the
        # target's, so say so (the graph itself is dynamic there).
        axes = (meta.get("dynamic_axes") or {}).get("tgt_ids") or {}
        if "1" in axes and outputs[0]["shape"][1] != axes["1"]:
            outputs[0]["shape"][1] = axes["1"]
            write_json_atomic(metadata_path(prefix), meta)
    return meta
