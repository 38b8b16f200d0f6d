"""Tokenizers backed by the Hugging Face ``tokenizers`` library (Rust): BERT WordPiece and byte-level BPE."""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)

from ..vocab import Vocab
from .base import BaseTokenizer, Offsets, _check_output_type

__all__ = ["BertWordPieceTokenizer", "ByteBPETokenizer"]

_TOKENIZER_JSON = "tokenizer.json"


class _HFTokenizer(BaseTokenizer):
    """Shared code: wraps a ``tokenizers.Tokenizer`` and a :class:`Vocab` with the same ids."""

    _add_special_default = False

    def _setup(self, tok: Tokenizer, vocab: Vocab) -> None:
        size = tok.get_vocab_size(with_added_tokens=True)
        if size != len(vocab):
            raise ValueError(f"vocabulary has {len(vocab)} tokens but the tokenizer model has {size}")
        self._tok = tok
        self._vocab = vocab

    @staticmethod
    def _token_list(tok: Tokenizer) -> list[str]:
        """Tokens of a ``tokenizers.Tokenizer`` in id order; the ids must be 0..n-1."""
        by_id = tok.get_vocab(with_added_tokens=True)
        tokens: list[str | None] = [None] * len(by_id)
        for t, i in by_id.items():
            if not 0 <= i < len(tokens) or tokens[i] is not None:
                raise ValueError(f"token ids are not contiguous (token {t!r} has id {i})")
            tokens[i] = t
        return tokens  # type: ignore[return-value]

    @property
    def vocab(self) -> Vocab:
        return self._vocab

    @property
    def backend(self) -> Tokenizer:
        """The underlying ``tokenizers.Tokenizer``."""
        return self._tok

    def _encodings(self, texts: list[str], add_special_tokens: bool | None):
        add = self._add_special_default if add_special_tokens is None else add_special_tokens
        if len(texts) == 1:  # encode_batch has a thread-pool cost that one string does not need
            return [self._tok.encode(texts[0], add_special_tokens=add)]
        return self._tok.encode_batch(texts, add_special_tokens=add)

    def _encode(self, texts: list[str], output_type: type, add_special_tokens: bool | None = None) -> list[list]:
        encs = self._encodings(texts, add_special_tokens)
        return [e.ids for e in encs] if output_type is int else [e.tokens for e in encs]

    def _encode_with_offsets(self, texts: list[str], output_type: type,
                             add_special_tokens: bool | None = None) -> list[tuple[list, Offsets]]:
        encs = self._encodings(texts, add_special_tokens)
        return [((e.ids if output_type is int else e.tokens), e.offsets) for e in encs]

    def _decode(self, batch: list[list], skip_special_tokens: bool = True) -> list[str]:
        n = len(self._vocab)
        ids_batch = []
        for seq in batch:
            if seq and isinstance(seq[0], str):
                seq = self._vocab[seq]
            for i in seq:
                if not 0 <= i < n:
                    raise IndexError(f"id {i} is out of range for a vocabulary of {n} tokens")
            ids_batch.append(seq)
        return self._tok.decode_batch(ids_batch, skip_special_tokens=skip_special_tokens)

    def _save_files(self, directory: Path) -> None:
        if self._tok.truncation is not None:
            self._tok.no_truncation()  # per-call max_length must not be saved as a default
        self._tok.save(str(directory / _TOKENIZER_JSON))

    @classmethod
    def _from_files(cls, directory: Path, config: dict[str, Any], vocab: Vocab):
        path = directory / _TOKENIZER_JSON
        if not path.is_file():
            raise FileNotFoundError(f"{directory}: {_TOKENIZER_JSON} is missing")
        obj = cls.__new__(cls)
        obj._restore(config)
        obj._setup(Tokenizer.from_file(str(path)), vocab)
        if cls._token_list(obj._tok) != vocab.idx_to_token:
            raise ValueError(f"{directory}: vocab.json does not match {_TOKENIZER_JSON}")
        return obj

    def _restore(self, config: dict[str, Any]) -> None:
        """Set option attributes from a saved config (before ``_setup``)."""


