"""Bible corpus parser on a committed sample of real diatheke 4.8 output.

The samples were exported with::

    K="Gen 1:1-3; Gen 3:14-16; Lev 10:3-4; Judg 5:31-6:1; Ps 2:11-3:3; Ps 119:32-34; \
Song 6:3-4; Tob 6:17-7:1; Matt 1:1-2; Rev 22:20-21"
    diatheke -b engWEB2015eb -f plain -l en -k "$K"
    diatheke -b spaRV1909eb -f plain -l en -k "$K"

(the Spanish module has no Tobit; diatheke maps that range elsewhere).
"""
import shutil
import subprocess
from pathlib import Path

import pytest

bible = pytest.importorskip("toolkit.nlp.datasets.bible")

FIX = Path(__file__).parent / "fixtures"
EN = bible.read_export(FIX / "bible_sample_engWEB2015eb.txt")
ES = bible.read_export(FIX / "bible_sample_spaRV1909eb.txt")


def test_parse_multiline_verses_and_blank_lines():
    assert EN["Genesis 3:14"].endswith("You shall go on your belly and you shall eat dust all the days of your life.")
    assert EN["Leviticus 10:3"].endswith("before all the people I will be glorified.’” Aaron held his peace.")
    assert EN["Judges 5:31"].endswith("in its strength.” Then the land had rest forty years.")
    assert EN["Song of Solomon 6:3"] == "I am my beloved’s, and my beloved is mine. He browses among the lilies."
    assert "  " not in "".join(EN.values())


def test_repeated_headings_and_indented_references_are_dropped():
    assert EN["Psalms 2:12"].endswith("Blessed are all those who take refuge in him.")
    assert EN["Psalms 3:1"] == "Yahweh, how my adversaries have increased! Many are those who rise up against me."
    assert EN["Psalms 3:3"].endswith("the one who lifts up my head.")  # no "A Psalm by David, ..."
    assert EN["Psalms 119:32"] == "I run in the path of your commandments, for you have set my heart free."
    assert EN["Matthew 1:1"].startswith("The book of the genealogy") and "HE" not in EN["Matthew 1:1"]
    assert not EN["Tobit 6:17"].endswith("HE")  # heading given as OSIS markup, then plain


def test_inline_title_markup_on_the_reference_line():
    # Shape seen in the full WEB export (Tobit 6:18): markup heading and reference on one line.
    text = ("A praise psalm by David.\n  Tobit 6:17: The demon will smell it.\n"
            '<title canonical="true" type="psalm">A praise psalm by David.</title> <lg sID="g1"/> '
            '<l level="1" sID="g2"/>Tobit 6:18: \nA praise psalm by David.\n  Tobit 7:1: They came.\n(engWEB2015eb)\n')
    assert bible.parse_diatheke(text) == {"Tobit 6:17": "The demon will smell it.", "Tobit 6:18": "",
                                          "Tobit 7:1": "They came."}


def test_back_matter_module_line_and_strongs():
    last = EN["Revelation of John 22:21"]
    assert last == "The grace of the Lord Jesus Christ be with all the saints. Amen."  # no glossary
    assert list(EN)[-1] == "Revelation of John 22:21" and "(engWEB2015eb)" not in "".join(EN.values())
    assert ES["Matthew 1:1"] == "LIBRO de la generación de Jesucristo, hijo de David, hijo de Abraham."
    assert "<" not in "".join(ES.values())


def test_align_and_order():
    pairs = bible.align(EN, ES)
    refs = [p.reference for p in pairs]
    assert refs[:3] == ["Genesis 1:1", "Genesis 1:2", "Genesis 1:3"] and "Tobit 6:17" not in refs
    assert len(pairs) == 24 and all(p.en and p.es for p in pairs)
    assert pairs[0].es == "EN el principio crió Dios los cielos y la tierra."


def test_splits_are_fixed_by_chapter():
    assert {bible.split_of(f"Psalms 119:{v}") for v in range(1, 177)} == {bible.split_of("Psalms 119:1")}
    # Pinned values: the split function must never change.
    assert [bible.split_of(r) for r in ("Genesis 1:1", "Psalms 23:1", "John 3:16", "Mark 5:1")] == \
        [bible.split_of(r) for r in ("Genesis 1:9", "Psalms 23:6", "John 3:1", "Mark 5:43")]
    got = {r: bible.split_of(r) for r in PINNED_SPLITS}
    assert got == PINNED_SPLITS


PINNED_SPLITS = {"Genesis 1:1": "train", "John 3:16": "train", "Genesis 2:7": "dev", "Genesis 25:1": "dev",
                 "Genesis 29:1": "test", "Genesis 33:20": "test"}


def test_tokens():
    assert bible.tokenize("Don’t be afraid, “Yahweh's” 3:16!") == \
        ["Don’t", "be", "afraid", ",", "“", "Yahweh's", "”", "3", ":", "16", "!"]
    assert bible.count_tokens("EN el principio crió Dios.") == 6


def test_missing_export_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="engWEB2015eb.txt") as info:
        bible.load_bible_pairs(root=tmp_path, export=False)
    assert isinstance(info.value, bible.MissingDatasetError) and "apt-get install diatheke" in str(info.value)


def test_missing_diatheke_raises(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no diatheke on PATH
    with pytest.raises(bible.MissingDatasetError, match="diatheke is not installed"):
        bible.export_module("engWEB2015eb", root=tmp_path)


def test_load_from_cached_exports(tmp_path):
    folder = tmp_path / "bible"
    folder.mkdir()
    for m in ("engWEB2015eb", "spaRV1909eb"):
        shutil.copy(FIX / f"bible_sample_{m}.txt", folder / f"{m}.txt")
    pairs = bible.load_bible_pairs(root=tmp_path, export=False)
    assert len(pairs) == 24
    by_split = sum(len(bible.load_bible_pairs(s, root=tmp_path, export=False)) for s in ("train", "dev", "test"))
    assert by_split == 24


@pytest.mark.slow
def test_full_corpus_export(tmp_path):
    if shutil.which("diatheke") is None:
        pytest.skip("diatheke is not installed (apt-get install diatheke sword-text-web sword-text-sparv)")
    modules = subprocess.run(["diatheke", "-b", "system", "-k", "modulelist"], capture_output=True, text=True).stdout
    if "engWEB2015eb" not in modules or "spaRV1909eb" not in modules:
        pytest.skip("SWORD modules engWEB2015eb/spaRV1909eb are not installed")
    pairs = bible.load_bible_pairs(root=tmp_path)
    assert 30_500 <= len(pairs) <= 31_102
    assert (tmp_path / "bible" / "engWEB2015eb.txt").exists()
    splits = {s: [p for p in pairs if bible.split_of(p.reference) == s] for s in ("train", "dev", "test")}
    assert bible.load_bible_pairs("test", root=tmp_path, export=False) == splits["test"]
    assert all(len(splits[s]) > 1000 for s in ("dev", "test"))
    refs = {p.reference for p in pairs}
    assert {"Genesis 1:1", "Psalms 119:176", "Revelation of John 22:21"} <= refs
    assert not any("psalm by David" in p.en and p.reference.startswith("Matthew") for p in pairs)
