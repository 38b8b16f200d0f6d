"""Text datasets read from standard on-disk layouts under :func:`toolkit.data.data_root`.

Every loader returns a :class:`toolkit.data.Dataset` of tuples (texts first,
label last) and raises :class:`toolkit.data.MissingDatasetError`, listing the
expected files, when they are not there.

``root=`` is always the dataset's own folder, defaulting to
``data_root()/<folder>``: ``glue`` (holding ``SST-2/``, ``MNLI/``, ...),
``trec``, ``aclImdb``, ``squad``, ``wikitext-2``, ``wikitext-103``. The one
exception is :class:`BibleParallel`, whose ``root`` is the data root holding
``bible/`` (as in :mod:`toolkit.nlp.datasets.bible`).
"""
from .classification import (
           GLUE,
           GLUE_TASKS,
           IMDB,
           SST2,
           TREC,
           FastTextLabeled,
           GensimSentiment,
)
from .language_model import WikiText2, WikiText103
from .qa import SQuAD, SquadSample
from .translation import BibleParallel, ParallelText

__all__ = [
           "GLUE",
           "GLUE_TASKS",
           "IMDB",
           "SST2",
           "TREC",
           "BibleParallel",
           "FastTextLabeled",
           "GensimSentiment",
           "ParallelText",
           "SQuAD",
           "SquadSample",
           "WikiText2",
           "WikiText103",
]
