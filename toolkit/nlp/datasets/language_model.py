"""WikiText-2 and WikiText-103 language-modelling corpora (Merity et al., 2016)."""
from __future__ import annotations

import os

from ._base import TextDataset, check_split, read_lines, require_files, resolve_root

__all__ = ["WikiText2", "WikiText103"]


class _WikiText(TextDataset):
    _name = ""
    _folder = ""

    def __init__(self, split: str = "train", raw: bool = False, skip_empty: bool = True,
                 bos: str | None = None, eos: str | None = "<eos>", root: str | os.PathLike | None = None) -> None:
        check_split(split, ("train", "val", "valid", "test"), self._name)
        part = "valid" if split in ("val", "valid") else split
        folder = resolve_root(root, self._folder + ("-raw" if raw else ""))
        ext = "raw" if raw else "tokens"
        files = {f"wiki.{s}.{ext}": f"{s} split" for s in ("train", "valid", "test")}
        require_files(self._name, folder, files,
                      "download and unzip the WikiText archive from "
                      "https://www.salesforce.com/blog/the-wikitext-long-term-dependency-language-modeling-dataset/")
        samples = []
        for line in read_lines(folder / f"wiki.{part}.{ext}"):
            tokens = line.split()
            if not tokens and skip_empty:
                continue
            samples.append(([bos] if bos else []) + tokens + ([eos] if eos else []))
        self.split = part
        super().__init__(samples)

    def tokens(self) -> list[str]:
        """All tokens of the split in order (line ends marked by ``eos``): the stream an LM trains on."""
        return [t for line in self._data for t in line]


class WikiText2(_WikiText):
    """WikiText-2: each sample is one line as a token list ending with ``eos``.

    Files ``wiki.{train,valid,test}.tokens`` under ``data_root()/wikitext-2``
    (``raw=True``: ``wiki.*.raw`` under ``wikitext-2-raw``). Parameters as in
    GluonNLP 0.x: ``skip_empty`` drops blank lines, ``bos``/``eos`` wrap each line.
    """

    _name, _folder = "WikiText-2", "wikitext-2"


class WikiText103(_WikiText):
    """WikiText-103, same layout as :class:`WikiText2` under ``data_root()/wikitext-103``."""

    _name, _folder = "WikiText-103", "wikitext-103"
