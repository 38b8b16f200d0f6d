"""Text classification and sentence-pair datasets: GLUE (SST-2 included), TREC, IMDB, fastText-labelled text."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import ClassVar, NamedTuple

from toolkit.data import MissingDatasetError

from ._base import TextDataset, check_split, read_lines, require_files, resolve_root

__all__ = ["GLUE", "GLUE_TASKS", "IMDB", "SST2", "TREC", "FastTextLabeled", "GensimSentiment"]


class _Task(NamedTuple):
    folder: str
    text_cols: tuple[str | int, ...]   # header names, or column numbers for header-less files
    label_col: str | int | None
    classes: tuple[str, ...] | None     # label strings in class-id order; None: regression
    test_text_cols: tuple[str, ...]
    header: bool = True                 # train/dev files have a header row


# Column layout of the files written by the GLUE download script; label order as in the
# GLUE papers/leaderboard (the same as the Hugging Face `glue` dataset).
GLUE_TASKS: dict[str, _Task] = {
    "cola": _Task("CoLA", (3,), 1, ("0", "1"), ("sentence",), header=False),
    "sst2": _Task("SST-2", ("sentence",), "label", ("0", "1"), ("sentence",)),
    "mrpc": _Task("MRPC", ("#1 String", "#2 String"), "Quality", ("0", "1"), ("#1 String", "#2 String")),
    "qqp": _Task("QQP", ("question1", "question2"), "is_duplicate", ("0", "1"), ("question1", "question2")),
    "stsb": _Task("STS-B", ("sentence1", "sentence2"), "score", None, ("sentence1", "sentence2")),
    "mnli": _Task("MNLI", ("sentence1", "sentence2"), "gold_label", ("entailment", "neutral", "contradiction"),
                  ("sentence1", "sentence2")),
    "qnli": _Task("QNLI", ("question", "sentence"), "label", ("entailment", "not_entailment"),
                  ("question", "sentence")),
    "rte": _Task("RTE", ("sentence1", "sentence2"), "label", ("entailment", "not_entailment"),
                 ("sentence1", "sentence2")),
    "wnli": _Task("WNLI", ("sentence1", "sentence2"), "label", ("0", "1"), ("sentence1", "sentence2")),
}
_MNLI_SPLITS = ("train", "dev_matched", "dev_mismatched", "test_matched", "test_mismatched")


def _task_key(task: str) -> str:
    key = task.lower().replace("-", "").replace("_", "")
    if key not in GLUE_TASKS:
        raise ValueError(f"unknown GLUE task {task!r}; known: {sorted(GLUE_TASKS)}")
    return key


class GLUE(TextDataset):
    """A GLUE task read from the TSV files of the GLUE download script.

    Samples are ``(text, label)`` or ``(text_a, text_b, label)``; labels are
    class ids (``classes`` gives their names) or floats for STS-B. Test files
    carry no labels, so test samples are ``(text,)`` / ``(text_a, text_b)``.

    Parameters
    ----------
    task : str
        ``cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, wnli`` (GLUE folder
        names such as ``"SST-2"`` work too).
    split : str
        ``train, dev, test``; MNLI: ``train, dev_matched, dev_mismatched,
        test_matched, test_mismatched``.
    root : path, optional
        Folder holding the task folders (default ``data_root()/glue``).
    """

    def __init__(self, task: str, split: str = "train", root: str | os.PathLike | None = None) -> None:
        key = _task_key(task)
        spec = GLUE_TASKS[key]
        check_split(split, _MNLI_SPLITS if key == "mnli" else ("train", "dev", "test"), f"GLUE {key}")
        folder = resolve_root(root, "glue") / spec.folder
        fname = f"{split}.tsv"
        require_files(f"GLUE {key}", folder, {fname: "tab-separated, as written by the GLUE download script"},
                      "get GLUE with the download_glue_data.py script (https://gluebenchmark.com/tasks)")
        self.task, self.split, self.classes = key, split, spec.classes
        path = folder / fname
        rows = [line.split("\t") for line in read_lines(path, "utf-8-sig") if line.strip()]
        is_test = split.startswith("test")
        header = is_test or spec.header
        names = rows[0] if header and rows else []
        body = rows[1:] if header else rows

        def column(col: str | int) -> int:
            if isinstance(col, int):
                return col
            if col not in names:
                raise ValueError(f"{path}: the header has no column {col!r} (header: {names})")
            return names.index(col)

        text_idx = [column(c) for c in (spec.test_text_cols if is_test else spec.text_cols)]
        label_idx = None if is_test else column(spec.label_col)
        need = max(text_idx + ([label_idx] if label_idx is not None else [])) + 1
        lookup = {c: i for i, c in enumerate(spec.classes)} if spec.classes else None
        samples = []
        for lineno, row in enumerate(body, 2 if header else 1):
            if len(row) < need:
                raise ValueError(f"{path}:{lineno}: expected at least {need} tab-separated columns, got {len(row)}")
            texts = tuple(row[i] for i in text_idx)
            if label_idx is None:
                samples.append(texts)
                continue
            raw = row[label_idx].strip()
            if lookup is None:
                try:
                    label: int | float = float(raw)
                except ValueError:
                    raise ValueError(f"{path}:{lineno}: score {raw!r} is not a number") from None
            elif raw in lookup:
                label = lookup[raw]
            else:
                raise ValueError(f"{path}:{lineno}: label {raw!r} is not one of {list(spec.classes)}")
            samples.append((*texts, label))
        super().__init__(samples)


class SST2(GLUE):
    """Stanford Sentiment Treebank, binary, in its GLUE form: ``(sentence, label)``, 1 = positive."""

    def __init__(self, split: str = "train", root: str | os.PathLike | None = None) -> None:
        super().__init__("sst2", split, root)


class TREC(TextDataset):
    """TREC question classification (Li & Roth): ``(question, label)``.

    Files ``train_5500.label`` and ``TREC_10.label`` (lines ``DESC:manner How did ...``,
    Latin-1) under ``data_root()/trec``.

    Parameters
    ----------
    split : {"train", "test"}
    fine : bool
        ``False``: label is the id of the coarse class in :attr:`COARSE`;
        ``True``: label is the fine class string (e.g. ``"DESC:manner"``).
    """

    COARSE = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
    FILES: ClassVar[dict[str, str]] = {"train": "train_5500.label", "test": "TREC_10.label"}

    def __init__(self, split: str = "train", fine: bool = False, root: str | os.PathLike | None = None) -> None:
        check_split(split, tuple(self.FILES), "TREC")
        folder = resolve_root(root, "trec")
        require_files("TREC", folder, {f: "label, space, question per line" for f in self.FILES.values()},
                      "download train_5500.label and TREC_10.label from https://cogcomp.seas.upenn.edu/Data/QA/QC/")
        path = folder / self.FILES[split]
        samples = []
        for lineno, line in enumerate(read_lines(path, "latin-1"), 1):
            if not line.strip():
                continue
            label, _, text = line.partition(" ")
            coarse = label.split(":", 1)[0]
            if ":" not in label or coarse not in self.COARSE or not text.strip():
                raise ValueError(f"{path}:{lineno}: expected 'COARSE:fine question', got {line[:60]!r}")
            samples.append((text.strip(), label if fine else self.COARSE.index(coarse)))
        self.classes = None if fine else self.COARSE
        super().__init__(samples)


class IMDB(TextDataset):
    """Large Movie Review Dataset in its ``aclImdb`` folder layout.

    Samples are ``(review, label)``: label 1 = positive, 0 = negative, or the
    1-10 rating from the file name with ``label="rating"``. The ``unsup`` split
    (``train/unsup``) has label ``-1`` / rating 0.

    Parameters
    ----------
    split : {"train", "test", "unsup"}
    label : {"binary", "rating"}
    root : path, optional
        The ``aclImdb`` folder itself (default ``data_root()/aclImdb``).
    """

    _NAME = re.compile(r"^(\d+)_(\d+)\.txt$")

    def __init__(self, split: str = "train", label: str = "binary", root: str | os.PathLike | None = None) -> None:
        check_split(split, ("train", "test", "unsup"), "IMDB")
        if label not in ("binary", "rating"):
            raise ValueError(f"label must be 'binary' or 'rating', got {label!r}")
        base = resolve_root(root, "aclImdb")
        parts = {"unsup": [("train/unsup", -1)]}.get(split, [(f"{split}/pos", 1), (f"{split}/neg", 0)])
        if not all((base / p).is_dir() for p, _ in parts):
            raise MissingDatasetError("IMDB", base, {f"{p}/": "one review per <id>_<rating>.txt" for p, _ in parts},
                                      "download and untar https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz")
        samples = []
        for sub, polarity in parts:
            files = []
            for f in (base / sub).iterdir():
                m = self._NAME.match(f.name)
                if m:
                    files.append((int(m.group(1)), int(m.group(2)), f))
            for _, rating, f in sorted(files):
                text = f.read_text(encoding="utf-8")
                samples.append((text, polarity if label == "binary" else rating))
        super().__init__(samples)


class FastTextLabeled(TextDataset):
    """Lines in fastText's supervised format: ``__label__pos some text``.

    Samples are ``(text, label_id)`` with ``classes`` the sorted label names
    (unless given). A line may carry several labels; the first one is used.
    """

    PREFIX = "__label__"

    def __init__(self, path: str | os.PathLike, classes: tuple[str, ...] | None = None,
                 encoding: str = "utf-8") -> None:
        path = Path(path)
        if not path.is_file():
            raise MissingDatasetError("fastText-labelled text", path.parent, [path.name])
        rows = []
        for lineno, line in enumerate(read_lines(path, encoding), 1):
            if not line.strip():
                continue
            tokens = line.split()
            labels = [t[len(self.PREFIX):] for t in tokens if t.startswith(self.PREFIX)]
            text = " ".join(t for t in tokens if not t.startswith(self.PREFIX))
            if not labels:
                raise ValueError(f"{path}:{lineno}: no {self.PREFIX} label")
            rows.append((text, labels[0]))
        self.classes = tuple(classes) if classes is not None else tuple(sorted({lab for _, lab in rows}))
        index = {c: i for i, c in enumerate(self.classes)}
        for text, lab in rows:
            if lab not in index:
                raise ValueError(f"{path}: label {lab!r} is not one of {self.classes}")
        super().__init__([(text, index[lab]) for text, lab in rows])


def _gensim_test_data() -> Path | None:
    import importlib.util
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "test" / "test_data"


class GensimSentiment(FastTextLabeled):
    """The 200 movie-review sentences with polarity labels shipped in gensim's test data.

    They are Pang & Lee sentence-polarity sentences (``pang_lee_polarity.cor``,
    fastText format); labels: 0 = negative, 1 = positive. Read from
    ``root/pang_lee_polarity.cor`` when ``root`` is given, else from the
    installed ``gensim`` package. Splits are fixed: every fifth sentence
    (index 0, 5, ...) is ``test``, the rest ``train``; ``"all"`` gives all.
    """

    FILE = "pang_lee_polarity.cor"

    def __init__(self, split: str = "all", root: str | os.PathLike | None = None) -> None:
        check_split(split, ("all", "train", "test"), "GensimSentiment")
        folder = Path(root) if root is not None else _gensim_test_data()
        if folder is None or not (folder / self.FILE).is_file():
            raise MissingDatasetError("gensim sentiment", folder or Path("<gensim>/test/test_data"), [self.FILE],
                                      "pip install gensim (the file ships in its test data)")
        # The file is Windows-1252 (0x97 em dashes), not UTF-8.
        super().__init__(folder / self.FILE, classes=("neg", "pos"), encoding="cp1252")
        if split != "all":
            keep = [s for i, s in enumerate(self._data) if (i % 5 == 0) == (split == "test")]
            self._data = keep
