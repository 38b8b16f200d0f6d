"""Text half of the toolkit (distribution ``toolkit-nlp``).

Importing ``toolkit.nlp`` is cheap: only :class:`Vocab` is loaded eagerly; the
submodules (``tokenizers``, ``embedding``, ``metrics``, ``decoding``,
``datasets``, ``models``) load on first attribute access, so the package never
pulls in torchvision and does not pay for sentencepiece or sacrebleu unless used.
"""
import importlib

from .vocab import Vocab, count_tokens

_SUBMODULES = ("tokenizers", "embedding", "metrics", "decoding", "datasets", "models")

__all__ = ["Vocab", "count_tokens", "datasets", "decoding", "embedding", "metrics", "models", "tokenizers"]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
