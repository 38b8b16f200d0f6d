"""Reading an export's tokenizer back: the ``"tokenizer"`` block of ``PREFIX.json`` and the file beside it."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from ...deploy.fileformat import ExportError, sha256_file
from ..tokenizers import BaseTokenizer, BertWordPieceTokenizer, SentencepieceTokenizer
from ..vocab import Vocab
from .export import TOKENIZER_SUFFIX as _SUFFIX

__all__ = ["load_deploy_tokenizer"]


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
