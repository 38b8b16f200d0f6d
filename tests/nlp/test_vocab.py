from collections import Counter

import pytest

from toolkit.nlp import Vocab, count_tokens


def test_counter_order_and_specials():
    v = Vocab(count_tokens(["b", "a", "c", "c", "b", "c", "d"]))
    assert v.idx_to_token == ["<unk>", "<pad>", "<bos>", "<eos>", "c", "b", "a", "d"]
    assert (v.unk_id, v.pad_id, v.bos_id, v.eos_id) == (0, 1, 2, 3)
    assert v.cls_id is None and v.mask_id is None
    assert v["c"] == 4 and v["never-seen"] == 0
    assert v[["a", "zzz", "b"]] == [6, 0, 5]
    assert v.to_indices("d") == 7
    assert v.to_tokens([4, 5]) == ["c", "b"] and v.to_tokens(7) == "d"
    assert "c" in v and "zzz" not in v and len(v) == 8


def test_min_freq_max_size_reserved():
    c = Counter({"x": 5, "y": 3, "z": 3, "w": 1})
    v = Vocab(c, min_freq=2, max_size=2, reserved_tokens=["<r1>"], bos_token=None, eos_token=None)
    assert v.idx_to_token == ["<unk>", "<pad>", "<r1>", "x", "y"]  # y before z: alphabetical tie-break
    assert v.reserved_tokens == ["<r1>"]


def test_token_list_keeps_order_and_appends_missing_specials():
    v = Vocab(["hello", "<pad>", "world"], unknown_token="<unk>", bos_token=None, eos_token=None)
    assert v.idx_to_token == ["hello", "<pad>", "world", "<unk>"]
    assert v.pad_id == 1 and v.unk_id == 3
    with pytest.raises(ValueError, match="twice"):
        Vocab(["a", "a"])


def test_no_unknown_token_raises():
    v = Vocab(["a", "b"], unknown_token=None, padding_token=None, bos_token=None, eos_token=None)
    assert v["b"] == 1
    with pytest.raises(KeyError, match="not in the vocabulary"):
        v["c"]
    with pytest.raises(KeyError):
        v[["a", "c"]]


def test_bad_input():
    v = Vocab(["a"])
    with pytest.raises(IndexError, match="out of range"):
        v.to_tokens(99)
    with pytest.raises(TypeError):
        v[3]
    with pytest.raises(TypeError):
        Vocab("abc")
    with pytest.raises(ValueError):
        Vocab(Counter(a=1), min_freq=0)


def test_json_roundtrip(tmp_path):
    v = Vocab(Counter(["a", "b", "b", "é"]), cls_token="[CLS]", mask_token="[MASK]", reserved_tokens=["<x>"])
    w = Vocab.from_json(v.to_json())
    assert w == v and w.cls_id == v.cls_id and w.mask_token == "[MASK]"
    v.save(tmp_path / "v.json")
    u = Vocab.load(tmp_path / "v.json")
    assert u == v and u["é"] == v["é"]
    with pytest.raises(ValueError, match="not a vocabulary"):
        Vocab.from_json('{"a": 1}')
    with pytest.raises(ValueError, match="not valid JSON"):
        Vocab.from_json("{")
    with pytest.raises(FileNotFoundError):
        Vocab.load(tmp_path / "missing.json")
