"""The base pieces the vision datasets build on.

They come from :mod:`toolkit.data` (``Dataset``, ``MissingDatasetError``,
``data_root``); this module is the one place the vision half imports them from.
"""
from __future__ import annotations

from toolkit.data import Dataset, MissingDatasetError, data_root

__all__ = ["Dataset", "MissingDatasetError", "DatasetFormatError", "data_root"]


class DatasetFormatError(ValueError):
    """A dataset file exists but is malformed (truncated, wrong magic number, counts that disagree)."""
