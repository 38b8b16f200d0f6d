"""SQuAD 1.1 and 2.0 reading comprehension (the official JSON files)."""
from __future__ import annotations

import json
import os
from typing import NamedTuple

from ._base import TextDataset, check_split, require_files, resolve_root

__all__ = ["SQuAD", "SquadSample"]


class SquadSample(NamedTuple):
    """One question. ``answers``/``answer_starts`` are empty for unanswerable (2.0) questions."""

    qid: str
    title: str
    context: str
    question: str
    answers: list[str]
    answer_starts: list[int]
    is_impossible: bool


class SQuAD(TextDataset):
    """SQuAD question answering: one :class:`SquadSample` per question.

    Files ``train-v1.1.json``, ``dev-v1.1.json``, ``train-v2.0.json``,
    ``dev-v2.0.json`` under ``data_root()/squad``. Every answer start is
    checked against its context (``context[start:start+len(text)] == text``);
    a mismatch is an error naming the question.

    Parameters
    ----------
    version : {"1.1", "2.0"}
    split : {"train", "dev"}
    """

    def __init__(self, version: str = "1.1", split: str = "train", root: str | os.PathLike | None = None) -> None:
        version = str(version)
        check_split(version, ("1.1", "2.0"), "SQuAD version")
        check_split(split, ("train", "dev"), "SQuAD")
        folder = resolve_root(root, "squad")
        fname = f"{split}-v{version}.json"
        require_files(f"SQuAD {version}", folder, {fname: "official SQuAD JSON"},
                      "download it from https://rajpurkar.github.io/SQuAD-explorer/")
        path = folder / fname
        try:
            data = json.loads(path.read_text(encoding="utf-8"))["data"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{path} is not a SQuAD JSON file: {e}") from None
        samples = []
        for article in data:
            title = article.get("title", "")
            for para in article["paragraphs"]:
                context = para["context"]
                for qa in para["qas"]:
                    answers = qa.get("answers", [])
                    texts = [a["text"] for a in answers]
                    starts = [int(a["answer_start"]) for a in answers]
                    for t, s in zip(texts, starts):
                        if context[s:s + len(t)] != t:
                            raise ValueError(f"{path}: question {qa['id']}: answer {t!r} is not at "
                                             f"character {s} of its context")
                    samples.append(SquadSample(qa["id"], title, context, qa["question"], texts, starts,
                                               bool(qa.get("is_impossible", False))))
        self.version, self.split = version, split
        super().__init__(samples)
