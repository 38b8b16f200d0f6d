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

The package is split as :mod:`toolkit.deploy` is: :mod:`.export` (the writer),
:mod:`.tokenizer` (reading the tokenizer back), :mod:`.inputs` (text files and
encoding), :mod:`.classify` and :mod:`.translate` (the two predictors, registered
with ``toolkit predict`` on import).
"""
from .classify import classify_text
from .export import DEFAULT_MAX_LEN_A, DEFAULT_MAX_LEN_B, TEXT_TASKS, export_text, tokenizer_file_name
from .inputs import encode_classification, encode_source, read_text_inputs
from .tokenizer import load_deploy_tokenizer
from .translate import decode_limit, greedy_translate, translate

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
