"""Where datasets live on disk, and the error raised when one is missing."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["data_root", "MissingDatasetError"]


def data_root() -> Path:
    """Root directory of the datasets: ``$TOOLKIT_DATA``, else ``~/.toolkit/datasets``.

    Returns
    -------
    pathlib.Path
        The (user-expanded) directory; it is not created.
    """
    env = os.environ.get("TOOLKIT_DATA", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".toolkit" / "datasets"


class MissingDatasetError(FileNotFoundError):
    """A dataset's files are not where the loader looks; the message says what goes where.

    Parameters
    ----------
    dataset : str
        Dataset name.
    root : str or Path
        Directory the loader searched.
    files : Sequence[str] or Mapping[str, str]
        Expected paths relative to ``root``, or path -> what it holds.
    how : str, optional
        How to obtain the files (command, URL of the terms page, package name).
    """

    def __init__(self, dataset: str, root: str | os.PathLike, files: Sequence[str] | Mapping[str, str] = (),
                 how: str = "") -> None:
        self.dataset = dataset
        self.root = Path(root)
        self.files = dict(files) if isinstance(files, Mapping) else {f: "" for f in files}
        self.how = how
        lines = [f"dataset '{dataset}' not found under {self.root}"]
        if self.files:
            lines.append("expected:")
            lines += [f"  {self.root / f}" + (f"  ({d})" if d else "") for f, d in self.files.items()]
        if how:
            lines.append(how)
        lines.append("(set $TOOLKIT_DATA to use another root directory)")
        super().__init__("\n".join(lines))

    def __reduce__(self):  # the default re-calls __init__ with the message alone
        return (type(self), (self.dataset, str(self.root), self.files, self.how))
