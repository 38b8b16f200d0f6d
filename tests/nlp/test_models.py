"""Text models: shapes, hybridize == eager at several sizes, ONNX export, decoding states."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from toolkit.nlp.models import (
    BertModel,
    Config,
    LSTMLanguageModel,
    TextCNN,
    TransformerModel,
    bert_cfg_reg,
    build_bert,
    build_transformer,
)
from toolkit.zoo import get_model, list_models, load_weights, save_weights


def eager(model, *args):
    """Run the forward without the captured graph."""
    return nn.Module.__call__(model, *args)


def bert_inputs(batch: int, length: int, vocab: int = 60):
    ids = torch.randint(1, vocab, (batch, length))
    types = torch.zeros_like(ids)
    types[:, length // 2:] = 1
    mask = torch.ones_like(ids)
    mask[0, max(1, length - 3):] = 0
    return ids, types, mask


# --------------------------------------------------------------------------- registry and configs
def test_zoo_names_follow_gluonnlp():
    names = set(list_models())
    for name in ["bert_12_768_12", "bert_24_1024_16", "bert_2_128_2", "transformer_en_de_512", "transformer_small",
                 "transformer_tiny", "standard_lstm_lm_200", "standard_lstm_lm_650", "standard_lstm_lm_1500",
                 "awd_lstm_lm_600", "awd_lstm_lm_1150", "textcnn_rand", "textcnn_multichannel"]:
        assert name in names
    assert set(list_models(task="translation")) >= {"transformer_en_de_512", "transformer_small"}


def test_config_registry_and_freeze():
    cfg = BertModel.get_cfg("bert_12_768_12")
    assert (cfg.units, cfg.num_layers, cfg.num_heads, cfg.hidden_size) == (768, 12, 12, 3072)
    large = bert_cfg_reg.get("BERT_24_1024_16")
    assert (large.units, large.num_layers, large.num_heads) == (1024, 24, 16)
    with pytest.raises(AttributeError, match="frozen"):
        cfg.units = 5
    small = cfg.clone(units=64, num_heads=2)
    assert small.units == 64 and cfg.units == 768
    with pytest.raises(KeyError, match="unknown config keys"):
        cfg.clone(unit=3)
    with pytest.raises(ValueError, match="closest"):
        bert_cfg_reg.get("bert_12_768_13")
    assert Config.from_json(small.to_json()) == small
    en_de = TransformerModel.get_cfg("transformer_en_de_512")
    assert (en_de.units, en_de.hidden_size, en_de.num_heads, en_de.num_enc_layers) == (512, 2048, 8, 6)
    awd = LSTMLanguageModel.get_cfg("awd_lstm_lm_1150")
    assert (awd.embed_size, awd.hidden_size, awd.num_layers, awd.weight_drop) == (400, 1150, 3, 0.5)


# --------------------------------------------------------------------------- BERT
@pytest.fixture(scope="module")
def tiny_bert():
    torch.manual_seed(0)
    return build_bert("bert_2_128_2", vocab_size=60, units=32, hidden_size=64, num_heads=4).eval()


def test_bert_outputs_and_padding(tiny_bert):
    ids, types, mask = bert_inputs(3, 9)
    seq, pooled = tiny_bert(ids, types, mask)
    assert seq.shape == (3, 9, 32) and pooled.shape == (3, 32)
    # A padded position must not change the outputs of the real tokens.
    ids2 = ids.clone()
    ids2[0, mask[0] == 0] = 7
    seq2, _ = tiny_bert(ids2, types, mask)
    real = mask[0] == 1
    assert torch.allclose(seq[0, real], seq2[0, real], atol=1e-6)
    assert not torch.allclose(seq[0, ~real], seq2[0, ~real])


def test_bert_bad_input(tiny_bert):
    with pytest.raises(ValueError, match="max_length"):
        tiny_bert(torch.ones(1, 513, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        tiny_bert(torch.ones(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(batch, seq\)"):
        tiny_bert(torch.ones(4, dtype=torch.long))


def test_bert_heads():
    torch.manual_seed(0)
    kw = dict(vocab_size=50, units=32, hidden_size=64, num_heads=2)
    ids, types, mask = bert_inputs(2, 6, 50)
    cls = build_bert("bert_2_128_2", head="classification", num_classes=3, **kw).eval()
    assert cls(ids, types, mask).shape == (2, 3)
    qa = build_bert("bert_2_128_2", head="qa", **kw).eval()
    start, end = qa(ids, types, mask)
    assert start.shape == end.shape == (2, 6)
    assert (start[mask == 0] < -1e3).all()
    mlm = build_bert("bert_2_128_2", head="mlm", **kw)
    assert mlm.mlm.decoder.weight is mlm.backbone.word_embed.weight
    pre = build_bert("bert_2_128_2", head="pretrain", **kw).eval()
    mlm_logits, nsp = pre(ids, types, mask, torch.tensor([[1, 2], [0, 3]]))
    assert mlm_logits.shape == (2, 2, 50) and nsp.shape == (2, 2)
    with pytest.raises(ValueError, match="head"):
        build_bert("bert_2_128_2", head="tagging")


def test_bert_hybridize_matches_eager(tiny_bert):
    tiny_bert.hybridize()
    try:
        with torch.no_grad():
            for batch, length in [(2, 8), (3, 5), (5, 12), (2, 20)]:
                args = bert_inputs(batch, length)
                ref = eager(tiny_bert, *args)
                got = tiny_bert(*args)
                for r, g in zip(ref, got):
                    assert r.shape == g.shape
                    assert (r - g).abs().max().item() < 1e-5
        assert tiny_bert.graph is not None
        # batch and sequence stayed dynamic: one graph served all sizes above
        assert sum(len(v) for v in tiny_bert._graphs.values()) == 1
    finally:
        tiny_bert.hybridize(False)


@pytest.mark.slow
def test_bert_export_runs_in_onnxruntime(tiny_bert, tmp_path):
    from toolkit.deploy import load

    meta = tiny_bert.export(tmp_path / "bert")
    assert [i["name"] for i in meta["inputs"]] == ["input_ids", "token_type_ids", "attention_mask"]
    assert meta["inputs"][0]["shape"] == ["batch", "seq"]
    runner = load(tmp_path / "bert")
    for batch, length in [(1, 4), (4, 15)]:
        args = bert_inputs(batch, length)
        with torch.no_grad():
            ref = eager(tiny_bert, *args)
        got = runner(*args)
        for r, g in zip(ref, got):
            assert (r - g).abs().max().item() < 1e-4


# --------------------------------------------------------------------------- Transformer
@pytest.fixture(scope="module")
def tiny_transformer():
    torch.manual_seed(0)
    return build_transformer("transformer_tiny", vocab_size=40, units=32, hidden_size=48).eval()


def mt_inputs(batch, src_len, tgt_len, vocab=40):
    src = torch.randint(4, vocab, (batch, src_len))
    valid = torch.full((batch,), src_len)
    valid[0] = max(1, src_len // 2)
    return src, valid, torch.randint(4, vocab, (batch, tgt_len))


def test_transformer_shared_embeddings_and_errors():
    m = build_transformer("transformer_tiny", vocab_size=30)
    assert m.src_embed is m.tgt_embed and m.out_proj.weight is m.tgt_embed.weight
    with pytest.raises(ValueError, match="shared_embed"):
        build_transformer("transformer_tiny", src_vocab_size=30, tgt_vocab_size=31)
    separate = build_transformer("transformer_tiny", src_vocab_size=30, tgt_vocab_size=31, shared_embed=False)
    assert separate(*mt_inputs(2, 5, 4, 30)).shape == (2, 4, 31)
    with pytest.raises(ValueError, match="non-empty"):
        m.init_states(torch.ones(2, 0, dtype=torch.long), torch.zeros(2, dtype=torch.long))


def test_transformer_ignores_source_padding(tiny_transformer):
    src, valid, tgt = mt_inputs(2, 7, 5)
    with torch.no_grad():
        a = tiny_transformer(src, valid, tgt)
        src2 = src.clone()
        src2[0, int(valid[0]):] = 9
        b = tiny_transformer(src2, valid, tgt)
    assert torch.allclose(a, b, atol=1e-5)


def test_transformer_causal(tiny_transformer):
    src, valid, tgt = mt_inputs(2, 6, 6)
    tgt2 = tgt.clone()
    tgt2[:, 4:] = 5
    with torch.no_grad():
        a, b = tiny_transformer(src, valid, tgt), tiny_transformer(src, valid, tgt2)
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-6)
    assert not torch.allclose(a[:, 4:], b[:, 4:])


@pytest.mark.parametrize("pre_norm", [False, True])
def test_incremental_decoding_equals_teacher_forcing(pre_norm):
    torch.manual_seed(1)
    model = build_transformer("transformer_tiny", vocab_size=40, units=32, hidden_size=48, pre_norm=pre_norm).eval()
    src, valid, tgt = mt_inputs(3, 6, 7)
    with torch.no_grad():
        ref = F.log_softmax(model(src, valid, tgt), dim=-1)
        states = model.init_states(src, valid)
        steps = []
        for t in range(tgt.shape[1]):
            log_probs, states = model.decode_step(tgt[:, t], states)
            steps.append(log_probs)
    assert (torch.stack(steps, 1) - ref).abs().max().item() < 1e-4


def test_searchers_drive_the_transformer(tiny_transformer):
    from toolkit.nlp.decoding import BeamSearchSampler, GreedySearch

    src, valid, _ = mt_inputs(3, 6, 1)
    bos, eos = 2, 3
    start = torch.full((3,), bos)
    greedy = GreedySearch(tiny_transformer.decode_step, eos_id=eos, max_length=8)
    g_samples, g_scores, g_len = greedy(start, tiny_transformer.init_states(src, valid))
    beam1 = BeamSearchSampler(1, tiny_transformer.decode_step, eos_id=eos, max_length=8)
    b_samples, _, b_len = beam1(start, tiny_transformer.init_states(src, valid))
    assert torch.equal(g_samples, b_samples) and torch.equal(g_len, b_len)
    # the greedy score is the model's own log-probability of the greedy sequence
    with torch.no_grad():
        seq = g_samples[:, 0]
        logp = F.log_softmax(tiny_transformer(src, valid, seq[:, :-1]), -1).gather(2, seq[:, 1:, None])[..., 0]
    for i in range(3):
        n = int(g_len[i, 0]) - 1
        assert abs(float(logp[i, :n].sum()) - float(g_scores[i, 0])) < 1e-3
    beam4 = BeamSearchSampler(4, tiny_transformer.decode_step, eos_id=eos, max_length=8)
    samples, scores, _ = beam4(start, tiny_transformer.init_states(src, valid))
    assert samples.shape[:2] == (3, 4)
    assert (scores[:, :-1] >= scores[:, 1:]).all()


def test_transformer_hybridize_matches_eager(tiny_transformer):
    tiny_transformer.hybridize()
    try:
        with torch.no_grad():
            for batch, s, t in [(2, 7, 5), (3, 4, 9), (6, 12, 3)]:
                args = mt_inputs(batch, s, t)
                assert (eager(tiny_transformer, *args) - tiny_transformer(*args)).abs().max().item() < 1e-5
        assert sum(len(v) for v in tiny_transformer._graphs.values()) == 1
    finally:
        tiny_transformer.hybridize(False)


@pytest.mark.slow
def test_transformer_export_runs_in_onnxruntime(tiny_transformer, tmp_path):
    from toolkit.deploy import load

    meta = tiny_transformer.export(tmp_path / "mt")
    assert meta["inputs"][0]["shape"] == ["batch", "src_seq"] and meta["inputs"][2]["shape"] == ["batch", "tgt_seq"]
    assert meta["eos_id"] == tiny_transformer.cfg.eos_id
    runner = load(tmp_path / "mt")
    args = mt_inputs(4, 11, 6)
    with torch.no_grad():
        ref = eager(tiny_transformer, *args)
    assert (runner(*args) - ref).abs().max().item() < 1e-4


# --------------------------------------------------------------------------- LSTM LMs
@pytest.mark.parametrize("name", ["standard_lstm_lm_200", "awd_lstm_lm_600"])
def test_lm_states_carry_over(name):
    torch.manual_seed(0)
    model = get_model(name, vocab_size=30).eval()
    x = torch.randint(0, 30, (2, 10))
    with torch.no_grad():
        full, _ = model(x)
        first, states = model(x[:, :6])
        second, _ = model(x[:, 6:], states)
    assert torch.allclose(torch.cat([first, second], 1), full, atol=1e-5)
    assert model.decoder.weight is model.embedding.weight


def test_awd_weight_drop_only_in_training():
    torch.manual_seed(0)
    model = get_model("awd_lstm_lm_600", vocab_size=30, weight_drop=0.9, dropout=0.0, drop_h=0.0, drop_i=0.0, drop_e=0.0)
    x = torch.randint(0, 30, (2, 5))
    model.train()
    a, _ = model(x)
    b, _ = model(x)
    assert not torch.allclose(a, b)
    a.sum().backward()
    assert model.rnns[0].weight_hh_l0.grad is not None
    model.eval()
    with torch.no_grad():
        c, _ = model(x)
        d, _ = model(x)
    assert torch.equal(c, d)


def test_lm_weights_round_trip(tmp_path):
    torch.manual_seed(0)
    model = get_model("standard_lstm_lm_200", vocab_size=25).eval()
    save_weights(model, tmp_path / "lm.safetensors")
    other = get_model("standard_lstm_lm_200", vocab_size=25).eval()
    load_weights(other, tmp_path / "lm.safetensors")
    x = torch.randint(0, 25, (2, 4))
    with torch.no_grad():
        assert torch.equal(model(x)[0], other(x)[0])
    assert other.decoder.weight is other.embedding.weight


def test_lm_bad_states():
    model = get_model("standard_lstm_lm_200", vocab_size=25)
    with pytest.raises(ValueError, match="states"):
        model(torch.zeros(1, 3, dtype=torch.long), model.begin_state(1)[:1])


# --------------------------------------------------------------------------- TextCNN
def test_textcnn_modes_and_short_input():
    torch.manual_seed(0)
    static = get_model("textcnn_static", vocab_size=40, embed_size=8, num_filters=3, num_classes=4)
    assert not static.embedding.weight.requires_grad
    multi = get_model("textcnn_multichannel", vocab_size=40, embed_size=8, num_filters=3).eval()
    vectors = torch.randn(40, 8)
    multi.load_embedding(vectors)
    assert torch.equal(multi.static_embedding.weight, vectors) and not multi.static_embedding.weight.requires_grad
    assert multi(torch.tensor([[5]])).shape == (1, 2)  # shorter than every kernel
    with pytest.raises(ValueError, match="shape"):
        multi.load_embedding(torch.randn(39, 8))
    with pytest.raises(ValueError, match="mode"):
        TextCNN(TextCNN.get_cfg().clone(mode="dynamic"))


def test_textcnn_hybridize():
    torch.manual_seed(0)
    model = get_model("textcnn_rand", vocab_size=40, embed_size=8, num_filters=3).eval().hybridize()
    with torch.no_grad():
        for b, length in [(2, 9), (3, 17), (4, 6)]:
            x = torch.randint(0, 40, (b, length))
            assert (eager(model, x) - model(x)).abs().max().item() < 1e-5


def test_lm_hybridize_recaptures_per_shape():
    torch.manual_seed(0)
    model = get_model("standard_lstm_lm_200", vocab_size=30).eval().hybridize()
    with torch.no_grad():
        for b, length in [(2, 5), (3, 8), (2, 5)]:
            x = torch.randint(0, 30, (b, length))
            assert (eager(model, x)[0] - model(x)[0]).abs().max().item() < 1e-5
    assert sum(len(v) for v in model._graphs.values()) == 2


@pytest.mark.filterwarnings("ignore:The tensor attributes")
def test_lm_hybridized_with_explicit_states_equals_eager():
    """Truncated BPTT: states passed back in (a list of (h, c) pairs, a container argument of forward)."""
    torch.manual_seed(0)
    model = get_model("standard_lstm_lm_200", vocab_size=30, dropout=0.0).train()
    ref = get_model("standard_lstm_lm_200", vocab_size=30, dropout=0.0).train()
    ref.load_state_dict(model.state_dict())
    model.hybridize()
    states, ref_states = model.begin_state(2), ref.begin_state(2)
    for step in range(3):
        x = torch.randint(0, 30, (2, 5))
        out, states = model(x, states)
        ref_out, ref_states = ref(x, ref_states)
        torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-5)
        for (h, c), (rh, rc) in zip(states, ref_states):
            torch.testing.assert_close(h, rh, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(c, rc, rtol=1e-5, atol=1e-5)
        for m, o in ((model, out), (ref, ref_out)):
            m.zero_grad()
            o.square().mean().backward()
        for (name, p), q in zip(model.named_parameters(), ref.parameters()):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=f"step {step}: {name}")
        states = [(h.detach(), c.detach()) for h, c in states]
        ref_states = [(h.detach(), c.detach()) for h, c in ref_states]
    assert model.graph is not None
    assert sum(len(v) for v in model._graphs.values()) == 1  # the same shapes: one capture
    with torch.no_grad():  # a tuple of tuples is a container too
        out, _ = model.eval()(x, tuple(states))
        torch.testing.assert_close(out, ref.eval()(x, tuple(ref_states))[0], rtol=1e-5, atol=1e-5)
