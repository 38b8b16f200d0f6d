"""Hugging Face BERT checkpoints -> toolkit BERT + WordPiece tokenizer, checked against ``transformers``."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

from toolkit.nlp.convert import from_huggingface  # noqa: E402
from toolkit.zoo import WeightsError  # noqa: E402

WORDS = ["the", "quick", "brown", "fox", "jump", "##s", "##ed", "over", "lazy", "dog", "un", "##believ", "##able",
         "caf", "##e", ",", ".", "!", "?", "'", "a", "b", "c", "hello", "world", "in", "##ing", "run", "play"]
TEXTS = ["The quick brown fox jumps over the lazy dog.", "Unbelievable!", "hello, world? Café running",
         "a b c zzz", ""]


def write_checkpoint(path, model_cls, safetensors=True, lowercase=True, vocab_txt=False, **cfg_kwargs):
    torch.manual_seed(0)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    cfg = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=40, max_position_embeddings=64, **cfg_kwargs)
    model = model_cls(cfg).eval()
    model.save_pretrained(path)
    if not safetensors:  # the older pickle-free-to-read layout: a plain state dict in pytorch_model.bin
        torch.save(model.state_dict(), path / "pytorch_model.bin")
        (path / "model.safetensors").unlink()
    vocab_file = path.parent / f"{path.name}-vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n")
    tok = transformers.BertTokenizerFast(vocab=str(vocab_file), do_lower_case=lowercase)
    assert tok("the fox")["input_ids"] == [2, 5, 8, 3]  # the vocabulary was really read
    tok.save_pretrained(path)  # transformers >= 5 writes tokenizer.json (no vocab.txt)
    if vocab_txt:
        (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
        (path / "tokenizer.json").unlink(missing_ok=True)
    return model, tok


def hf_inputs(tok, texts):
    enc = tok(texts, padding=True, return_tensors="pt")
    return enc["input_ids"], enc["token_type_ids"], enc["attention_mask"]


@pytest.mark.parametrize("safetensors", [True, False])
def test_bert_model_matches_transformers(tmp_path, safetensors):
    hf, tok = write_checkpoint(tmp_path, transformers.BertModel, safetensors=safetensors)
    model, ours = from_huggingface(tmp_path)
    ids, types, mask = hf_inputs(tok, TEXTS[:4])
    with torch.no_grad():
        ref = hf(input_ids=ids, token_type_ids=types, attention_mask=mask)
        seq, pooled = model(ids, types, mask)
    assert (ref.last_hidden_state - seq).abs().max().item() < 1e-4
    assert (ref.pooler_output - pooled).abs().max().item() < 1e-4
    assert model.metadata["cls_id"] == 2 and model.metadata["sep_id"] == 3
    assert not model.training


@pytest.mark.parametrize("vocab_txt", [False, True])
def test_tokenizer_ids_match_transformers(tmp_path, vocab_txt):
    _, tok = write_checkpoint(tmp_path, transformers.BertModel, vocab_txt=vocab_txt)
    _, ours = from_huggingface(tmp_path)
    assert ours is not None
    for text in TEXTS:
        assert ours.encode(text) == tok(text)["input_ids"], text
    # [CLS]/[SEP] are included
    assert ours.encode("hello")[0] == 2 and ours.encode("hello")[-1] == 3


def test_cased_checkpoint_keeps_case(tmp_path):
    _, tok = write_checkpoint(tmp_path, transformers.BertModel, lowercase=False)
    _, ours = from_huggingface(tmp_path)
    text = "The Quick fox"
    assert ours.encode(text) == tok(text)["input_ids"]
    assert 1 in ours.encode(text)  # capitalised words are unknown in this lower-case vocab


def test_pretraining_checkpoint_heads(tmp_path):
    hf, tok = write_checkpoint(tmp_path, transformers.BertForPreTraining)
    ids, types, mask = hf_inputs(tok, TEXTS[:2])
    with torch.no_grad():
        ref = hf(input_ids=ids, token_type_ids=types, attention_mask=mask)
    mlm, _ = from_huggingface(tmp_path, head="mlm")
    with torch.no_grad():
        assert (mlm(ids, types, mask) - ref.prediction_logits).abs().max().item() < 1e-4
    pre, _ = from_huggingface(tmp_path, head="pretrain")
    with torch.no_grad():
        logits, nsp = pre(ids, types, mask)
    assert (nsp - ref.seq_relationship_logits).abs().max().item() < 1e-4
    bare, _ = from_huggingface(tmp_path)  # the backbone alone, heads ignored
    with torch.no_grad():
        assert bare(ids, types, mask)[0].shape == (2, ids.shape[1], 32)


def test_classification_checkpoint(tmp_path):
    hf, tok = write_checkpoint(tmp_path, transformers.BertForSequenceClassification, num_labels=3)
    model, _ = from_huggingface(tmp_path, head="classification")
    ids, types, mask = hf_inputs(tok, TEXTS[:3])
    with torch.no_grad():
        assert (model(ids, types, mask) - hf(input_ids=ids, token_type_ids=types, attention_mask=mask).logits).abs().max() < 1e-4


def test_bad_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        from_huggingface(tmp_path)
    write_checkpoint(tmp_path, transformers.BertModel)
    with pytest.raises(WeightsError, match="lacks weights"):
        from_huggingface(tmp_path, head="qa")
    weights = tmp_path / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="corrupt or truncated"):
        from_huggingface(tmp_path)
    weights.unlink()
    with pytest.raises(WeightsError, match="no model.safetensors"):
        from_huggingface(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(dict(cfg, model_type="gpt2")))
    with pytest.raises(ValueError, match="model_type"):
        from_huggingface(tmp_path)


def test_shape_mismatch_is_reported(tmp_path):
    write_checkpoint(tmp_path, transformers.BertModel)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(dict(cfg, intermediate_size=41)))
    with pytest.raises(WeightsError, match="does not fit"):
        from_huggingface(tmp_path)


FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_gluonnlp_bert_params_match_gluonnlp(tmp_path):
    """A GluonNLP 0.10 BERTModel's saved parameters and outputs, made with MXNet 1.9.1 by
    tools/legacy/make_gluonnlp_fixtures.py (committed: no MXNet needed here)."""
    import lzma

    import numpy as np

    from toolkit.nlp.convert import from_gluonnlp

    params = tmp_path / "bert.params"
    params.write_bytes(lzma.decompress((FIXTURES / "gluonnlp_bert.params.xz").read_bytes()))
    ref = np.load(FIXTURES / "gluonnlp_bert.npz")
    assert json.loads((FIXTURES / "gluonnlp_fixtures.json").read_text())["gluonnlp"] == "0.10.0"
    ids, types = torch.from_numpy(ref["ids"]).long(), torch.from_numpy(ref["types"]).long()
    valid = torch.arange(ids.shape[1])[None] < torch.from_numpy(ref["valid"]).long()[:, None]
    model = from_gluonnlp(params, name="bert_2_128_2", num_heads=4)
    with torch.no_grad():
        seq, pooled = model(ids, types, valid.long())
    assert np.abs(seq.numpy() - ref["seq"])[valid.numpy()].max() < 1e-4
    assert np.abs(pooled.numpy() - ref["pooled"]).max() < 1e-4
    assert np.abs(seq.numpy() - ref["seq"]).max() > 1e-3  # GluonNLP masks padded queries too: the check sees real data
    pre = from_gluonnlp(params, name="bert_2_128_2", num_heads=4, head="pretrain")
    with torch.no_grad():
        mlm, nsp = pre(ids, types, valid.long(), torch.from_numpy(ref["positions"]).long())
    assert np.abs(mlm.numpy() - ref["mlm"])[valid.numpy()].max() < 1e-4
    assert np.abs(nsp.numpy() - ref["nsp"]).max() < 1e-4
    # the wrong head count gives other attention: the outputs must then disagree
    wrong = from_gluonnlp(params, name="bert_2_128_2", num_heads=2)
    with torch.no_grad():
        assert np.abs(wrong(ids, types, valid.long())[0].numpy() - ref["seq"])[valid.numpy()].max() > 1e-3
    with pytest.raises(ValueError, match="no 'qa' head"):
        from_gluonnlp(params, name="bert_2_128_2", head="qa")
    with pytest.raises(ValueError, match="not divisible"):
        from_gluonnlp(params, name="bert_2_128_2", num_heads=5)
