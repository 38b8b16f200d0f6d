"""Text model zoo: every family registers its builders with :mod:`toolkit.zoo` on import.

Families: BERT (:mod:`.bert`), the Transformer encoder-decoder
(:mod:`.transformer`), LSTM language models (:mod:`.language_model`) and
TextCNN (:mod:`.textcnn`). Each has a config registry (``*_cfg_reg``),
``Model.get_cfg(name)`` and ``Model.from_cfg(cfg)``.
"""
from . import bert, language_model, textcnn, transformer  # noqa: F401 - importing registers the models
from .bert import (
    BertForMaskedLM,
    BertForPretraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertModel,
    bert_cfg_reg,
    build_bert,
)
from .config import Config, ConfigRegistry
from .language_model import AWDRNN, LSTMLanguageModel, StandardRNN, build_language_model, lm_cfg_reg
from .textcnn import TextCNN, build_textcnn, textcnn_cfg_reg
from .transformer import TransformerModel, build_transformer, transformer_cfg_reg

__all__ = [
    "AWDRNN",
    "BertForMaskedLM",
    "BertForPretraining",
    "BertForQuestionAnswering",
    "BertForSequenceClassification",
    "BertModel",
    "Config",
    "ConfigRegistry",
    "LSTMLanguageModel",
    "StandardRNN",
    "TextCNN",
    "TransformerModel",
    "bert_cfg_reg",
    "build_bert",
    "build_language_model",
    "build_textcnn",
    "build_transformer",
    "lm_cfg_reg",
    "textcnn_cfg_reg",
    "transformer_cfg_reg",
]
