"""Parallel text: the English-Spanish Bible, and IWSLT/WMT-style file pairs."""
from __future__ import annotations

import os
import re
from pathlib import Path

from toolkit.data import data_root

from . import bible
from ._base import TextDataset, check_split, read_lines

__all__ = ["BibleParallel", "ParallelText"]


class BibleParallel(TextDataset):
    """Aligned verses of the World English Bible and the Reina-Valera 1909.

    Samples are ``(src_text, tgt_text)``; ``references`` lists each sample's
    verse (``"Genesis 1:1"``). Splits are fixed by chapter (see
    :mod:`toolkit.nlp.datasets.bible`): about 90/5/5 % train/dev/test.

    Parameters
    ----------
    split : {"train", "dev", "test"}
    src, tgt : {"en", "es"}
        Source and target language.
    root : path, optional
        Dataset root holding ``bible/<module>.txt`` (default ``data_root()``).
    export : bool
        Run ``diatheke`` to export a missing module (needs the Debian packages
        ``diatheke sword-text-web sword-text-sparv``).
    """

    def __init__(self, split: str = "train", src: str = "en", tgt: str = "es",
                 root: str | os.PathLike | None = None, export: bool = True) -> None:
        check_split(split, bible.SPLITS, "BibleParallel")
        langs = tuple(bible.MODULES)
        if src not in langs or tgt not in langs or src == tgt:
            raise ValueError(f"src and tgt must be two different languages of {langs}, got {src!r}, {tgt!r}")
        pairs = bible.load_bible_pairs(split, root=root, export=export)
        self.references = [p.reference for p in pairs]
        self.split, self.src, self.tgt = split, src, tgt
        super().__init__([(getattr(p, src), getattr(p, tgt)) for p in pairs])


_SEG = re.compile(r"<seg[^>]*>(.*?)</seg>", re.IGNORECASE)
_TAG_LINE = re.compile(r"^\s*<[^>]+>.*</?[^>]+>\s*$|^\s*<[^>]+>\s*$")


def _read_side(path: Path, encoding: str) -> tuple[list[str], bool]:
    """Sentences of one side; ``True`` when they came from ``<seg>`` elements (IWSLT/WMT xml/sgm)."""
    lines = read_lines(path, encoding)
    if path.suffix.lower() in (".xml", ".sgm", ".sgml"):
        return [m.group(1).strip() for line in lines for m in _SEG.finditer(line)], True
    return lines, False


class ParallelText(TextDataset):
    """A parallel corpus stored as two aligned files (line ``i`` of one translates line ``i`` of the other).

    Handles the plain text of WMT/Europarl, IWSLT's ``train.tags.*`` files
    (metadata lines such as ``<url>...</url>`` or ``<talkid>`` are dropped from
    both sides) and IWSLT/WMT dev/test ``.xml``/``.sgm`` files (the ``<seg>``
    elements are read).

    Parameters
    ----------
    src_file, tgt_file : path
        Relative paths are taken under :func:`toolkit.data.data_root`.
    strip_tags : bool
        Drop line pairs that are markup on both sides (IWSLT metadata).
    skip_empty : bool
        Drop pairs where either side is empty after stripping.
    encoding : str
    """

    def __init__(self, src_file: str | os.PathLike, tgt_file: str | os.PathLike, strip_tags: bool = True,
                 skip_empty: bool = True, encoding: str = "utf-8") -> None:
        paths = []
        for f in (src_file, tgt_file):
            p = Path(f).expanduser()
            paths.append(p if p.is_absolute() else data_root() / p)
        missing = [p for p in paths if not p.is_file()]
        if missing:
            from toolkit.data import MissingDatasetError
            raise MissingDatasetError("parallel text", paths[0].parent,
                                      {os.path.relpath(p, paths[0].parent): "one sentence per line" for p in missing})
        (src, src_xml), (tgt, _tgt_xml) = (_read_side(p, encoding) for p in paths)
        if len(src) != len(tgt):
            raise ValueError(f"{paths[0]} has {len(src)} {'segments' if src_xml else 'lines'} but "
                             f"{paths[1]} has {len(tgt)}: the files are not aligned")
        samples = []
        for s, t in zip(src, tgt):
            if strip_tags and _TAG_LINE.match(s) and _TAG_LINE.match(t):
                continue
            s, t = s.strip(), t.strip()
            if skip_empty and (not s or not t):
                continue
            samples.append((s, t))
        self.src_file, self.tgt_file = paths
        super().__init__(samples)
