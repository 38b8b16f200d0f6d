"""Small text exports with real tokenizers, for the Python, C++ and Java text-deployment tests.

Everything is built from text installed on the machine (no download): the
English (WEB) and Spanish (RV1909) Bible through ``diatheke`` (Debian packages
``diatheke sword-text-web sword-text-sparv``, see tools/setup.sh). Models and
tokenizers are seeded, so a fixture gives the same files on every run; nothing
is written outside the folder passed in.

* :func:`export_bert_classifier` -> ``DIR/bert`` (``bert.onnx``, ``bert.json``,
  ``bert.vocab.txt``): a 2-layer, 64-unit BERT that tells English from Spanish
  from both (3 classes), trained for a few steps, WordPiece vocabulary of
  about 2000 tokens, ``lowercase=True``, ``max_length`` 32.
* :func:`export_transformer` -> ``DIR/transformer`` (``.onnx``, ``.json``,
  ``.spm.model``): a 1+1-layer, 64-unit Transformer trained for a few steps,
  with a lower-casing SentencePiece unigram model of 800 pieces; exported
  ``max_length`` 24, so some greedy outputs stop at eos and others at the limit.
* :func:`text_inputs` -> ``DIR/inputs.txt``: tricky real lines (see :data:`TRICKY_LINES`).

Imported by name (tests/deploy/conftest.py puts this folder on sys.path).
"""
from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

#: Verses read for the tokenizers and the tiny training runs (about 2,700 English-Spanish pairs).
BIBLE_RANGE = "Gen 1:1-Exo 40:38"
#: Class names of the BERT fixture.
BERT_CLASSES = ("english", "spanish", "both")
#: Training steps of the two fixtures (a few seconds each on one core).
BERT_STEPS = 80
TRANSFORMER_STEPS = 160
#: ``tokenizer.max_length`` of the Transformer export (the model itself takes 48).
EXPORT_MAX_LENGTH = 24

#: Lines of :func:`text_inputs`, in file order, as written (line ends included).
TRICKY_LINES = (
    "¿Dónde está el niño? ¡Qué año tan difícil para la señora Muñoz!\n",  # Spanish accents, ¿ ¡
    "The QUICK Brown fox JUMPS over McDonald's iPhone in NEW YORK.\n",  # mixed case
    "東京は日本の首都です。北京是中国的首都。\n",  # CJK (each ideograph a word for BERT)
    "Wait... what?!?! ---- (really) *** ,,, ;;\n",  # punctuation runs
    "first sentence [SEP] second sentence\n",  # the literal special token
    "ΟΔΥΣΣΕΥΣ ο πολύτροπος ΚΑΙ ΣΟΦΟΣ\n",  # Greek: upper-case final sigma lower-cases to ς
    "tab\tseparated\tcolumns\there\n",  # tabs
    " ".join(["In the beginning God created the heavens and the earth, and the earth was formless and empty."] * 12)
    + "\n",  # much longer than max_length: truncated
    "\n",  # empty: skipped
    "   \t  \n",  # whitespace only: skipped
    "Y dijo Dios: Sea la luz: y fué la luz.\r\n",  # CRLF line end
    "Émile dit: «Ça va?» — naïve café, crème brûlée\n",  # French accents, guillemets, em dash
    "Numbers 3.14159 and 1,000,000 plus e-mail: someone@example.com\n",
    "Combining e\u0301 versus é, and an emoji 😀 at the end",  # no final line end
)


