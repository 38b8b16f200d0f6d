"""Tokenizers behind one interface (:class:`BaseTokenizer`).

* :class:`SentencepieceTokenizer` / :func:`train_sentencepiece` (``sentencepiece``)
* :class:`BertWordPieceTokenizer` (``tokenizers``; same ids as ``transformers``' BERT tokenizer)
* :class:`ByteBPETokenizer` (``tokenizers``; GPT-2 style byte-level BPE)
* :class:`BasicTokenizer` (whitespace and punctuation)

Each one's ``save(dir)`` writes the tokenizer with its :class:`~toolkit.nlp.Vocab`;
:func:`load_tokenizer` (or ``BaseTokenizer.load``) reads any of them back.
"""
from .base import BaseTokenizer, load_tokenizer
from .basic import BasicTokenizer
from .hf import BertWordPieceTokenizer, ByteBPETokenizer
from .sentencepiece import SentencepieceTokenizer, train_sentencepiece

__all__ = [
           "BaseTokenizer",
           "BasicTokenizer",
           "BertWordPieceTokenizer",
           "ByteBPETokenizer",
           "SentencepieceTokenizer",
           "load_tokenizer",
           "train_sentencepiece",
]
