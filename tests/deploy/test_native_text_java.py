"""What only the Java runner's text path has, against Python: its API, tokenizers and errors.

(The whole-model checks both runners share, against ``toolkit predict`` with onnxruntime and
OpenVINO, int8 included, are in test_native_text.py.)

* A Java program's ``TextClassifier.classify`` and ``Translator.translate`` give what
  ``deploy/java/predict`` prints.
* The hand-written Java WordPiece gives the ids of the toolkit's BertWordPieceTokenizer (HF
  ``tokenizers``) on a battery of tricky strings plus a few thousand real lines (Bible verses in
  English and Spanish, gensim's test corpora), under several option sets; its character classes
  agree with HF's on every code point.
* libsentencepiece through JNI loads the model written by the Python ``sentencepiece`` and gives
  the same ids and decoded text; the Java copy of Python's ``str.lower`` agrees with it.
* Bad tokenizer files, metadata and input files give one clear line on stderr and exit status 1.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest

from _deploy_helpers import java_program

# before the import, so that the helpers' asserts are rewritten
pytest.register_assert_rewrite("_text_helpers")
from _text_helpers import copy_export, edit_meta, failure_stderr, gensim_lines, text_json, write_lines  # noqa: E402

pytestmark = pytest.mark.native

CRASH_SIGNS = ("Exception in thread", "terminate called", "Segmentation", "core dumped", "at toolkit.", "SIGSEGV")

#: Strings where a tokenizer can go wrong. No "\n" inside (each is one line of an input file).
BATTERY = [
    # special tokens of the vocabulary, matched verbatim before normalisation (case-sensitive)
    "[CLS]", "[SEP][SEP]", "x[SEP]y", "[sep] [Sep] [ SEP ] [SEP", "[MASK]ed un[UNK]known [PAD]ding",
    "[CLS]Hello[SEP]World[SEP]", "[[SEP]]", "[CL\u0001S] [SE\u200bP]", "[SEP]\u0301x [MASK]\u0308",
    # case and accents
    "é e\u0301 ñ n\u0303 Å A\u030a ǅ ǈ ǋ Ⅻ ﬁ ﬀ ß ẞ",
    "İstanbul ISTANBUL ıi Iİ", "ΟΔΥΣΣΕΥΣ ΣΑΣ Σ ΑΣ. ὈΔΥΣΣΕΎΣ ᾼ ᾈ",
    "Ça va? Où est l'hôtel? Ærø Øresund Łódź Dvořák Škoda Ğ",
    "𝐀𝐁𝐂 𝕬 𐐀𐐁 𐐨 🄰 Ａｂｃ １２３",  # outside the BMP, fullwidth
    "\u1e9e\u0130\u03a3\u1f88\u0149 \u01f0",
    # CJK, Japanese (NFD splits voiced kana), Korean (NFD splits Hangul syllables)
    "東京は日本の首都です。北京是中国的首都。", "がぎぐげご パピプペポ ｶﾞ", "한국어 텍스트입니다",
    "\U00020000\U0002a6d6\U0002b820\U0002b91f\U0002b920 \uf900 \U0002f800 \u3400",
    # other scripts with combining marks
    "مَرْحَبًا بِالْعَالَم", "שָׁלוֹם עוֹלָם", "नमस्ते दुनिया", "สวัสดีชาวโลก", "ᠮᠣᠩᠭᠣᠯ", "Ἀθῆναι",
    "Привет, мир! Ёлка ЁЖИК", "Γειά σου Κόσμε", "Բարեւ աշխարհ", "გამარჯობა",
    # emoji: ZWJ sequences, skin tones, flags, variation selectors, keycaps
    "👩\u200d👩\u200d👧 👍🏽 🇪🇸🇺🇸 ❤\ufe0f 1\ufe0f\u20e3 ☺︎ 😀",
    # control, format, private use, unassigned, noncharacters, replacement character
    "a\x00b c\x01d e\x7ff g\x85h i\u200bj k\ufeffl m\ufffdn o\ue000p q\u0378r s\uffffj t\U000e0041u",
    "soft\u00adhyphen zero\u200cwidth\u200dnon joiner \u2060word joiner \u202elrm\u200f",
    # whitespace of every kind (no \n: lines)
    "tab\there\vvtab\fform\rcr", "nbsp\u00a0thin\u2009ideo\u3000em\u2003line\u2028para\u2029nel\u0085end",
    "\u1680ogham \u180emongolian \u205fmath \u202fnarrow",
    # punctuation: ASCII symbols count, Unicode P* counts, symbols (S*) do not
    "Wait... what?!?! ---- (really) *** ,,, ;; $5+3=8 <tag> a^b `c` |d| ~e~ _f_ @g #h %i &j \\k /l",
    "¿¡«»—–…“”‘’‹›„‚·•† ‡ § ¶ © ® ° ± µ ¢ £ ¥ € ₹ ™ ℃ ¼ ½ ¾ ×÷",
    "「括弧」『二重』【隅付き】〔亀甲〕、。・ー〜", "a\u2e43b c\u166dd e\U000111c9f g\u0f0bh i\u058aj",
    # numbers, mixed tokens, URLs, e-mail
    "Numbers 3.14159 and 1,000,000 plus e-mail: someone@example.com https://example.org/a?b=c&d=e#f",
    "iPhone McDonald's O'Reilly don't rock'n'roll co-operate re-élection naïve Zoë",
    "##ing un##able ## # ### ##a",
    # long words: exactly max_input_chars_per_word (100) and one more
    "a" * 100, "b" * 101, "supercalifragilisticexpialidocious" * 3, "x" + "é" * 99 + " y" + "é" * 100,
    "Ab" * 60 + " " + "日本" * 60,
    # single characters
    "a", "Z", "!", "é", "日", "😀", "\u0301", "\u0301\u0301a",
]


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    """The battery plus real lines: every Bible verse of the fixtures' range in both languages, gensim's corpora."""
    from _text_fixtures import _bible_lines

    en, es = _bible_lines()
    names = ("lee_background.cor", "crime-and-punishment.txt", "OPUS_en_it_europarl_train_one2ten.txt")
    return BATTERY + en + es + gensim_lines(names, 3000)


# --------------------------------------------------------------------------- Java API
def test_java_text_api(text_exports, java_runner, tmp_path):
    """A Java user's program: TextClassifier.classify and Translator.translate give the CLI's results."""
    command = java_program(
        "import toolkit.deploy.*;\n"
        "public class TextExample {\n"
        "  public static void main(String[] a) {\n"
        "    try (TextClassifier c = TextClassifier.load(a[0], 1); Translator t = Translator.load(a[1], 1)) {\n"
        "      new java.io.PrintStream(System.out, true, java.nio.charset.StandardCharsets.UTF_8)\n"
        "          .println(Json.write(java.util.List.of(c.classify(a[2]), t.translate(a[2]))));\n"
        "    }\n"
        "  }\n"
        "}\n",
        "TextExample", tmp_path,
    )
    line = "Y dijo Dios: Sea la luz: y fué la luz."
    done = subprocess.run([*command, str(text_exports["bert"]), str(text_exports["transformer"]), line],
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    classified, translated = json.loads(done.stdout.decode("utf-8"))
    one = write_lines(tmp_path / "one.txt", [line])
    assert classified == text_json(java_runner, text_exports["bert"], one, "--json")[0]
    assert translated == text_json(java_runner, text_exports["transformer"], one, "--json")[0]


# --------------------------------------------------------------------------- tokenizers
def _text_export_meta(base: Path, block: dict) -> dict:
    """The base export's metadata with another tokenizer block (the graph is not needed by --print-ids)."""
    meta = json.loads(base.with_suffix(".json").read_text())
    meta["tokenizer"] = block
    return meta


