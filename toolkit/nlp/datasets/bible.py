"""English-Spanish parallel Bible corpus, exported from SWORD modules with diatheke.

Sources: the World English Bible (``engWEB2015eb``, Debian ``sword-text-web``)
and the Reina-Valera 1909 (``spaRV1909eb``, ``sword-text-sparv``), both public
domain, exported with::

    diatheke -b engWEB2015eb -f plain -l en -k "Gen 1:1-Rev 22:21"
    diatheke -b spaRV1909eb  -f plain -l en -k "Gen 1:1-Rev 22:21"

(``-l en`` pins the English book names, which are the alignment keys.) The
raw exports are cached as ``data_root()/bible/<module>.txt``.

What the parser handles in diatheke's plain output (diatheke 4.8 / SWORD 1.9):

* a verse starts with a reference line ``Book C:V: text``; poetry continues on
  the following lines, sometimes after one or two blank lines;
* once a section heading (a psalm title, "ALEPH", ...) has been seen, diatheke
  prints the current heading on its own line before *every* later verse and
  indents that verse's reference line by two spaces, into the New Testament
  ("A praise psalm by David." before Matthew 1:1). The single line just above
  an indented reference is that heading, not verse text, and is dropped;
* a heading may instead come inline as OSIS markup (``<title ...>...</title>
  <lg .../>`` before the reference): removed, and nothing above is dropped;
* Strong's numbers in the Spanish text (``<H2416>``, ``<G5547>``) are removed;
* the module's back matter (the WEB glossary) follows the last verse after
  three blank lines: text after three or more blank lines is not verse text;
* the export ends with a ``(moduleName)`` line, which is dropped.

Whitespace is collapsed to single spaces. Known remnant left as is: the WEB
source glues a few words where a footnote was removed ("Godcreated", Gen 1:1).

Splits are fixed by hashing the chapter (``"Genesis 1"``) with SHA-256: the
first 8 hex digits modulo 100 give 0-4 -> ``test``, 5-9 -> ``dev``, else
``train``. Whole chapters stay together, so neighbouring verses do not leak
between splits; the assignment never depends on the data or on a random seed.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

from toolkit.data.root import MissingDatasetError, data_root

__all__ = [
    "MODULES", "EXPORT_RANGE", "BiblePair", "export_module", "read_export", "parse_diatheke",
    "align", "split_of", "load_bible_pairs", "tokenize", "count_tokens",
]

#: Language code -> SWORD module.
MODULES: dict[str, str] = {"en": "engWEB2015eb", "es": "spaRV1909eb"}
#: The key range exported (the Protestant canon; WEB's deuterocanon has no Spanish side).
EXPORT_RANGE = "Gen 1:1-Rev 22:21"
SPLITS = ("train", "dev", "test")

_BOOK = r"(?:(?:I|II|III|IV) )?[A-Z][A-Za-z]*(?: (?:of )?[A-Z][A-Za-z]*)*(?: \([A-Za-z]+\))?"
_REF_LINE = re.compile(rf"^(?P<indent>\s*)(?P<ref>(?P<book>{_BOOK}) (?P<ch>\d+):(?P<v>\d+)):(?: (?P<text>.*))?$")
_INLINE_TITLE = re.compile(r"<title\b[^>]*>.*?</title>")
_STRONGS = re.compile(r"\s*<[GH]\d+[a-z]?>")  # "vida <H2416>, toda" -> "vida, toda"
_TAG = re.compile(r"<[^>]*>")  # remaining OSIS tags
_MODULE_LINE = re.compile(r"^\([A-Za-z0-9_.-]+\)\s*$")
_BACK_MATTER_BLANKS = 3
_TOKEN = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]", re.UNICODE)


class BiblePair(NamedTuple):
    """One aligned verse."""

    reference: str  #: e.g. ``"Genesis 1:1"``
    en: str
    es: str


def _how_to_install(modules: Iterable[str]) -> str:
    return ("install the exporter and the SWORD modules (Debian: apt-get install diatheke "
            "sword-text-web sword-text-sparv), or export the files elsewhere with\n"
            + "\n".join(f"  diatheke -b {m} -f plain -l en -k \"{EXPORT_RANGE}\" > {m}.txt" for m in modules))


def _missing(root: Path, modules: Iterable[str], why: str) -> MissingDatasetError:
    modules = list(modules)
    files = {f"{m}.txt": f"diatheke plain export of {m}" for m in modules}
    return MissingDatasetError("bible", root, files, f"{why}; " + _how_to_install(modules))


def export_module(module: str, root: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Export one SWORD module with diatheke, caching the raw text.

    Parameters
    ----------
    module : str
        SWORD module name, e.g. ``"engWEB2015eb"``.
    root : path, optional
        Dataset root (default :func:`toolkit.data.data_root`); the file goes to
        ``root/bible/<module>.txt``.
    force : bool, default False
        Re-export even if the file exists.

    Returns
    -------
    pathlib.Path
        The exported file.

    Raises
    ------
    MissingDatasetError
        If diatheke or the module is not installed.
    """
    folder = Path(root if root is not None else data_root()) / "bible"
    path = folder / f"{module}.txt"
    if path.exists() and not force:
        return path
    exe = shutil.which("diatheke")
    if exe is None:
        raise _missing(folder, [module], "diatheke is not installed")
    proc = subprocess.run([exe, "-b", module, "-f", "plain", "-l", "en", "-k", EXPORT_RANGE],
                          capture_output=True, check=False)
    text = proc.stdout.decode("utf-8", errors="replace")
    # An unknown module gives empty output and exit status 0.
    if proc.returncode != 0 or not any(_REF_LINE.match(line) for line in text.splitlines()[:50]):
        raise _missing(folder, [module], f"diatheke produced no verses for module {module!r} "
                                         f"(exit {proc.returncode}); is the SWORD module installed?")
    folder.mkdir(parents=True, exist_ok=True)
    # Write-then-rename, so an interrupted export never leaves a truncated cache.
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{module}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def _clean(parts: list[str]) -> str:
    return " ".join(" ".join(parts).split())


