"""Vocabulary: a two-way map between tokens and integer indices.

It follows GluonNLP 0.x's ``gluonnlp.Vocab``: built from a token counter
(special tokens first, then tokens by decreasing frequency, ties broken
alphabetically) or from an ordered token list (the order is kept exactly, so a
``vocab.txt`` shipped with a pretrained model keeps its ids).
"""
from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

__all__ = ["Vocab", "count_tokens"]

# Keyword name -> the short name used for the ``*_id`` properties.
_SPECIAL_KEYS = ("unknown_token", "padding_token", "bos_token", "eos_token",
                 "cls_token", "sep_token", "mask_token")
_ID_NAMES = {"unknown_token": "unk", "padding_token": "pad", "bos_token": "bos",
             "eos_token": "eos", "cls_token": "cls", "sep_token": "sep", "mask_token": "mask"}
_FORMAT = "toolkit.nlp.Vocab/1"


def count_tokens(tokens: Iterable[str], to_lower: bool = False,
                 counter: Counter | None = None) -> Counter:
    """Count tokens, optionally lower-casing them, into a (possibly existing) counter.

    Parameters
    ----------
    tokens : iterable of str
        The tokens to count.
    to_lower : bool
        Lower-case every token before counting.
    counter : collections.Counter, optional
        Counter to update in place; a new one is created if omitted.

    Returns
    -------
    collections.Counter
    """
    counter = Counter() if counter is None else counter
    counter.update(t.lower() for t in tokens) if to_lower else counter.update(tokens)
    return counter


