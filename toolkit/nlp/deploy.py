"""Deploying text models: export with the tokenizer, and ``toolkit predict`` for text tasks.

:func:`export_text` writes what :meth:`HybridBlock.export` writes (``PREFIX.onnx``
and ``PREFIX.json``) plus the tokenizer file beside them and a ``"tokenizer"``
block (and, for translation, a ``"decoding"`` block) in ``PREFIX.json``:

* ``BertWordPieceTokenizer`` -> ``PREFIX.vocab.txt`` (one token per line, the
  0-based line number is the id);
* ``SentencepieceTokenizer`` -> ``PREFIX.spm.model`` (the model, byte for byte).

The predictors registered here (tasks ``text_classification`` and
``translation``) read UTF-8 text files, one input per non-blank line, and
return the JSON items the C++ and Java runners reproduce. Translation decodes
greedily by re-running the whole exported graph on the growing target, so a
runner needs nothing but the graph (no decoder state to carry between calls).

Two details the native runners must match: a line is "blank" when
``line.strip()`` is empty (Python's Unicode whitespace), and a WordPiece block
also lists ``special_tokens``, the vocabulary's special tokens (``[MASK]``
included) that are matched verbatim in the raw text before normalisation, as
``transformers`` and :class:`BertWordPieceTokenizer` do.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..deploy.export import metadata_path, sha256_file, write_bytes_atomic, write_json_atomic
from ..deploy.predict import register_predictor, topk_item
from ..deploy.runtime import ExportError
from .tokenizers import BaseTokenizer, BertWordPieceTokenizer, SentencepieceTokenizer
from .vocab import Vocab

__all__ = [
    "TEXT_TASKS",
    "DEFAULT_MAX_LEN_A",
    "DEFAULT_MAX_LEN_B",
    "export_text",
    "tokenizer_file_name",
    "load_deploy_tokenizer",
    "read_text_inputs",
    "classify_text",
    "translate",
    "greedy_translate",
    "decode_limit",
    "encode_classification",
    "encode_source",
]

#: Tasks whose exports carry a tokenizer.
TEXT_TASKS = ("text_classification", "translation")
#: Greedy length limit ``int(a * source_length + b)``, as in scripts/machine_translation/train_transformer.py.
DEFAULT_MAX_LEN_A = 1.2
DEFAULT_MAX_LEN_B = 10

_SUFFIX = {"wordpiece": ".vocab.txt", "sentencepiece": ".spm.model"}
_GRAPH_INPUTS = {
    "text_classification": ("input_ids", "token_type_ids", "attention_mask"),
    "translation": ("src_ids", "src_valid_length", "tgt_ids"),
}


# --------------------------------------------------------------------------- export
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


# --------------------------------------------------------------------------- predict
def _tokenizer_spec(meta: Mapping[str, Any]) -> dict[str, Any]:
    spec = meta.get("tokenizer")
    if spec is None:
        raise ExportError(
            f"the metadata of model {meta.get('model')!r} (task {meta.get('task')!r}) has no \"tokenizer\" block; "
            "export text models with toolkit.nlp.deploy.export_text or `toolkit export ... --tokenizer DIR`"
        )
    if not isinstance(spec, dict):
        raise ExportError(f"the metadata's \"tokenizer\" must be an object, not {type(spec).__name__}")
    kind = spec.get("type")
    if kind not in _SUFFIX:
        raise ExportError(f"unknown tokenizer type {kind!r} in the metadata; known: {', '.join(_SUFFIX)}")
    missing = [k for k in ("file", "sha256", "unk_id", "max_length") if spec.get(k) is None]
    if missing:
        raise ExportError(f"the metadata's tokenizer block lacks {', '.join(missing)}")
    name = spec["file"]
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise ExportError(f"the tokenizer file must be a file name beside PREFIX.json, not {name!r}")
    if not isinstance(spec["max_length"], int) or spec["max_length"] < 2:
        raise ExportError(f"the tokenizer's max_length must be an int >= 2, got {spec['max_length']!r}")
    return spec


def load_deploy_tokenizer(meta: Mapping[str, Any], folder: str | os.PathLike) -> tuple[BaseTokenizer, dict[str, Any]]:
    """Rebuild the tokenizer of an export from its metadata and the file beside ``PREFIX.json``.

    Parameters
    ----------
    meta : mapping
        The export's metadata (``PREFIX.json``).
    folder : path
        The folder of ``PREFIX.json``; the metadata's ``tokenizer.file`` is relative to it.

    Returns
    -------
    (tokenizer, spec)
        A :class:`BertWordPieceTokenizer` or :class:`SentencepieceTokenizer` giving the
        ids the model was exported with, and the metadata's tokenizer block.

    Raises
    ------
    ExportError
        No tokenizer block, an unknown type, a missing file, a sha256 mismatch, or a
        file that does not agree with the ids the metadata records.
    """
    spec = _tokenizer_spec(meta)
    path = Path(folder) / spec["file"]
    if not path.is_file():
        raise ExportError(f"tokenizer file {path} not found (the metadata names {spec['file']!r})")
    digest = sha256_file(path)
    if digest != spec["sha256"]:
        raise ExportError(
            f"tokenizer file {path} is corrupt or was replaced: sha256 {digest[:12]}... "
            f"but the metadata records {str(spec['sha256'])[:12]}..."
        )
    if spec["type"] == "wordpiece":
        tokenizer = _wordpiece_from_file(path, spec)
    else:
        try:
            tokenizer = SentencepieceTokenizer(path, lowercase=bool(spec.get("lowercase", False)))
        except ValueError as err:
            raise ExportError(f"tokenizer file {path}: {err}") from err
        vocab = tokenizer.vocab
        for role in ("unk_id", "pad_id", "bos_id", "eos_id"):
            if spec.get(role) != getattr(vocab, role):
                raise ExportError(
                    f"tokenizer file {path} has {role} {getattr(vocab, role)} but the metadata records {spec.get(role)}"
                )
    return tokenizer, spec


def _wordpiece_from_file(path: Path, spec: Mapping[str, Any]) -> BertWordPieceTokenizer:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ExportError(f"tokenizer file {path} is not UTF-8: {err}") from err
    tokens = text.split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()

    def token(role: str, required: bool) -> str | None:
        i = spec.get(role)
        if i is None:
            if required:
                raise ExportError(f"the metadata's WordPiece tokenizer needs {role}")
            return None
        if not isinstance(i, int) or not 0 <= i < len(tokens):
            raise ExportError(f"{role} {i!r} is outside the {len(tokens)} tokens of {path}")
        return tokens[i]

    named = {"unknown_token": token("unk_id", True), "padding_token": token("pad_id", False),
             "cls_token": token("cls_id", True), "sep_token": token("sep_id", True)}
    listed = spec.get("special_tokens") or []
    if not isinstance(listed, list) or not all(isinstance(t, str) for t in listed):
        raise ExportError("the tokenizer's special_tokens must be a list of strings")
    unknown = [t for t in listed if t not in set(tokens)]
    if unknown:
        raise ExportError(f"special tokens {unknown} are not in {path}")
    reserved = [t for t in listed if t not in named.values()]
    try:
        vocab = Vocab(tokens, bos_token=None, eos_token=None, mask_token=None, reserved_tokens=reserved, **named)
        return BertWordPieceTokenizer(
            vocab,
            lowercase=bool(spec.get("lowercase", True)),
            strip_accents=bool(spec.get("strip_accents", spec.get("lowercase", True))),
            tokenize_chinese_chars=bool(spec.get("tokenize_chinese_chars", True)),
            clean_text=bool(spec.get("clean_text", True)),
            max_input_chars_per_word=int(spec.get("max_input_chars_per_word", 100)),
        )
    except (ValueError, TypeError) as err:
        raise ExportError(f"tokenizer file {path} is not a usable WordPiece vocabulary: {err}") from err


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