@contextlib.contextmanager
def _one_thread():
    """Train on one thread (the tests share a small machine), restoring torch's setting after."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _bible_lines(limit_range: str = BIBLE_RANGE) -> tuple[list[str], list[str]]:
    """Aligned English and Spanish verses of ``limit_range`` read through diatheke."""
    from toolkit.nlp.datasets.bible import MODULES, align, parse_diatheke

    if shutil.which("diatheke") is None:
        pytest.skip("diatheke is not installed (apt-get install diatheke sword-text-web sword-text-sparv)")
    texts = {}
    for lang, module in MODULES.items():
        done = subprocess.run(["diatheke", "-b", module, "-f", "plain", "-l", "en", "-k", limit_range],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0 or not done.stdout.strip():
            pytest.skip(f"diatheke cannot read the SWORD module {module}: {done.stderr.strip()[:200]}")
        texts[lang] = parse_diatheke(done.stdout)
    pairs = align(texts["en"], texts["es"])
    if len(pairs) < 1000:
        pytest.skip(f"only {len(pairs)} aligned verses in {limit_range}; the SWORD modules look incomplete")
    return [p.en for p in pairs], [p.es for p in pairs]


def _wordpiece_tokenizer(lines: list[str], directory: Path, vocab_size: int = 2000):
    """Learn a BERT WordPiece vocabulary (deterministically) and wrap it as the toolkit's tokenizer.

    The ``tokenizers`` WordPiece trainer breaks ties in hash order, so its vocabulary changes from run to
    run; a fixture must not. So the words (BERT's own normaliser and pre-tokenizer from ``tokenizers``)
    go through a single-threaded SentencePiece BPE, whose pieces become WordPiece tokens: a piece
    that starts a word (``▁abc``) is ``abc``, any other is ``##abc``. Every character of the
    corpus is kept in both forms, so no known character makes a word ``[UNK]``.
    """
    from tokenizers import normalizers, pre_tokenizers

    from toolkit.nlp.tokenizers import BertWordPieceTokenizer, train_sentencepiece

    normalizer = normalizers.BertNormalizer(lowercase=True)
    splitter = pre_tokenizers.BertPreTokenizer()
    words = [" ".join(w for w, _ in splitter.pre_tokenize_str(normalizer.normalize_str(line))) for line in lines]
    bpe = train_sentencepiece(words, vocab_size=vocab_size, model_type="bpe", character_coverage=1.0,
                              pad_piece=None, bos_piece=None, eos_piece=None, hard_vocab_limit=False,
                              num_threads=1)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens: dict[str, None] = dict.fromkeys(specials)
    chars = sorted({c for w in words for c in w if not c.isspace()})
    for c in chars:
        tokens.setdefault(c)
        tokens.setdefault("##" + c)
    for piece in bpe.vocab.idx_to_token:
        if piece == "<unk>" or piece == "\u2581":
            continue
        tokens.setdefault(piece[1:] if piece.startswith("\u2581") else "##" + piece)
    path = directory / "wordpiece-vocab.txt"
    path.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    return BertWordPieceTokenizer.from_vocab_file(path, lowercase=True)


def export_bert_classifier(directory: str | Path) -> Path:
    """Export a tiny trained BERT sentence classifier with its WordPiece vocabulary.

    Parameters
    ----------
    directory : path
        Folder to write into (created if needed).

    Returns
    -------
    pathlib.Path
        The export prefix ``directory / "bert"``. Also written: the toolkit tokenizer
        ``directory / "bert-tokenizer"`` (for ``toolkit export --tokenizer``) and the
        eager weights ``directory / "bert-checkpoint.pt"`` (:func:`load_checkpoint`).
    """
    from toolkit.data.batchify import Pad
    from toolkit.nlp.deploy import export_text
    from toolkit.nlp.models.bert import build_bert

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    en, es = _bible_lines()
    tokenizer = _wordpiece_tokenizer(en + es, directory)
    tokenizer.save(directory / "bert-tokenizer")
    max_length = 32
    torch.manual_seed(0)
    kwargs = dict(head="classification", num_classes=len(BERT_CLASSES), vocab_size=len(tokenizer), units=64,
                  hidden_size=128, num_heads=2, max_length=64, dropout=0.0, attention_dropout=0.0)
    model = build_bert("bert_2_128_2", **kwargs)
    model.metadata.update(name="bert_tiny_langid", classes=list(BERT_CLASSES))

    # A few steps of language identification so that the logits mean something and are well apart.
    texts = en[:200] + es[200:400] + [f"{a} {b}" for a, b in zip(en[400:600], es[400:600])]
    labels = torch.tensor([0] * 200 + [1] * 200 + [2] * 200)
    encoded = tokenizer.encode(texts, max_length=max_length)
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    pad = Pad(val=tokenizer.vocab.pad_id)
    model.train()
    with _one_thread():
        _train_bert(model, opt, pad, encoded, labels, gen, tokenizer.vocab.pad_id)
    model.eval()
    _save_checkpoint(model, "bert_2_128_2", kwargs, directory / "bert-checkpoint.pt")
    prefix = directory / "bert"
    export_text(model, tokenizer, prefix, max_length=max_length)
    return prefix


def _save_checkpoint(model, name: str, kwargs: dict, path: Path) -> None:
    """A torch checkpoint dict as ``toolkit export`` reads it (``model_name``, ``model_kwargs``, ``metadata``)."""
    meta = {k: v for k, v in model.metadata.items() if k in ("name", "classes")}
    torch.save({"model_name": name, "model_kwargs": kwargs, "metadata": meta, "model": model.state_dict()}, path)


def load_checkpoint(path: str | Path):
    """The eager model saved beside a fixture export (``DIR/bert-checkpoint.pt``, ``DIR/transformer-checkpoint.pt``)."""
    from toolkit.zoo import get_model

    blob = torch.load(str(path), map_location="cpu", weights_only=True)
    model = get_model(blob["model_name"], **blob["model_kwargs"])
    model.load_state_dict(blob["model"])
    model.metadata.update(blob["metadata"])
    return model.eval()


def _train_bert(model, opt, pad, encoded: list[list[int]], labels: torch.Tensor, gen, pad_id: int) -> None:
    for _ in range(BERT_STEPS):
        idx = torch.randint(0, len(encoded), (32,), generator=gen).tolist()
        ids = pad([encoded[i] for i in idx]).long()
        mask = (ids != pad_id).long()
        loss = torch.nn.functional.cross_entropy(model(ids, torch.zeros_like(ids), mask), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


def export_transformer(directory: str | Path) -> Path:
    """Export a tiny English->Spanish Transformer with a lower-casing SentencePiece model.

    Parameters
    ----------
    directory : path
        Folder to write into (created if needed).

    Returns
    -------
    pathlib.Path
        The export prefix ``directory / "transformer"``. Also written: the toolkit
        tokenizer ``directory / "transformer-tokenizer"`` and the eager weights
        ``directory / "transformer-checkpoint.pt"`` (:func:`load_checkpoint`).
    """
    from toolkit.data.batchify import Pad
    from toolkit.nlp.deploy import export_text
    from toolkit.nlp.models.transformer import build_transformer
    from toolkit.nlp.tokenizers import train_sentencepiece

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    en, es = _bible_lines()
    tokenizer = train_sentencepiece(en + es, vocab_size=800, model_type="unigram", lowercase=True,
                                    character_coverage=1.0, hard_vocab_limit=False, seed_sentencepiece_size=20000,
                                    num_threads=1)
    tokenizer.save(directory / "transformer-tokenizer")
    vocab = tokenizer.vocab
    max_length = 48
    torch.manual_seed(0)
    kwargs = dict(vocab_size=len(vocab), units=64, hidden_size=128, num_heads=2, num_enc_layers=1, num_dec_layers=1,
                  max_length=max_length, dropout=0.0, attention_dropout=0.0, pad_id=vocab.pad_id,
                  bos_id=vocab.bos_id, eos_id=vocab.eos_id)
    model = build_transformer("transformer_tiny", **kwargs)
    model.metadata.update(name="transformer_tiny_en_es")

    # Some teacher-forced steps on short verses: the greedy output is then not a constant token.
    pairs = [(s + [vocab.eos_id], t + [vocab.eos_id]) for s, t in zip(tokenizer.encode(en), tokenizer.encode(es))
             if len(s) < 24 and len(t) < 24]
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    pad = Pad(val=vocab.pad_id)
    model.train()
    with _one_thread():
        _train_transformer(model, opt, pad, pairs, gen, vocab.pad_id, vocab.bos_id)
    model.eval()
    _save_checkpoint(model, "transformer_tiny", kwargs, directory / "transformer-checkpoint.pt")
    prefix = directory / "transformer"
    # A deploy max_length below the model's: long sources are cut and some greedy outputs run into
    # the length limit (max_length - 1) while others end with eos, so both ways of stopping are exercised.
    export_text(model, tokenizer, prefix, max_length=EXPORT_MAX_LENGTH)
    return prefix


def _train_transformer(model, opt, pad, pairs: list[tuple[list[int], list[int]]], gen, pad_id: int,
                       bos_id: int) -> None:
    for _ in range(TRANSFORMER_STEPS):
        idx = torch.randint(0, len(pairs), (32,), generator=gen).tolist()
        src = pad([pairs[i][0] for i in idx]).long()
        valid = torch.tensor([len(pairs[i][0]) for i in idx])
        labels = pad([pairs[i][1] for i in idx]).long()
        tgt_in = torch.cat([torch.full((len(idx), 1), bos_id), labels[:, :-1]], dim=1)
        logits = model(src, valid, tgt_in)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                                 ignore_index=pad_id)
        opt.zero_grad()
        loss.backward()
        opt.step()


def text_inputs(directory: str | Path) -> Path:
    """Write :data:`TRICKY_LINES` to ``directory / "inputs.txt"`` (UTF-8, bytes exactly as listed).

    12 of the lines are inputs; the empty and the whitespace-only line are skipped.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "inputs.txt"
    path.write_bytes("".join(TRICKY_LINES).encode("utf-8"))
    return path


def expected_inputs() -> list[str]:
    """The inputs :func:`text_inputs` holds, as the contract reads them (line ends removed, blank lines skipped)."""
    out = []
    for line in TRICKY_LINES:
        line = line.removesuffix("\n").removesuffix("\r")
        if line.strip():
            out.append(line)
    return out
