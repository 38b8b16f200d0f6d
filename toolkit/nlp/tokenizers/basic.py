"""Whitespace-and-punctuation tokenizer (words and punctuation marks become tokens)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tokenizers import pre_tokenizers

from ..vocab import Vocab
from .base import BaseTokenizer, Offsets

__all__ = ["BasicTokenizer"]


class BasicTokenizer(BaseTokenizer):
    """Split on whitespace and isolate every punctuation character.

    The splitting is BERT's basic pre-tokenizer from the ``tokenizers``
    library (Unicode whitespace and punctuation classes), so offsets always
    point into the original text even with ``lowercase=True``.

    Parameters
    ----------
    vocab : Vocab, optional
        Needed only to encode to ids (``output_type=int``) or decode ids.
    lowercase : bool
        Lower-case each token (after splitting, so offsets are unaffected).
    """

    def __init__(self, vocab: Vocab | None = None, lowercase: bool = False) -> None:
        self._vocab_obj = vocab
        self._lowercase = bool(lowercase)
        self._pre = pre_tokenizers.BertPreTokenizer()

    @property
    def vocab(self) -> Vocab:
        if self._vocab_obj is None:
            raise ValueError("this BasicTokenizer has no vocabulary; pass vocab= to map tokens to ids")
        return self._vocab_obj

    def _split(self, text: str) -> tuple[list[str], Offsets]:
        pieces = self._pre.pre_tokenize_str(text)
        toks = [p[0].lower() for p in pieces] if self._lowercase else [p[0] for p in pieces]
        return toks, [p[1] for p in pieces]

    def _encode(self, texts: list[str], output_type: type) -> list[list]:
        toks = [self._split(t)[0] for t in texts]
        if output_type is str:
            return toks
        vocab = self.vocab
        return [vocab[t] for t in toks]

    def _encode_with_offsets(self, texts: list[str], output_type: type) -> list[tuple[list, Offsets]]:
        out = []
        for t in texts:
            toks, offs = self._split(t)
            out.append((toks if output_type is str else self.vocab[toks], offs))
        return out

    def _decode(self, batch: list[list]) -> list[str]:
        """Tokens joined by single spaces (the original spacing is not kept)."""
        out = []
        for seq in batch:
            toks = seq if (seq and isinstance(seq[0], str)) else self.vocab.to_tokens(seq)
            out.append(" ".join(toks))
        return out

    def _config(self) -> dict[str, Any]:
        return {"lowercase": self._lowercase, "has_vocab": self._vocab_obj is not None}

    def save(self, directory) -> None:
        if self._vocab_obj is None:
            raise ValueError("a BasicTokenizer without a vocabulary cannot be saved; pass vocab=")
        super().save(directory)

    def _save_files(self, directory: Path) -> None:
        pass  # everything is in the config and vocab.json

    @classmethod
    def _from_files(cls, directory: Path, config: dict[str, Any], vocab: Vocab) -> BasicTokenizer:
        return cls(vocab, lowercase=config.get("lowercase", False))