@pytest.fixture(scope="module")
def wordpiece_vocab(corpus, tmp_path_factory) -> Path:
    """A cased WordPiece vocabulary (HF trainer) covering the corpus' scripts, so that few words end as [UNK]."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=6000, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
                                        show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    by_id = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    path = tmp_path_factory.mktemp("wordpiece") / "wp.vocab.txt"
    path.write_bytes("".join(t + "\n" for t, _ in by_id).encode("utf-8"))
    return path


WORDPIECE_OPTIONS = {
    "bert-uncased": dict(lowercase=True, strip_accents=True, tokenize_chinese_chars=True, clean_text=True),
    "cased": dict(lowercase=False, strip_accents=False, tokenize_chinese_chars=True, clean_text=True),
    "cased-strip-accents": dict(lowercase=False, strip_accents=True, tokenize_chinese_chars=True, clean_text=True),
    "lowercase-keep-accents-raw": dict(lowercase=True, strip_accents=False, tokenize_chinese_chars=False,
                                       clean_text=False),
    "short-words-truncated": dict(lowercase=True, strip_accents=True, tokenize_chinese_chars=True, clean_text=True,
                                  max_input_chars_per_word=6, max_length=16),
}


@pytest.mark.parametrize("options", list(WORDPIECE_OPTIONS), ids=list(WORDPIECE_OPTIONS))
def test_wordpiece_ids_match_python(options, text_exports, corpus, wordpiece_vocab, java_runner, tmp_path):
    from toolkit.nlp.deploy import encode_classification, load_deploy_tokenizer

    tokens = wordpiece_vocab.read_text(encoding="utf-8").split("\n")[:-1]
    opts = dict(WORDPIECE_OPTIONS[options])
    block = {"type": "wordpiece", "file": wordpiece_vocab.name,
             "sha256": hashlib.sha256(wordpiece_vocab.read_bytes()).hexdigest(),
             "max_input_chars_per_word": opts.pop("max_input_chars_per_word", 100),
             "unk_id": tokens.index("[UNK]"), "pad_id": tokens.index("[PAD]"), "cls_id": tokens.index("[CLS]"),
             "sep_id": tokens.index("[SEP]"), "bos_id": None, "eos_id": None,
             "max_length": opts.pop("max_length", 1_000_000),
             "special_tokens": ["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"], **opts}
    prefix = wordpiece_vocab.parent / options
    meta = _text_export_meta(text_exports["bert"], block)
    prefix.with_suffix(".json").write_text(json.dumps(meta))
    lines = write_lines(tmp_path / "lines.txt", corpus)
    got = text_json(java_runner, prefix, lines, "--print-ids")
    tokenizer, spec = load_deploy_tokenizer(meta, wordpiece_vocab.parent)
    from toolkit.nlp.deploy import read_text_inputs

    inputs = read_text_inputs([lines])
    assert [g["input"] for g in got] == inputs
    assert len(inputs) > 5000
    bad = [(line, g["ids"]) for line, g in zip(inputs, got) if g["ids"] != encode_classification(tokenizer, spec, line)]
    total = sum(len(encode_classification(tokenizer, spec, line)) for line in inputs)
    unk = sum(encode_classification(tokenizer, spec, line).count(block["unk_id"]) for line in BATTERY)
    print(f"{options}: {len(inputs)} lines, {total} ids, {unk} [UNK] in the battery")
    assert unk <= 80, f"{unk} [UNK] in the battery: the vocabulary is too small for a searching test"
    assert not bad, (f"{len(bad)} of {len(inputs)} lines differ ({total} ids in all); first: {bad[0][0]!r}\n"
                     f"java   {bad[0][1]}\npython {encode_classification(tokenizer, spec, bad[0][0])}")


_CODE_POINTS_JAVA = r"""
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.List;
import toolkit.deploy.SentencePiece;
import toolkit.deploy.WordPiece;

