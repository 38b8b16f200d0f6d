"""Sentence (pair) classification data shared by the TextCNN and BERT fine-tuning scripts.

``load_classification(name, ...)`` returns ``{"train": [...], "dev": [...], "test": [...]}``
of ``(texts, label)`` samples (``texts`` a tuple of one or two strings) and the
class names. Datasets come from :mod:`toolkit.nlp.datasets`; ``tsv`` reads
``DIR/{train,dev,test}.tsv`` files with lines ``text<TAB>label`` or
``text_a<TAB>text_b<TAB>label`` (the test file may be missing: dev is then
also used as test).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["DATASETS", "load_classification"]

DATASETS = ("gensim", "sst2", "trec", "imdb", "glue", "tsv")


def _split_off(samples: list, every: int = 10) -> tuple[list, list]:
    """Fixed split: every ``every``-th sample goes to the second part (no randomness)."""
    return [s for i, s in enumerate(samples) if i % every], [s for i, s in enumerate(samples) if not i % every]


def _as_pairs(dataset) -> list[tuple[tuple[str, ...], Any]]:
    return [(tuple(row[:-1]), row[-1]) for row in dataset]


def _read_tsv(path: Path) -> list[tuple[tuple[str, ...], str]]:
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) not in (2, 3):
            raise SystemExit(f"{path}:{lineno}: expected text<TAB>label or text_a<TAB>text_b<TAB>label")
        rows.append((tuple(cols[:-1]), cols[-1].strip()))
    return rows


def load_classification(name: str, data_dir: str | None = None, task: str = "sst2",
                        max_train_samples: int = 0) -> tuple[dict[str, list], list[str]]:
    """Load a classification dataset as ``(splits, class_names)``.

    Splits without labels in the original release (GLUE/SST-2 test) are
    replaced by the dev split as test, and a fixed tenth of train becomes dev.
    """
    from toolkit.nlp import datasets as D

    if name == "gensim":
        train_all = _as_pairs(D.GensimSentiment("train", root=data_dir))
        train, dev = _split_off(train_all, 8)
        splits = {"train": train, "dev": dev, "test": _as_pairs(D.GensimSentiment("test", root=data_dir))}
        classes = ["neg", "pos"]
    elif name in ("sst2", "glue"):
        ds_train = D.GLUE(task if name == "glue" else "sst2", "train", root=data_dir)
        classes = list(ds_train.classes or [])
        train, dev = _split_off(_as_pairs(ds_train))
        splits = {"train": train, "dev": dev, "test": _as_pairs(D.GLUE(ds_train.task, "dev", root=data_dir))}
    elif name == "trec":
        ds_train = D.TREC("train", root=data_dir)
        classes = list(getattr(ds_train, "classes", []))
        train, dev = _split_off(_as_pairs(ds_train))
        splits = {"train": train, "dev": dev, "test": _as_pairs(D.TREC("test", root=data_dir))}
    elif name == "imdb":
        train, dev = _split_off(_as_pairs(D.IMDB("train", root=data_dir)))
        splits = {"train": train, "dev": dev, "test": _as_pairs(D.IMDB("test", root=data_dir))}
        classes = ["neg", "pos"]
    elif name == "tsv":
        if not data_dir:
            raise SystemExit("--dataset tsv needs --data-dir with train.tsv and dev.tsv")
        root = Path(data_dir)
        for f in ("train.tsv", "dev.tsv"):
            if not (root / f).is_file():
                raise SystemExit(f"missing {root / f} (lines: text<TAB>label)")
        raw = {s: _read_tsv(root / f"{s}.tsv") for s in ("train", "dev", "test") if (root / f"{s}.tsv").is_file()}
        raw.setdefault("test", raw["dev"])
        classes = sorted({lab for rows in raw.values() for _, lab in rows})
        index = {c: i for i, c in enumerate(classes)}
        splits = {s: [(t, index[lab]) for t, lab in rows] for s, rows in raw.items()}
    else:
        raise SystemExit(f"unknown dataset {name!r}; choose from {DATASETS}")
    if max_train_samples:
        splits["train"] = splits["train"][:max_train_samples]
    for split, rows in splits.items():
        if not rows:
            raise SystemExit(f"the {split} split of {name} is empty")
    if not classes:
        classes = [str(c) for c in sorted({lab for rows in splits.values() for _, lab in rows})]
    return splits, classes