def parse_diatheke(text: str) -> dict[str, str]:
    """Parse diatheke ``-f plain`` output into ``{reference: verse text}``.

    Parameters
    ----------
    text : str
        The whole export (or any contiguous part of it).

    Returns
    -------
    dict
        References in export order (``"Genesis 1:1"``); verses that are empty
        in the module map to ``""``. A reference printed twice keeps its first text.
    """
    verses: dict[str, str] = {}
    ref: str | None = None
    buf: list[str] = []  # lines of the current verse, blank lines included
    blanks = 0
    closed = False  # back matter reached: ignore lines until the next reference

    def flush() -> None:
        if ref is not None and ref not in verses:
            while buf and not buf[-1].strip():
                buf.pop()
            verses[ref] = _clean(buf)

    for raw in text.splitlines():
        line = raw
        inline_heading = False
        if "<" in line:
            line, n_titles = _INLINE_TITLE.subn("", line)
            inline_heading = n_titles > 0
            line = _TAG.sub("", _STRONGS.sub("", line))
        if _MODULE_LINE.match(line):
            continue
        m = _REF_LINE.match(line)
        if m:
            if m.group("indent") and not inline_heading and ref is not None and not closed:
                # Drop the repeated section heading printed just above an indented reference
                # (after back matter it was never collected).
                while buf and not buf[-1].strip():
                    buf.pop()
                if buf:
                    buf.pop()
            flush()
            ref = f"{' '.join(m.group('book').split())} {int(m.group('ch'))}:{int(m.group('v'))}"
            buf = [m.group("text") or ""]
            blanks = 0
            closed = False
            continue
        if ref is None or closed:
            continue
        if not line.strip():
            blanks += 1
            if blanks >= _BACK_MATTER_BLANKS:
                closed = True
            buf.append("")
            continue
        blanks = 0
        buf.append(line)
    flush()
    return verses


def read_export(path: str | os.PathLike) -> dict[str, str]:
    """Parse an exported file (see :func:`parse_diatheke`)."""
    return parse_diatheke(Path(path).read_text(encoding="utf-8"))


def align(en: Mapping[str, str], es: Mapping[str, str]) -> list[BiblePair]:
    """Pair the verses present and non-empty in both languages, in English order."""
    return [BiblePair(ref, text, es[ref]) for ref, text in en.items() if text and es.get(ref)]


def split_of(reference: str) -> str:
    """Fixed split of a verse: ``"train"``, ``"dev"`` or ``"test"`` (see the module notes)."""
    chapter = reference.rsplit(":", 1)[0]
    bucket = int(hashlib.sha256(chapter.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "test" if bucket < 5 else "dev" if bucket < 10 else "train"


def load_bible_pairs(split: str | None = None, root: str | os.PathLike | None = None,
                     export: bool = True) -> list[BiblePair]:
    """Aligned English-Spanish verse pairs (about 31,000 in all).

    Parameters
    ----------
    split : {"train", "dev", "test"}, optional
        One split, or ``None`` for all pairs.
    root : path, optional
        Dataset root (default :func:`toolkit.data.data_root`).
    export : bool, default True
        Run diatheke for a missing export; with ``False`` the files must exist.

    Raises
    ------
    MissingDatasetError
        If an export is missing and cannot be made.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
    folder = Path(root if root is not None else data_root()) / "bible"
    texts = {}
    for lang, module in MODULES.items():
        path = folder / f"{module}.txt"
        if not path.exists():
            if not export:
                raise _missing(folder, MODULES.values(), f"{path.name} has not been exported")
            path = export_module(module, folder.parent)
        texts[lang] = read_export(path)
    pairs = align(texts["en"], texts["es"])
    if split is not None:
        pairs = [p for p in pairs if split_of(p.reference) == split]
    return pairs


def tokenize(text: str) -> list[str]:
    """Simple tokens: runs of word characters (with inner apostrophes) and single punctuation marks."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """Number of :func:`tokenize` tokens in ``text``."""
    return len(_TOKEN.findall(text))