/** Per code point: WordPiece's normaliser steps one at a time, its split class, pythonLower, JDK-defined. */
public class CodePoints {
  static WordPiece wp(boolean clean, boolean chinese, boolean strip, boolean lower) {
    return new WordPiece(List.of("[UNK]"), 0, List.of(), lower, strip, chinese, clean, 100);
  }

  static String hex(String s) {
    StringBuilder sb = new StringBuilder();
    s.codePoints().forEach(c -> sb.append(sb.length() > 0 ? "," : "").append(Integer.toHexString(c)));
    return sb.toString();
  }

  public static void main(String[] a) throws IOException {
    WordPiece[] steps = {wp(true, false, false, false), wp(false, true, false, false), wp(false, false, true, false),
                         wp(false, false, false, true)};
    try (PrintWriter out = new PrintWriter(new BufferedWriter(new OutputStreamWriter(new FileOutputStream(a[0]),
                                                                                      StandardCharsets.UTF_8)))) {
      for (int cp = 0; cp < 0x110000; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        String c = new String(Character.toChars(cp));
        StringBuilder row = new StringBuilder(Integer.toHexString(cp));
        for (WordPiece w : steps) row.append('\t').append(hex(w.normalize(c)));
        List<String> words = WordPiece.split("a" + c + "b");
        row.append('\t').append(words.size() == 3 ? "p" : words.size() == 2 ? "w" : "n");
        row.append('\t').append(hex(SentencePiece.pythonLower(c))).append('\t').append(Character.isDefined(cp) ? 1 : 0);
        out.print(row.append('\n'));
      }
    }
    String[] lines = new String(java.nio.file.Files.readAllBytes(java.nio.file.Paths.get(a[1])), StandardCharsets.UTF_8)
        .split("\n", -1);
    try (PrintWriter out = new PrintWriter(new OutputStreamWriter(new FileOutputStream(a[2]),
                                                                  StandardCharsets.UTF_8))) {
      for (int i = 0; i < lines.length - 1; i++) out.print(SentencePiece.pythonLower(lines[i]) + "\n");
    }
  }
}
"""

#: Final_Sigma contexts for pythonLower (Python's str.lower applies the rule over the whole string).
SIGMA_CASES = ["Σ", "ΑΣ", "ΑΣ.", "ΑΣΑ", "ΑΣ'Α", "Α'Σ", "ΑΣ' ", ".Σ", "ΑΣ\u0301", "ΑΣ\u0301Α", "Α\u00adΣ", "ΣΣΣ", "Α Σ",
               "ΑΣ1", "1Σ", "ΑΣ:Β", "ΑΣ\u2019Β", "ΑΣ\u2019", "ÀΣ", "ǅΣ", "ΟΔΥΣΣΕΥΣ ΣΟΦΟΣ", "İSTANBUL", "ΑΣ-Β", "ΑΣΣ"]


def test_character_classes_agree_with_hf_on_every_code_point(java_runner, tmp_path):
    """Each normaliser step, the pre-tokenizer's split class and pythonLower, for all 1,112,064 code points."""
    from tokenizers import normalizers, pre_tokenizers

    command = java_program(_CODE_POINTS_JAVA, "CodePoints", tmp_path)
    sigma_in = write_lines(tmp_path / "sigma.txt", SIGMA_CASES + BATTERY)
    subprocess.run([*command, str(tmp_path / "java.tsv"), str(sigma_in), str(tmp_path / "sigma.out")],
                   check=True, timeout=120)

    def norm(clean, chinese, strip, lower):
        return normalizers.BertNormalizer(clean_text=clean, handle_chinese_chars=chinese, strip_accents=strip,
                                          lowercase=lower)

    steps = [norm(True, False, False, False), norm(False, True, False, False), norm(False, False, True, False),
             norm(False, False, False, True)]
    pre = pre_tokenizers.BertPreTokenizer()

    def hexs(s: str) -> str:
        return ",".join(f"{ord(ch):x}" for ch in s)

    names = ["clean_text", "chinese_chars", "strip_accents", "lowercase", "split"]
    bad: dict[str, list[str]] = {n: [] for n in names + ["python_lower"]}
    with open(tmp_path / "java.tsv", encoding="utf-8") as java:
        for row in java:
            cells = row.rstrip("\n").split("\t")
            cp = int(cells[0], 16)
            c = chr(cp)
            words = pre.pre_tokenize_str("a" + c + "b")
            split = "p" if len(words) == 3 else "w" if len(words) == 2 else "n"
            ref = [hexs(s.normalize_str(c)) for s in steps] + [split]
            for name, want, have in zip(names, ref, cells[1:6]):
                if want != have:
                    bad[name].append(f"U+{cp:04X} {unicodedata.name(c, '?')}: HF {want} Java {have}")
            # a code point the JDK's Unicode version does not know has no case mapping there
            if cells[7] == "1" and hexs(c.lower()) != cells[6]:
                bad["python_lower"].append(f"U+{cp:04X}: Python {hexs(c.lower())} Java {cells[6]}")
    assert not any(bad.values()), {k: (len(v), v[:10]) for k, v in bad.items() if v}
    lowered = (tmp_path / "sigma.out").read_bytes().decode("utf-8").split("\n")[:-1]
    assert lowered == [s.lower() for s in SIGMA_CASES + BATTERY]


