import json
import sys
from pathlib import Path

import pytest

from toolkit.data import Dataset, MissingDatasetError
from toolkit.nlp.datasets import (
    GLUE,
    IMDB,
    SST2,
    TREC,
    BibleParallel,
    FastTextLabeled,
    GensimSentiment,
    ParallelText,
    SQuAD,
    WikiText2,
    WikiText103,
)

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from t1_data import gensim_test_data


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLKIT_DATA", str(tmp_path))
    return tmp_path


def write(path: Path, text: str, encoding="utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


EN = """Genesis 1:1: In the beginning God created the heavens and the earth.
Genesis 1:2: The earth was formless and empty.
Exodus 3:14: God said to Moses, "I AM WHO I AM."
(engWEB2015eb)
"""
ES = """Genesis 1:1: EN el principio crió Dios los cielos y la tierra.
Genesis 1:2: Y la tierra estaba desordenada y vacía.
Exodus 3:14: Y respondió Dios á Moisés: YO SOY EL QUE SOY.
(spaRV1909eb)
"""


def test_bible_parallel(root):
    from toolkit.nlp.datasets import bible
    with pytest.raises(MissingDatasetError, match="engWEB2015eb.txt"):
        BibleParallel("train", export=False)
    write(root / "bible" / "engWEB2015eb.txt", EN)
    write(root / "bible" / "spaRV1909eb.txt", ES)
    parts = {s: BibleParallel(s, export=False) for s in ("train", "dev", "test")}
    assert sum(len(d) for d in parts.values()) == 3
    for split, ds in parts.items():
        assert isinstance(ds, Dataset)
        for ref, (en, es) in zip(ds.references, ds):
            assert bible.split_of(ref) == split
    allpairs = {r: s for d in parts.values() for r, s in zip(d.references, d)}
    assert allpairs["Genesis 1:2"] == ("The earth was formless and empty.", "Y la tierra estaba desordenada y vacía.")
    rev = BibleParallel(bible.split_of("Genesis 1:1"), src="es", tgt="en", export=False)
    i = rev.references.index("Genesis 1:1")
    assert rev[i][0].startswith("EN el principio") and rev[i][1].startswith("In the beginning")
    with pytest.raises(ValueError, match="two different"):
        BibleParallel(src="en", tgt="en", export=False)
    with pytest.raises(ValueError, match="split"):
        BibleParallel("validation", export=False)


def test_parallel_text_plain_tags_and_xml(root):
    write(root / "iwslt" / "train.tags.de-en.de", "<url>http://x</url>\n<talkid>1</talkid>\nHallo Welt\n\nDanke\n")
    write(root / "iwslt" / "train.tags.de-en.en", "<url>http://x</url>\n<talkid>1</talkid>\nHello world\nx\nThanks\n")
    ds = ParallelText("iwslt/train.tags.de-en.de", "iwslt/train.tags.de-en.en")  # relative to data_root()
    assert list(ds) == [("Hallo Welt", "Hello world"), ("Danke", "Thanks")]
    assert len(ParallelText(root / "iwslt/train.tags.de-en.de", root / "iwslt/train.tags.de-en.en",
                            strip_tags=False, skip_empty=False)) == 5
    seg = '<refset><doc docid="1">\n<seg id="1"> Guten Tag </seg>\n<seg id="2">Bis bald</seg>\n</doc></refset>\n'
    write(root / "dev.de.xml", seg)
    write(root / "dev.en.xml", seg.replace("Guten Tag", "Good day").replace("Bis bald", "See you"))
    assert list(ParallelText(root / "dev.de.xml", root / "dev.en.xml")) == [("Guten Tag", "Good day"),
                                                                             ("Bis bald", "See you")]
    write(root / "a.txt", "1\n2\n3\n")
    write(root / "b.txt", "1\n2\n")
    with pytest.raises(ValueError, match="3 lines but .* has 2"):
        ParallelText(root / "a.txt", root / "b.txt")
    with pytest.raises(MissingDatasetError, match="nope.txt"):
        ParallelText(root / "a.txt", root / "nope.txt")


def test_glue_tasks(root):
    g = root / "glue"
    write(g / "SST-2" / "train.tsv", "sentence\tlabel\nit 's a charming journey \t1\nbad , bad movie \t0\n")
    write(g / "SST-2" / "test.tsv", "index\tsentence\n0\tuneasy mishmash\n")
    write(g / "CoLA" / "dev.tsv", "gj04\t1\t\tThe sailors rode the breeze clear of the rocks.\ngj04\t0\t*\tThe more books.\n")
    write(g / "MRPC" / "train.tsv", "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tA cat.\tThe cat.\n")
    write(g / "STS-B" / "dev.tsv", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2"
          "\tscore\n0\tmain\tx\t2012\t1\tnone\tnone\tA man plays.\tA man is playing.\t4.750\n")
    write(g / "MNLI" / "dev_matched.tsv", "index\tpromptID\tsentence1\tsentence2\tlabel1\tgold_label\n"
          "0\t1\tHe ran.\tHe moved.\tentailment\tentailment\n1\t2\tHe ran.\tHe sat.\tcontradiction\tcontradiction\n")
    write(g / "QQP" / "train.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n5\t1\t2\tWhy?\tHow?\n")
    assert list(SST2("train")) == [("it 's a charming journey ", 1), ("bad , bad movie ", 0)]
    assert list(GLUE("SST-2", "test")) == [("uneasy mishmash",)]
    cola = GLUE("cola", "dev")
    assert cola[0] == ("The sailors rode the breeze clear of the rocks.", 1) and cola[1][1] == 0
    assert GLUE("mrpc", "train")[0] == ("A cat.", "The cat.", 1)
    assert GLUE("sts-b", "dev")[0] == ("A man plays.", "A man is playing.", 4.75)
    mnli = GLUE("mnli", "dev_matched")
    assert [s[2] for s in mnli] == [0, 2] and mnli.classes[2] == "contradiction"
    with pytest.raises(ValueError, match=r"train.tsv:2: expected at least 6"):
        GLUE("qqp", "train")
    with pytest.raises(MissingDatasetError, match="RTE"):
        GLUE("rte", "dev")
    with pytest.raises(ValueError, match="unknown GLUE task"):
        GLUE("squad")
    with pytest.raises(ValueError, match="split"):
        GLUE("mnli", "dev")
    write(g / "SST-2" / "dev.tsv", "sentence\tlabel\nok\tpositive\n")
    with pytest.raises(ValueError, match="label 'positive'"):
        SST2("dev")


def test_trec_and_imdb(root):
    write(root / "trec" / "train_5500.label", "DESC:manner How did serfdom develop ?\nHUM:ind Who was Caesar ?\n",
          encoding="latin-1")
    write(root / "trec" / "TREC_10.label", "NUM:date When was Caf\xe9 built ?\n", encoding="latin-1")
    assert list(TREC("train")) == [("How did serfdom develop ?", 1), ("Who was Caesar ?", 3)]
    assert TREC("test", fine=True)[0] == ("When was Café built ?", "NUM:date")
    write(root / "trec" / "TREC_10.label", "broken line\n")
    with pytest.raises(ValueError, match="TREC_10.label:1"):
        TREC("test")
    with pytest.raises(MissingDatasetError, match="aclImdb"):
        IMDB("train")
    write(root / "aclImdb" / "train" / "pos" / "3_9.txt", "Great film.")
    write(root / "aclImdb" / "train" / "pos" / "10_7.txt", "Good film.")
    write(root / "aclImdb" / "train" / "neg" / "1_2.txt", "Awful.")
    write(root / "aclImdb" / "train" / "unsup" / "0_0.txt", "Unlabelled.")
    assert list(IMDB("train")) == [("Great film.", 1), ("Good film.", 1), ("Awful.", 0)]
    assert [r for _, r in IMDB("train", label="rating")] == [9, 7, 2]
    assert list(IMDB("unsup")) == [("Unlabelled.", -1)]
    # root= is the dataset's own folder
    assert list(IMDB("train", root=root / "aclImdb")) == list(IMDB("train"))
    assert list(TREC("train", root=root / "trec")) == list(TREC("train"))


def test_squad(root):
    ctx = "Denver Broncos won Super Bowl 50."
    data = {"version": "v2.0", "data": [{"title": "SB", "paragraphs": [{"context": ctx, "qas": [
        {"id": "q1", "question": "Who won?", "answers": [{"text": "Denver Broncos", "answer_start": 0}],
         "is_impossible": False},
        {"id": "q2", "question": "Who lost?", "answers": [], "is_impossible": True}]}]}]}
    write(root / "squad" / "dev-v2.0.json", json.dumps(data))
    ds = SQuAD("2.0", "dev")
    assert ds[0].qid == "q1" and ds[0].answers == ["Denver Broncos"] and ds[0].answer_starts == [0]
    assert ds[1].is_impossible and ds[1].answers == [] and ds[0].context == ctx
    data["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 3
    write(root / "squad" / "train-v2.0.json", json.dumps(data))
    with pytest.raises(ValueError, match="q1.*not at character 3"):
        SQuAD("2.0", "train")
    with pytest.raises(MissingDatasetError, match="dev-v1.1.json"):
        SQuAD("1.1", "dev")
    write(root / "squad" / "dev-v1.1.json", "{not json")
    with pytest.raises(ValueError, match="not a SQuAD JSON"):
        SQuAD(1.1, "dev")


def test_wikitext(root):
    text = " \n = Valkyria = \n \n Senjō no Valkyria 3 : <unk> Chronicles \n"
    for s in ("train", "valid", "test"):
        write(root / "wikitext-2" / f"wiki.{s}.tokens", text)
    ds = WikiText2("val")
    assert list(ds) == [["=", "Valkyria", "=", "<eos>"], ["Senjō", "no", "Valkyria", "3", ":", "<unk>",
                                                         "Chronicles", "<eos>"]]
    assert ds.tokens()[:4] == ["=", "Valkyria", "=", "<eos>"] and len(ds.tokens()) == 12
    assert len(WikiText2("test", skip_empty=False, eos=None)) == 4
    with pytest.raises(MissingDatasetError, match="wiki.train.tokens"):
        WikiText103("train")


def test_fasttext_and_gensim_sentiment(tmp_path):
    p = write(tmp_path / "s.txt", "__label__pos good fun\n__label__neg dull\n\n")
    ds = FastTextLabeled(p)
    assert ds.classes == ("neg", "pos") and list(ds) == [("good fun", 1), ("dull", 0)]
    write(tmp_path / "bad.txt", "no label here\n")
    with pytest.raises(ValueError, match="bad.txt:1: no __label__"):
        FastTextLabeled(tmp_path / "bad.txt")
    with pytest.raises(MissingDatasetError):
        GensimSentiment(root=tmp_path)
    if gensim_test_data() is None:
        pytest.skip("gensim is not installed")
    full = GensimSentiment()
    assert len(full) == 200 and {lab for _, lab in full} == {0, 1}
    train, test = GensimSentiment("train"), GensimSentiment("test")
    assert len(train) + len(test) == 200 and not set(train) & set(test)
    assert any("\u2014" in t for t, _ in full)  # cp1252 em dash decoded