class Vocab:
    """Indexes tokens; maps unknown tokens to ``unknown_token`` when one is defined.

    Parameters
    ----------
    counter_or_tokens : Counter/Mapping[str, int] or sequence of str, optional
        A counter (token -> frequency) or an ordered list of unique tokens. A
        counter is sorted by decreasing frequency (ties alphabetically) after the
        special tokens; a list keeps its order, and special tokens it lacks are
        appended after it so that the listed tokens keep their indices.
    max_size : int, optional
        Counter only: keep at most this many non-special tokens.
    min_freq : int
        Counter only: drop tokens seen fewer times.
    unknown_token, padding_token, bos_token, eos_token, cls_token, sep_token, mask_token : str or None
        Special tokens; ``None`` disables one. Without an unknown token, looking
        up a token that is not in the vocabulary raises ``KeyError``.
    reserved_tokens : sequence of str, optional
        Further special tokens, placed right after the named ones.

    Examples
    --------
    >>> v = Vocab(Counter("a b b c c c".split()))
    >>> v.to_tokens(list(range(len(v))))
    ['<unk>', '<pad>', '<bos>', '<eos>', 'c', 'b', 'a']
    >>> v["c"], v["zzz"], v[["a", "b"]]
    (4, 0, [6, 5])
    """

    def __init__(
        self,
        counter_or_tokens: Mapping[str, int] | Sequence[str] | None = None,
        max_size: int | None = None,
        min_freq: int = 1,
        unknown_token: str | None = "<unk>",
        padding_token: str | None = "<pad>",
        bos_token: str | None = "<bos>",
        eos_token: str | None = "<eos>",
        cls_token: str | None = None,
        sep_token: str | None = None,
        mask_token: str | None = None,
        reserved_tokens: Sequence[str] | None = None,
    ) -> None:
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < 0:
            raise ValueError(f"max_size must be >= 0 or None, got {max_size}")
        specials = dict(zip(_SPECIAL_KEYS, (unknown_token, padding_token, bos_token, eos_token,
                                            cls_token, sep_token, mask_token)))
        for key, tok in specials.items():
            if tok is not None and not isinstance(tok, str):
                raise TypeError(f"{key} must be a str or None, got {type(tok).__name__}")
        reserved = list(reserved_tokens or [])
        for tok in reserved:
            if not isinstance(tok, str):
                raise TypeError(f"reserved tokens must be str, got {tok!r}")
        # Specials in a fixed order, each once (two keywords may share a token, e.g. pad == eos).
        special_list: list[str] = []
        for tok in [t for t in specials.values() if t is not None] + reserved:
            if tok not in special_list:
                special_list.append(tok)
        if len(reserved) != len(set(reserved)):
            raise ValueError(f"reserved_tokens has duplicates: {reserved}")

        if counter_or_tokens is None:
            tokens = list(special_list)
        elif isinstance(counter_or_tokens, Mapping):
            special_set = set(special_list)
            items = [(t, c) for t, c in counter_or_tokens.items()
                     if c >= min_freq and t not in special_set]
            for t, _ in items:
                if not isinstance(t, str):
                    raise TypeError(f"vocabulary tokens must be str, got {t!r}")
            items.sort(key=lambda tc: (-tc[1], tc[0]))
            if max_size is not None:
                items = items[:max_size]
            tokens = special_list + [t for t, _ in items]
        elif isinstance(counter_or_tokens, (str, bytes)):
            raise TypeError("counter_or_tokens must be a Counter or a list of tokens, not a string")
        else:
            listed = list(counter_or_tokens)
            if max_size is not None or min_freq != 1:
                raise ValueError("max_size/min_freq only apply when building from a counter")
            seen: set[str] = set()
            for t in listed:
                if not isinstance(t, str):
                    raise TypeError(f"vocabulary tokens must be str, got {t!r}")
                if t in seen:
                    raise ValueError(f"token {t!r} appears twice in the token list")
                seen.add(t)
            tokens = listed + [t for t in special_list if t not in seen]

        self._idx_to_token: list[str] = tokens
        self._token_to_idx: dict[str, int] = {t: i for i, t in enumerate(tokens)}
        self._specials: dict[str, str | None] = specials
        self._reserved: list[str] = reserved
        self._unk_idx: int | None = None if unknown_token is None else self._token_to_idx[unknown_token]

    # ------------------------------------------------------------------ lookups
    def __len__(self) -> int:
        return len(self._idx_to_token)

    def __contains__(self, token: Hashable) -> bool:
        return token in self._token_to_idx

    def __iter__(self):
        return iter(self._idx_to_token)

    @overload
    def __getitem__(self, tokens: str) -> int: ...
    @overload
    def __getitem__(self, tokens: Sequence[str]) -> list[int]: ...

    def __getitem__(self, tokens):
        """Index of a token, or the list of indices of a (nested) list of tokens."""
        if isinstance(tokens, str):
            idx = self._token_to_idx.get(tokens)
            if idx is not None:
                return idx
            if self._unk_idx is None:
                raise KeyError(f"token {tokens!r} is not in the vocabulary and it has no unknown_token")
            return self._unk_idx
        if isinstance(tokens, (list, tuple)):
            get = self._token_to_idx.get
            unk = self._unk_idx
            if unk is not None and all(isinstance(t, str) for t in tokens):
                return [get(t, unk) for t in tokens]  # fast path for the common flat case
            return [self[t] for t in tokens]
        raise TypeError(f"expected a token (str) or a list of tokens, got {type(tokens).__name__}")

    __call__ = __getitem__

    def to_indices(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Same as ``vocab[tokens]``."""
        return self[tokens]

    def to_tokens(self, indices: int | Sequence[int]) -> str | list[str]:
        """Token of an index, or tokens of a (nested) list of indices.

        Raises
        ------
        IndexError
            An index is negative or not smaller than ``len(vocab)``.
        """
        if isinstance(indices, (list, tuple)):
            return [self.to_tokens(i) for i in indices]
        if hasattr(indices, "tolist"):  # numpy / torch
            return self.to_tokens(indices.tolist())
        if isinstance(indices, bool) or not isinstance(indices, int):
            raise TypeError(f"indices must be int or a list of int, got {type(indices).__name__}")
        if not 0 <= indices < len(self._idx_to_token):
            raise IndexError(f"index {indices} is out of range for a vocabulary of {len(self)} tokens")
        return self._idx_to_token[indices]

    # -------------------------------------------------------------- properties
    @property
    def idx_to_token(self) -> list[str]:
        """All tokens in index order (a copy)."""
        return list(self._idx_to_token)

    @property
    def token_to_idx(self) -> dict[str, int]:
        """Token -> index mapping (a copy)."""
        return dict(self._token_to_idx)

    @property
    def special_tokens(self) -> list[str]:
        """Named special tokens then reserved tokens, without duplicates."""
        out: list[str] = []
        for t in [t for t in self._specials.values() if t is not None] + self._reserved:
            if t not in out:
                out.append(t)
        return out

    @property
    def reserved_tokens(self) -> list[str]:
        return list(self._reserved)

    def _special_id(self, key: str) -> int | None:
        tok = self._specials[key]
        return None if tok is None else self._token_to_idx[tok]

    unknown_token = property(lambda self: self._specials["unknown_token"])
    padding_token = property(lambda self: self._specials["padding_token"])
    bos_token = property(lambda self: self._specials["bos_token"])
    eos_token = property(lambda self: self._specials["eos_token"])
    cls_token = property(lambda self: self._specials["cls_token"])
    sep_token = property(lambda self: self._specials["sep_token"])
    mask_token = property(lambda self: self._specials["mask_token"])
    # Short aliases (GluonNLP's numpy-era names).
    unk_token = unknown_token
    pad_token = padding_token
    unk_id = property(lambda self: self._special_id("unknown_token"), doc="Index of the unknown token or None.")
    pad_id = property(lambda self: self._special_id("padding_token"), doc="Index of the padding token or None.")
    bos_id = property(lambda self: self._special_id("bos_token"), doc="Index of the bos token or None.")
    eos_id = property(lambda self: self._special_id("eos_token"), doc="Index of the eos token or None.")
    cls_id = property(lambda self: self._special_id("cls_token"), doc="Index of the cls token or None.")
    sep_id = property(lambda self: self._special_id("sep_token"), doc="Index of the sep token or None.")
    mask_id = property(lambda self: self._special_id("mask_token"), doc="Index of the mask token or None.")

    # ----------------------------------------------------------- persistence
    def to_json(self) -> str:
        """Serialise tokens (in index order) and special tokens to a JSON string."""
        return json.dumps({
            "format": _FORMAT,
            "idx_to_token": self._idx_to_token,
            "special_tokens": self._specials,
            "reserved_tokens": self._reserved,
        }, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Vocab:
        """Rebuild a vocabulary written by :meth:`to_json`; indices are preserved."""
        try:
            data: dict[str, Any] = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"vocabulary JSON is not valid JSON: {e}") from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"not a vocabulary JSON (expected format {_FORMAT!r})")
        try:
            specials = {k: data["special_tokens"].get(k) for k in _SPECIAL_KEYS}
            tokens = data["idx_to_token"]
            reserved = data.get("reserved_tokens") or []
        except (KeyError, AttributeError, TypeError) as e:
            raise ValueError(f"vocabulary JSON misses a field: {e}") from None
        vocab = cls(tokens, reserved_tokens=reserved, **specials)
        if len(vocab) != len(tokens):
            raise ValueError("vocabulary JSON lists special tokens that are not in idx_to_token")
        return vocab

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_json` to ``path`` (UTF-8)."""
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocab:
        """Read a vocabulary written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"vocabulary file {path} does not exist")
        return cls.from_json(path.read_text(encoding="utf-8"))

    # ------------------------------------------------------------------ misc
    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Vocab) and self._idx_to_token == other._idx_to_token
                and self._specials == other._specials and self._reserved == other._reserved)

    def __repr__(self) -> str:
        specials = ", ".join(f"{_ID_NAMES[k]}={v!r}" for k, v in self._specials.items() if v is not None)
        return f"Vocab(size={len(self)}, {specials})"