@pytest.mark.parametrize("lowercase", [True, False], ids=["lowercase", "cased"])
def test_sentencepiece_ids_and_decoding_match_python(lowercase, text_exports, corpus, java_runner, tmp_path):
    """libsentencepiece (Debian, C++) reads the Python sentencepiece's model and encodes/decodes alike.

    With the export's max_length (what the graph is fed) the ids must be identical. Over whole
    lines (thousands of pieces) the two library versions may break a near-tie between two
    segmentations differently, since their Viterbi sums scores in float32: allowed only where both
    are segmentations of the same text whose float64 scores agree within 1e-6 relative.
    """
    import sentencepiece

    from toolkit.nlp.deploy import encode_source, load_deploy_tokenizer, read_text_inputs

    base = text_exports["transformer"]
    folder = tmp_path / "sp"
    folder.mkdir()
    for suffix in (".json", ".spm.model"):
        shutil.copy(f"{base}{suffix}", folder / f"transformer{suffix}")
    meta = json.loads((folder / "transformer.json").read_text())
    lines = write_lines(tmp_path / "lines.txt", corpus)
    inputs = read_text_inputs([lines])
    print(f"Python sentencepiece {sentencepiece.__version__} wrote the model; {len(inputs)} lines")
    for max_length in (meta["tokenizer"]["max_length"], 1_000_000):
        meta["tokenizer"].update(lowercase=lowercase, max_length=max_length)
        (folder / "transformer.json").write_text(json.dumps(meta))
        got = text_json(java_runner, folder / "transformer", lines, "--print-ids")
        tokenizer, spec = load_deploy_tokenizer(meta, folder)
        assert [g["input"] for g in got] == inputs
        sp = tokenizer.processor
        ties = 0
        for line, g in zip(inputs, got):
            ref = encode_source(tokenizer, spec, line)
            if g["ids"] != ref:
                assert max_length > 1000, f"max_length {max_length}: ids differ on {line!r}"
                mine, theirs = (sum(sp.get_score(i) for i in ids[:-1]) for ids in (g["ids"], ref))
                assert tokenizer.decode(g["ids"][:-1]) == tokenizer.decode(ref[:-1]), line
                assert abs(mine - theirs) <= 1e-6 * abs(theirs), (line, mine, theirs)
                ties += 1
            assert g["decoded"] == tokenizer.decode(g["ids"][:-1]), line
        assert ties <= 3, f"{ties} lines segmented differently"
        print(f"max_length {max_length}: {ties} near-tie segmentations")


