import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from toolkit.nlp import Vocab
from toolkit.nlp.embedding import (
    EmbeddingFormatError,
    TokenEmbedding,
    evaluate_analogy,
    evaluate_similarity,
    read_analogies,
    read_word_pairs,
)

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from t1_data import gensim_test_data

DATA = gensim_test_data()
needs_gensim = pytest.mark.skipif(DATA is None, reason="gensim (its test data) is not installed")

TOKENS = ["the", "cat", "Cat", "dog", "naïve"]
VECS = np.arange(len(TOKENS) * 3, dtype=np.float32).reshape(-1, 3) / 7 - 1


def write_w2v_binary(path, tokens, vecs, newline=True, header=None):
    with open(path, "wb") as f:
        f.write((header or f"{len(tokens)} {vecs.shape[1]}\n").encode())
        f.writelines(t.encode("utf-8") + b" " + v.astype("<f4").tobytes() + (b"\n" if newline else b"") for t, v in zip(tokens, vecs))
    return path


def write_text(path, tokens, vecs, header=True):
    lines = ([f"{len(tokens)} {vecs.shape[1]}"] if header else []) + [
        t + " " + " ".join(repr(float(x)) for x in v) for t, v in zip(tokens, vecs)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("newline", [True, False])
def test_formats_roundtrip(tmp_path, newline):
    for path, fmt in [(write_w2v_binary(tmp_path / "v.bin", TOKENS, VECS, newline), "auto"),
                      (write_text(tmp_path / "v.vec", TOKENS, VECS), "fasttext"),
                      (write_text(tmp_path / "g.txt", TOKENS, VECS, header=False), "glove"),
                      (write_text(tmp_path / "g2.txt", TOKENS, VECS, header=False), "auto")]:
        emb = TokenEmbedding.from_file(path, format=fmt)
        assert emb.idx_to_token == TOKENS and emb.dim == 3
        np.testing.assert_array_equal(emb.vectors, VECS)
        np.testing.assert_array_equal(emb["naïve"], VECS[4])
    emb = TokenEmbedding.from_file(tmp_path / "v.bin", max_tokens=2)
    assert emb.idx_to_token == ["the", "cat"]
    emb = TokenEmbedding.from_file(tmp_path / "v.vec", restrict_to={"dog", "zzz"})
    assert emb.idx_to_token == ["dog"]
    # a GloVe token that contains a space (the first line fixes the dimension)
    (tmp_path / "sp.txt").write_text("c 3 4\na b 1 2\n")
    assert TokenEmbedding.from_glove(tmp_path / "sp.txt").idx_to_token == ["c", "a b"]


def test_save_load_npz(tmp_path):
    emb = TokenEmbedding(TOKENS, VECS)
    emb.save(tmp_path / "e.npz")
    back = TokenEmbedding.load(tmp_path / "e.npz")
    assert back.idx_to_token == TOKENS and np.array_equal(back.vectors, VECS)
    data = (tmp_path / "e.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(EmbeddingFormatError, match="not an embedding saved"):
        TokenEmbedding.load(tmp_path / "cut.npz")


def test_malformed_files(tmp_path):
    bad = tmp_path / "bad.vec"
    bad.write_text("2 3\nthe 1 2 3\ncat 1 2\n")
    with pytest.raises(EmbeddingFormatError, match=r"bad.vec:3: expected a token and 3 numbers"):
        TokenEmbedding.from_file(bad)
    bad.write_text("2 3\nthe 1 2 3\ncat 1 x 3\n")
    with pytest.raises(EmbeddingFormatError, match=r":3: .*non-numeric"):
        TokenEmbedding.from_file(bad)
    bad.write_text("3 3\nthe 1 2 3\ncat 1 2 3\n")
    with pytest.raises(EmbeddingFormatError, match="announces 3 vectors but the file holds 2"):
        TokenEmbedding.from_file(bad)
    bad.write_text("the 1 2 3\n")
    with pytest.raises(EmbeddingFormatError, match="header"):
        TokenEmbedding.from_fasttext(bad)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(EmbeddingFormatError, match="no vectors"):
        TokenEmbedding.from_file(tmp_path / "empty.txt")
    full = write_w2v_binary(tmp_path / "full.bin", TOKENS, VECS).read_bytes()
    (tmp_path / "cut.bin").write_bytes(full[:-6])
    with pytest.raises(EmbeddingFormatError, match="truncated inside vector 4"):
        TokenEmbedding.from_file(tmp_path / "cut.bin")
    (tmp_path / "cut2.bin").write_bytes(full[:full.index(b"dog")])
    with pytest.raises(EmbeddingFormatError, match="truncated: the file ends after 3 of the 5"):
        TokenEmbedding.from_file(tmp_path / "cut2.bin")
    write_w2v_binary(tmp_path / "wrongdim.bin", TOKENS, VECS, header="5 2\n")
    with pytest.raises(EmbeddingFormatError):
        TokenEmbedding.from_file(tmp_path / "wrongdim.bin")
    write_w2v_binary(tmp_path / "fewer.bin", TOKENS, VECS, header="4 3\n")
    with pytest.raises(EmbeddingFormatError, match="data after the 4 vectors"):
        TokenEmbedding.from_file(tmp_path / "fewer.bin")
    with pytest.raises(FileNotFoundError):
        TokenEmbedding.from_file(tmp_path / "nope.vec")
    with pytest.raises(KeyError, match="no vector"):
        TokenEmbedding(TOKENS, VECS)["zebra"]


def test_attach_to_vocab():
    emb = TokenEmbedding(TOKENS, VECS)
    vocab = Vocab(["dog", "CAT", "bird", "the"], unknown_token="<unk>")
    w = emb.attach_to(vocab)
    assert isinstance(w, torch.Tensor) and w.shape == (len(vocab), 3) and w.dtype == torch.float32
    assert torch.equal(w[vocab["dog"]], torch.from_numpy(VECS[3])) and torch.equal(w[vocab["the"]],
                                                                                  torch.from_numpy(VECS[0]))
    assert (w[vocab["CAT"]] == 0).all() and (w[vocab["bird"]] == 0).all() and emb.last_coverage == 2
    w = emb.attach_to(vocab, lowercase_fallback=True)
    assert torch.equal(w[vocab["CAT"]], torch.from_numpy(VECS[1])) and emb.last_coverage == 3
    r1 = emb.attach_to(vocab, unknown="random", seed=3)
    r2 = emb.attach_to(vocab, unknown="random", seed=3)
    r3 = emb.attach_to(vocab, unknown="random", seed=4)
    assert torch.equal(r1, r2) and not torch.equal(r1, r3)
    assert (r1[vocab["bird"]] != 0).all() and (r1[vocab.pad_id] == 0).all()  # padding stays zero
    assert torch.equal(r1[vocab["dog"]], torch.from_numpy(VECS[3]))
    layer = emb.to_embedding_layer(vocab, freeze=True)
    assert layer.padding_idx == vocab.pad_id and not layer.weight.requires_grad
    assert torch.equal(layer(torch.tensor([vocab["the"]]))[0], torch.from_numpy(VECS[0]))
    with pytest.raises(ValueError, match="unknown must be"):
        emb.attach_to(vocab, unknown="mean")
    np.testing.assert_array_equal(emb.lookup(["dog", "zzz"]), np.stack([VECS[3], np.zeros(3)]))


@needs_gensim
@pytest.mark.parametrize("name, binary, no_header", [("lee_fasttext.vec", False, False),
                                                     ("euclidean_vectors.bin", True, False),
                                                     ("test_glove.txt", False, True),
                                                     ("crime-and-punishment.vec", False, False)])
def test_matches_gensim_loader(name, binary, no_header):
    from gensim.models import KeyedVectors
    ours = TokenEmbedding.from_file(DATA / name)
    ref = KeyedVectors.load_word2vec_format(DATA / name, binary=binary, no_header=no_header)
    assert ours.idx_to_token == ref.index_to_key
    np.testing.assert_array_equal(ours.vectors, ref.vectors)


@needs_gensim
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("vectors", ["lee_fasttext.vec", "euclidean_vectors.bin"])
def test_evaluation_matches_gensim(vectors):
    from gensim.models import KeyedVectors
    emb = TokenEmbedding.from_file(DATA / vectors)
    kv = KeyedVectors.load_word2vec_format(DATA / vectors, binary=vectors.endswith(".bin"))
    for pairs in ("wordsim353.tsv", "simlex999.txt"):
        ours = evaluate_similarity(emb, read_word_pairs(DATA / pairs))
        pearson, spearman, oov_ratio = kv.evaluate_word_pairs(DATA / pairs)
        assert ours["spearman"] == pytest.approx(spearman.statistic, abs=1e-6)
        assert ours["pearson"] == pytest.approx(pearson.statistic, abs=1e-5)
        assert ours["oov_ratio"] == pytest.approx(oov_ratio)
    questions = read_analogies(DATA / "questions-words.txt")
    ours = evaluate_analogy(emb, questions, method="3CosAdd")
    acc, sections = kv.evaluate_word_analogies(DATA / "questions-words.txt")
    total = sections[-1]
    assert ours["total"] == len(total["correct"]) + len(total["incorrect"]) > 50
    assert ours["correct"] == len(total["correct"]) and ours["accuracy"] == pytest.approx(acc)
    # gensim's evaluate_word_analogies only does 3CosAdd: check 3CosMul question by question
    mul = evaluate_analogy(emb, questions, method="3CosMul", eps=1e-6, case_insensitive=False,
                           return_predictions=True)
    assert mul["total"] > 50
    for a, b, c, d, pred in mul["predictions"][:40]:
        top = [w for w, _ in kv.most_similar_cosmul(positive=[b, c], negative=[a], topn=4) if w not in (a, b, c)]
        assert pred == top[0]


def test_evaluation_on_own_vectors():
    # king - man + woman = queen in a constructed space
    tokens = ["king", "queen", "man", "woman", "apple"]
    vecs = np.array([[1, 1, 0], [1, -1, 0], [0, 1, 0.1], [0, -1, 0.1], [0, 0, 1]], dtype=np.float32)
    emb = TokenEmbedding(tokens, vecs)
    for method in ("3CosAdd", "3CosMul"):
        r = evaluate_analogy(emb, [("man", "king", "woman", "queen"), ("man", "king", "pear", "x")], method=method)
        assert r["correct"] == 1 and r["total"] == 1 and r["num_oov"] == 1
    # cosines: king-man 0.70, man-apple 0.10, king-queen 0.0
    sim = evaluate_similarity(emb, [("king", "queen", 1.0), ("king", "man", 7.0), ("man", "apple", 5.0)])
    assert sim["spearman"] == pytest.approx(1.0) and sim["num_pairs"] == 3
    assert emb.most_similar("king", k=1)[0][0] == "man"
