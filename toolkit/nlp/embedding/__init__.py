"""Pretrained word vectors (:class:`TokenEmbedding`) and their intrinsic evaluation."""
from .evaluation import (
           evaluate_analogy,
           evaluate_similarity,
           read_analogies,
           read_word_pairs,
)
from .token_embedding import EmbeddingFormatError, TokenEmbedding

__all__ = [
           "EmbeddingFormatError",
           "TokenEmbedding",
           "evaluate_analogy",
           "evaluate_similarity",
           "read_analogies",
           "read_word_pairs",
]
