"""The interface every tokenizer follows, and saving/loading a tokenizer with its vocabulary."""
from __future__ import annotations

import abc
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..vocab import Vocab

__all__ = ["CONFIG_NAME", "VOCAB_NAME", "BaseTokenizer", "load_tokenizer"]

CONFIG_NAME = "tokenizer_config.json"
VOCAB_NAME = "vocab.json"
_FORMAT = "toolkit.nlp.tokenizer/1"
_REGISTRY: dict[str, type[BaseTokenizer]] = {}

Offsets = list[tuple[int, int]]


def _check_output_type(output_type: Any) -> None:
    if output_type is not int and output_type is not str:
        raise ValueError(f"output_type must be int or str, got {output_type!r}")


def _check_text(text: Any) -> None:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str or a list of str, got {type(text).__name__}")


class BaseTokenizer(abc.ABC):
    """Common interface: text -> tokens or ids (with character offsets) -> text.

    Subclasses implement :meth:`_encode`, :meth:`_encode_with_offsets`,
    :meth:`_decode`, :meth:`_save_files` and :meth:`_from_files`; batching,
    argument checks and the on-disk layout live here.

    On disk a tokenizer is a folder holding ``tokenizer_config.json`` (class
    name and options), ``vocab.json`` (its :class:`~toolkit.nlp.Vocab`) and the
    model files of the backing library.
    """

    _name: ClassVar[str]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):  # private bases are not saveable classes
            cls._name = cls.__name__
            _REGISTRY[cls.__name__] = cls

    # ------------------------------------------------------------- interface
    @property
    @abc.abstractmethod
    def vocab(self) -> Vocab:
        """The vocabulary whose indices :meth:`encode` returns."""

    @abc.abstractmethod
    def _encode(self, texts: list[str], output_type: type) -> list[list]:
        """Encode a batch of strings."""

    @abc.abstractmethod
    def _encode_with_offsets(self, texts: list[str], output_type: type) -> list[tuple[list, Offsets]]:
        """Encode a batch of strings, returning tokens and (start, end) character offsets."""

    @abc.abstractmethod
    def _decode(self, batch: list[list]) -> list[str]:
        """Decode a batch of id (or token) lists."""

    @abc.abstractmethod
    def _config(self) -> dict[str, Any]:
        """JSON-serialisable constructor options written to the config file."""

    @abc.abstractmethod
    def _save_files(self, directory: Path) -> None:
        """Write the backing library's model files into ``directory``."""

    @classmethod
    @abc.abstractmethod
    def _from_files(cls, directory: Path, config: dict[str, Any], vocab: Vocab) -> BaseTokenizer:
        """Rebuild from what :meth:`_save_files` and :meth:`_config` wrote."""

    # ----------------------------------------------------------- public API
    def encode(self, text: str | Sequence[str], output_type: type = int) -> list:
        """Tokenize ``text``.

        Parameters
        ----------
        text : str or list of str
            One string, or a batch of strings (encoded together, which is faster).
        output_type : {int, str}
            Return token ids (``int``) or token strings (``str``).

        Returns
        -------
        list
            Ids or tokens for one string; a list of such lists for a batch.
        """
        _check_output_type(output_type)
        if isinstance(text, str):
            return self._encode([text], output_type)[0]
        texts = self._as_batch(text)
        return self._encode(texts, output_type) if texts else []

    def encode_with_offsets(self, text: str | Sequence[str], output_type: type = str):
        """Tokenize and give each token's ``(start, end)`` character span in ``text``.

        Returns
        -------
        (tokens_or_ids, offsets) for one string, or a list of such pairs for a batch.
        ``text[start:end]`` is the piece of the input a token came from
        (special tokens added by the tokenizer get ``(0, 0)``).
        """
        _check_output_type(output_type)
        if isinstance(text, str):
            return self._encode_with_offsets([text], output_type)[0]
        texts = self._as_batch(text)
        return self._encode_with_offsets(texts, output_type) if texts else []

    def decode(self, ids: Sequence[int] | Sequence[Sequence[int]]) -> str | list[str]:
        """Turn ids (or tokens) back into text; a batch (list of lists) gives a list of strings."""
        if hasattr(ids, "tolist"):  # torch / numpy
            ids = ids.tolist()
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
            raise TypeError(f"decode expects a list of ids or a list of lists, got {type(ids).__name__}")
        if len(ids) and isinstance(ids[0], (list, tuple)):
            return self._decode([list(x) for x in ids])
        return self._decode([list(ids)])[0]

    def __call__(self, text: str | Sequence[str], output_type: type = int) -> list:
        return self.encode(text, output_type)

    def __len__(self) -> int:
        return len(self.vocab)

    # ---------------------------------------------------------- persistence
    def save(self, directory: str | os.PathLike) -> None:
        """Write the tokenizer and its vocabulary into ``directory`` (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._save_files(directory)
        self.vocab.save(directory / VOCAB_NAME)
        config = {"format": _FORMAT, "class": self._name, "config": self._config()}
        (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | os.PathLike) -> BaseTokenizer:
        """Load a tokenizer written by :meth:`save`.

        Called on :class:`BaseTokenizer` it returns whichever class was saved;
        called on a subclass it checks that the folder holds that class.
        """
        directory = Path(directory)
        config_path = directory / CONFIG_NAME
        if not config_path.is_file():
            raise FileNotFoundError(f"{directory} is not a saved tokenizer: {CONFIG_NAME} is missing")
        try:
            data = json.loads(config_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{config_path} is not valid JSON: {e}") from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"{config_path} is not a tokenizer config (format {_FORMAT!r} expected)")
        name = data.get("class")
        target = _REGISTRY.get(name)
        if target is None:
            raise ValueError(f"{config_path} names unknown tokenizer class {name!r}; known: {sorted(_REGISTRY)}")
        if cls is not BaseTokenizer and not issubclass(target, cls):
            raise ValueError(f"{directory} holds a {name}, not a {cls.__name__}")
        vocab = Vocab.load(directory / VOCAB_NAME)
        return target._from_files(directory, data.get("config", {}), vocab)

    # --------------------------------------------------------------- helpers
    @staticmethod
    def _as_batch(text: Sequence[str]) -> list[str]:
        if not isinstance(text, (list, tuple)):
            raise TypeError(f"text must be a str or a list of str, got {type(text).__name__}")
        for t in text:
            _check_text(t)
        return list(text)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self._config().items() if not isinstance(v, (dict, list)))
        return f"{type(self).__name__}(vocab_size={len(self.vocab)}{', ' if opts else ''}{opts})"


def load_tokenizer(directory: str | os.PathLike) -> BaseTokenizer:
    """Load any tokenizer saved with :meth:`BaseTokenizer.save`."""
    return BaseTokenizer.load(directory)
