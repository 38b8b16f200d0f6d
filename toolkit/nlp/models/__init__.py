"""Text model zoo: every family registers its builders with :mod:`toolkit.zoo` on import."""
from . import bert
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

__all__ = [
    "BertForMaskedLM",
    "BertForPretraining",
    "BertForQuestionAnswering",
    "BertForSequenceClassification",
    "BertModel",
    "Config",
    "ConfigRegistry",
    "bert_cfg_reg",
    "build_bert",
]