class BertWordPieceTokenizer(_HFTokenizer):
    """BERT's tokenizer: basic text cleaning and splitting, then greedy WordPiece.

    It produces the same ids as ``transformers.BertTokenizerFast`` built on the
    same ``vocab.txt``: same normaliser (clean text, Chinese characters as
    words, lower-casing, accent stripping following lower-casing unless set),
    same splitting, same WordPiece model (``[UNK]`` for a word that cannot be
    split or is longer than ``max_input_chars_per_word``), and the special
    tokens matched in raw text before normalisation.

    Parameters
    ----------
    vocab : Vocab
        The WordPiece vocabulary (e.g. from :meth:`from_vocab_file`).
    lowercase : bool
    strip_accents : bool or None
        ``None`` strips accents when ``lowercase`` is set, as BERT does.
    tokenize_chinese_chars, clean_text : bool
    max_input_chars_per_word : int
    """

    _add_special_default = True

    def __init__(self, vocab: Vocab, lowercase: bool = True, strip_accents: bool | None = None,
                 tokenize_chinese_chars: bool = True, clean_text: bool = True,
                 max_input_chars_per_word: int = 100) -> None:
        for role in ("unknown_token", "cls_token", "sep_token"):
            if getattr(vocab, role) is None:
                raise ValueError(f"a BERT vocabulary needs a {role}")
        self._restore({"lowercase": lowercase, "strip_accents": strip_accents,
                           "tokenize_chinese_chars": tokenize_chinese_chars, "clean_text": clean_text,
                           "max_input_chars_per_word": max_input_chars_per_word})
        tok = Tokenizer(models.WordPiece(vocab.token_to_idx, unk_token=vocab.unknown_token,
                                         max_input_chars_per_word=max_input_chars_per_word))
        tok.normalizer = normalizers.BertNormalizer(clean_text=clean_text, handle_chinese_chars=tokenize_chinese_chars,
                                                    strip_accents=strip_accents, lowercase=lowercase)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece(prefix="##")
        cls_t, sep_t = vocab.cls_token, vocab.sep_token
        tok.post_processor = processors.TemplateProcessing(
            single=f"{cls_t}:0 $A:0 {sep_t}:0",
            pair=f"{cls_t}:0 $A:0 {sep_t}:0 $B:1 {sep_t}:1",
            special_tokens=[(cls_t, vocab.cls_id), (sep_t, vocab.sep_id)],
        )
        # As in transformers: special tokens in the raw text are matched before lower-casing.
        tok.add_special_tokens(vocab.special_tokens)
        self._setup(tok, vocab)

    def _restore(self, config: dict[str, Any]) -> None:
        self._options = {k: config[k] for k in ("lowercase", "strip_accents", "tokenize_chinese_chars",
                                                "clean_text", "max_input_chars_per_word") if k in config}

    @classmethod
    def from_vocab_file(cls, vocab_file: str | os.PathLike, lowercase: bool = True,
                        unk_token: str = "[UNK]", pad_token: str | None = "[PAD]", cls_token: str = "[CLS]",
                        sep_token: str = "[SEP]", mask_token: str | None = "[MASK]",
                        **kwargs: Any) -> BertWordPieceTokenizer:
        """Build from a BERT ``vocab.txt`` (one token per line, the line number is the id).

        Special tokens that the file lacks are an error, since BERT models
        expect them at the ids the file gives.
        """
        path = Path(vocab_file)
        if not path.is_file():
            raise FileNotFoundError(f"vocabulary file {path} does not exist")
        with open(path, encoding="utf-8") as f:
            tokens = [line.rstrip("\n") for line in f]
        seen: dict[str, int] = {}
        for lineno, t in enumerate(tokens, 1):
            if t in seen:
                raise ValueError(f"{path}: token {t!r} appears on line {seen[t]} and again on line {lineno}")
            seen[t] = lineno
        specials = {"unknown_token": unk_token, "padding_token": pad_token, "cls_token": cls_token,
                        "sep_token": sep_token, "mask_token": mask_token}
        for role, t in specials.items():
            if t is not None and t not in seen:
                raise ValueError(f"{path} has no {role} {t!r}")
        vocab = Vocab(tokens, bos_token=None, eos_token=None, **specials)
        return cls(vocab, lowercase=lowercase, **kwargs)

    def _truncate(self, max_length: int | None) -> None:
        """Configure the backend's truncation (longest first, as BERT's data pipelines do)."""
        if max_length is None:
            if self._tok.truncation is not None:
                self._tok.no_truncation()
            return
        if not isinstance(max_length, int) or max_length < 3:
            raise ValueError(f"max_length must be an int >= 3 (room for [CLS], [SEP] and a token), got {max_length!r}")
        current = self._tok.truncation
        if current is None or current["max_length"] != max_length:
            self._tok.enable_truncation(max_length, strategy="longest_first")

    def encode(self, text, output_type: type = int, add_special_tokens: bool = True,
               max_length: int | None = None):
        """Tokenize; with ``add_special_tokens`` the result is ``[CLS] ... [SEP]``.

        ``max_length`` truncates the result (special tokens included) to that many tokens.
        """
        _check_output_type(output_type)
        self._truncate(max_length)
        if isinstance(text, str):
            return self._encode([text], output_type, add_special_tokens)[0]
        texts = self._as_batch(text)
        return self._encode(texts, output_type, add_special_tokens) if texts else []

    def encode_with_offsets(self, text, output_type: type = str, add_special_tokens: bool = True,
                            max_length: int | None = None):
        _check_output_type(output_type)
        self._truncate(max_length)
        if isinstance(text, str):
            return self._encode_with_offsets([text], output_type, add_special_tokens)[0]
        texts = self._as_batch(text)
        return self._encode_with_offsets(texts, output_type, add_special_tokens) if texts else []

    def encode_pair(self, text_a: str | Sequence[str], text_b: str | Sequence[str],
                    output_type: type = int, add_special_tokens: bool = True, max_length: int | None = None):
        """Encode a sentence pair as ``[CLS] a [SEP] b [SEP]``.

        ``max_length`` truncates to that many tokens (special tokens included),
        removing tokens from the end of the longer segment first, exactly as
        ``transformers`` does with ``truncation=True``.

        Returns
        -------
        (ids_or_tokens, token_type_ids)
            ``token_type_ids`` is 0 for the first segment and 1 for the second.
            For lists of pairs, a list of such tuples.
        """
        _check_output_type(output_type)
        single = isinstance(text_a, str)
        if single != isinstance(text_b, str):
            raise TypeError("text_a and text_b must both be str or both be lists of str")
        a = [text_a] if single else self._as_batch(text_a)
        b = [text_b] if single else self._as_batch(text_b)
        if len(a) != len(b):
            raise ValueError(f"text_a has {len(a)} strings but text_b has {len(b)}")
        self._truncate(max_length)
        encs = self._tok.encode_batch(list(zip(a, b)), add_special_tokens=add_special_tokens)
        out = [((e.ids if output_type is int else e.tokens), e.type_ids) for e in encs]
        return out[0] if single else out

    def decode(self, ids, skip_special_tokens: bool = True):
        """Ids back to text; WordPiece continuations (``##``) are joined to their word."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        if len(ids) and isinstance(ids[0], (list, tuple)):
            return self._decode([list(x) for x in ids], skip_special_tokens)
        return self._decode([list(ids)], skip_special_tokens)[0]

    def _config(self) -> dict[str, Any]:
        return dict(self._options)


class ByteBPETokenizer(_HFTokenizer):
    """Byte-level BPE (GPT-2, RoBERTa): every input byte is representable, so there is no unknown token.

    Build it with :meth:`train` or :meth:`from_files` (GPT-2 style
    ``vocab.json`` + ``merges.txt``). Offsets are character offsets in the input.
    """

    def __init__(self, tokenizer: Tokenizer, special_roles: dict[str, str] | None = None,
                 lowercase: bool = False, add_prefix_space: bool = False) -> None:
        self._restore({"special_roles": special_roles or {}, "lowercase": lowercase,
                           "add_prefix_space": add_prefix_space})
        tokens = self._token_list(tokenizer)
        roles = self._options["special_roles"]
        for role, t in roles.items():
            if t not in tokens:
                raise ValueError(f"special {role} {t!r} is not in the BPE vocabulary")
        kw = {k: roles.get(k) for k in ("unknown_token", "padding_token", "bos_token", "eos_token",
                                         "cls_token", "sep_token", "mask_token")}
        named = set(roles.values())
        added = [t.content for t in tokenizer.get_added_tokens_decoder().values() if t.special]
        reserved = [t for t in added if t not in named]
        self._setup(tokenizer, Vocab(tokens, reserved_tokens=reserved, **kw))

    def _restore(self, config: dict[str, Any]) -> None:
        self._options = {"special_roles": dict(config.get("special_roles", {})),
                         "lowercase": bool(config.get("lowercase", False)),
                         "add_prefix_space": bool(config.get("add_prefix_space", False))}

    @staticmethod
    def _empty(lowercase: bool, add_prefix_space: bool, model: models.BPE) -> Tokenizer:
        tok = Tokenizer(model)
        if lowercase:
            tok.normalizer = normalizers.Lowercase()
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
        tok.decoder = decoders.ByteLevel()
        tok.post_processor = processors.ByteLevel(trim_offsets=True)
        return tok

    @classmethod
    def train(cls, corpus: str | os.PathLike | Sequence[str | os.PathLike] | Iterable[str], vocab_size: int,
              min_frequency: int = 2, special_tokens: dict[str, str] | None = None,
              lowercase: bool = False, add_prefix_space: bool = False) -> ByteBPETokenizer:
        """Learn byte-level BPE merges from text files or an iterable of sentences.

        Parameters
        ----------
        corpus : path, list of paths, or iterable of str
        vocab_size : int
            Final size, the 256 byte symbols and special tokens included.
        min_frequency : int
            Pairs seen fewer times are not merged.
        special_tokens : dict role -> token, optional
            Defaults to ``{"padding_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>"}``,
            placed first (ids 0, 1, ...). Roles are the :class:`Vocab` keyword names.
        """
        roles = dict(special_tokens) if special_tokens is not None else {
            "padding_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>"}
        tok = cls._empty(lowercase, add_prefix_space, models.BPE())
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      special_tokens=list(roles.values()), show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        if isinstance(corpus, (str, os.PathLike)):
            corpus = [corpus]
        items = list(corpus)
        if not items:
            raise ValueError("the training corpus is empty")
        if all(isinstance(c, os.PathLike) or (isinstance(c, str) and os.path.isfile(c)) for c in items):
            tok.train([os.fspath(c) for c in items], trainer)
        else:
            tok.train_from_iterator(items, trainer)
        return cls(tok, roles, lowercase, add_prefix_space)

    @classmethod
    def from_files(cls, vocab_json: str | os.PathLike, merges_txt: str | os.PathLike,
                   special_tokens: dict[str, str] | None = None, lowercase: bool = False,
                   add_prefix_space: bool = False) -> ByteBPETokenizer:
        """Load GPT-2/RoBERTa style ``vocab.json`` and ``merges.txt``."""
        for p in (vocab_json, merges_txt):
            if not Path(p).is_file():
                raise FileNotFoundError(f"BPE file {p} does not exist")
        model = models.BPE.from_file(os.fspath(vocab_json), os.fspath(merges_txt))
        tok = cls._empty(lowercase, add_prefix_space, model)
        roles = dict(special_tokens or {})
        tok.add_special_tokens(list(roles.values()))
        return cls(tok, roles, lowercase, add_prefix_space)

    def save_model_files(self, directory: str | os.PathLike) -> list[str]:
        """Write ``vocab.json`` and ``merges.txt`` in the GPT-2 layout; returns their paths.

        Use a folder other than the one given to :meth:`save`, whose ``vocab.json``
        is the toolkit's :class:`Vocab`.
        """
        Path(directory).mkdir(parents=True, exist_ok=True)
        return self._tok.model.save(os.fspath(directory))

    def _config(self) -> dict[str, Any]:
        return json.loads(json.dumps(self._options))