# --------------------------------------------------------------------------- errors
def _fails(runner: Path, *args, message: str) -> None:
    stderr = failure_stderr(runner, *args, crash_signs=CRASH_SIGNS)
    lines = stderr.strip().split("\n")
    assert len(lines) == 1 and lines[0].startswith("predict: error: ") and message in lines[0], stderr


def test_bad_tokenizer_files_and_metadata(text_exports, java_runner, tmp_path):
    inputs = text_exports["inputs"]
    for name, suffix in (("bert", ".vocab.txt"), ("transformer", ".spm.model")):
        prefix = copy_export(text_exports[name], tmp_path / name)
        tok = Path(f"{prefix}{suffix}")
        data = bytearray(tok.read_bytes())
        data[len(data) // 2] ^= 0x55
        tok.write_bytes(bytes(data))
        _fails(java_runner, prefix, inputs, "--json", message="is corrupt or was replaced")
        tok.unlink()
        _fails(java_runner, prefix, inputs, "--json", message="not found")
        # a file whose sha256 the metadata records but that is not a tokenizer of its kind
        tok.write_bytes(b"\xff\xfe not a tokenizer \x00\x01" * 10)
        edit_meta(prefix, lambda m: m["tokenizer"].update(sha256=hashlib.sha256(tok.read_bytes()).hexdigest()))
        _fails(java_runner, prefix, inputs, "--json",
               message="not valid UTF-8" if name == "bert" else "not a valid SentencePiece model")
        edit_meta(prefix, lambda m: m["tokenizer"].update(type="bpe"))
        _fails(java_runner, prefix, inputs, "--json", message="unknown tokenizer type 'bpe'")
        edit_meta(prefix, lambda m: m.pop("tokenizer"))
        _fails(java_runner, prefix, inputs, "--json", message='has no "tokenizer" block')
        _fails(java_runner, prefix, inputs, "--print-ids", message='has no "tokenizer" block')


def test_bad_input_files(text_exports, java_runner, tmp_path):
    blank = tmp_path / "blank.txt"
    blank.write_bytes(b"\n   \n\t\r\n\xc2\xa0\xe3\x80\x80\n")  # spaces, tab, CR, no-break and ideographic spaces
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Dónde está el niño\n".encode("latin-1"))
    for name in ("bert", "transformer"):
        prefix = text_exports[name]
        _fails(java_runner, prefix, tmp_path / "absent.txt", "--json", message="cannot read input file")
        _fails(java_runner, prefix, text_exports["inputs"], blank, "--json", message="has no non-empty line")
        _fails(java_runner, prefix, latin1, "--json", message="is not valid UTF-8")
        _fails(java_runner, prefix, latin1, "--print-ids", message="is not valid UTF-8")
