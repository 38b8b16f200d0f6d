"""JSON-lines metric logs plus a human-readable text log."""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

__all__ = ["JSONLinesLogger", "read_jsonl"]


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null so every line stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _clean(value.item())
    return value


class JSONLinesLogger:
    """Write one JSON object per line (``log.jsonl``) and echo messages to a text log.

    Only the process with ``enabled=True`` (rank 0) writes; the others' calls
    are no-ops, so a script calls the logger unconditionally.

    Parameters
    ----------
    path : path or None
        The ``.jsonl`` file (appended to, so a resumed run continues its log);
        ``None`` logs nothing to disk.
    text_path : path, optional
        A text log receiving :meth:`info` messages, also printed to ``stream``.
    enabled : bool, default True
        ``False`` on non-zero ranks.
    stream : file, default sys.stdout
        Where :meth:`info` prints (progress bars go to stderr).

    Examples
    --------
    >>> log = JSONLinesLogger("run/log.jsonl")          # doctest: +SKIP
    >>> log.log(kind="train", epoch=0, step=10, loss=2.3, lr=0.1)  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike | None, text_path: str | os.PathLike | None = None,
                 enabled: bool = True, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stdout
        self._file = self._text = None
        if enabled and path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8")
        if enabled and text_path is not None:
            Path(text_path).parent.mkdir(parents=True, exist_ok=True)
            self._text = open(text_path, "a", encoding="utf-8")

    def log(self, **record: Any) -> dict[str, Any]:
        """Append one record (a ``time`` field, Unix seconds, is added) and flush."""
        record = {"time": round(time.time(), 3), **_clean(record)}
        if self.enabled and self._file is not None:
            self._file.write(json.dumps(record, sort_keys=False) + "\n")
            self._file.flush()
        return record

    def info(self, message: str) -> None:
        """Print a message (rank 0 only) and append it to the text log."""
        if not self.enabled:
            return
        print(message, file=self.stream, flush=True)
        if self._text is not None:
            self._text.write(message + "\n")
            self._text.flush()

    def close(self) -> None:
        for f in (self._file, self._text):
            if f is not None:
                f.close()
        self._file = self._text = None

    def __enter__(self) -> "JSONLinesLogger":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a JSON-lines file; a malformed line raises ``ValueError`` naming its number."""
    out = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{i}: not valid JSON ({err.msg})") from err
    return out
