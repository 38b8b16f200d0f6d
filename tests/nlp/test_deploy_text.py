"""Text models through export / predict: the Python side of the text deployment contract.

The exports come from tests/deploy/_text_fixtures.py (real tokenizers trained on the Bible,
tiny seeded models), the same files the C++ and Java runner tests use.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy"))
import _text_fixtures as fx  # noqa: E402

from toolkit.deploy.cli import main  # noqa: E402
from toolkit.deploy.cpu import u8s8_saturates  # noqa: E402
from toolkit.deploy.predict import predict  # noqa: E402
from toolkit.deploy.runtime import ExportError  # noqa: E402
from toolkit.nlp.deploy import (  # noqa: E402
    decode_limit,
    encode_classification,
    encode_source,
    export_text,
    greedy_translate,
    load_deploy_tokenizer,
    read_text_inputs,
)
from toolkit.nlp.tokenizers import load_tokenizer  # noqa: E402

RTOL = 1e-4


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    """Both fixture exports and the tricky input file, built once for the module (read-only)."""
    root = tmp_path_factory.mktemp("text")
    return {
        "bert": fx.export_bert_classifier(root),
        "transformer": fx.export_transformer(root),
        "inputs": fx.text_inputs(root),
        "root": root,
    }


def _copy(prefix: Path, dest: Path) -> Path:
    """Copy an export (graph, metadata, tokenizer file) to ``dest`` for a test that breaks it."""
    for f in prefix.parent.glob(prefix.name + ".*"):
        shutil.copy(f, dest / f.name)
    return dest / prefix.name


def _meta(prefix: Path) -> dict:
    return json.loads(Path(f"{prefix}.json").read_text())


def _close(a, b, rtol=RTOL) -> None:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    # relative to each value, with a floor of 1e-5 of the row's scale for values near zero
    np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-5 * max(1.0, float(np.abs(b).max(initial=0.0))))


# ------------------------------------------------------------------------------------ metadata
def test_metadata_and_files(exports):
    for name, kind, suffix in (("bert", "wordpiece", ".vocab.txt"), ("transformer", "sentencepiece", ".spm.model")):
        prefix = exports[name]
        meta = _meta(prefix)
        tok = meta["tokenizer"]
        path = prefix.parent / tok["file"]
        assert tok["type"] == kind and tok["file"] == prefix.name + suffix
        assert tok["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        # the graph's sha256 is still the one of the file on disk
        assert meta["sha256"] == hashlib.sha256(Path(f"{prefix}.onnx").read_bytes()).hexdigest()
        assert isinstance(tok["lowercase"], bool) and tok["lowercase"] is True
        for key in ("unk_id", "pad_id", "cls_id", "sep_id", "bos_id", "eos_id", "max_length"):
            assert key in tok
    bert = _meta(exports["bert"])
    tok = bert["tokenizer"]
    assert bert["task"] == "text_classification" and bert["classes"] == list(fx.BERT_CLASSES)
    assert "decoding" not in bert
    assert tok["strip_accents"] is True  # None resolved to the value of lowercase
    assert tok["tokenize_chinese_chars"] is True and tok["clean_text"] is True
    assert tok["max_input_chars_per_word"] == 100 and tok["max_length"] == 32
    saved = load_tokenizer(exports["root"] / "bert-tokenizer")
    lines = (exports["bert"].parent / tok["file"]).read_bytes().decode("utf-8").split("\n")
    assert lines[-1] == "" and lines[:-1] == saved.vocab.idx_to_token  # id = 0-based line number, '\n' ends
    v = saved.vocab
    assert (tok["unk_id"], tok["pad_id"], tok["cls_id"], tok["sep_id"], tok["bos_id"], tok["eos_id"]) == (
        v.unk_id, v.pad_id, v.cls_id, v.sep_id, None, None)

    mt = _meta(exports["transformer"])
    tok = mt["tokenizer"]
    assert mt["task"] == "translation"
    assert mt["decoding"] == {"strategy": "greedy", "max_len_a": 1.2, "max_len_b": 10}
    saved = load_tokenizer(exports["root"] / "transformer-tokenizer")
    spm_bytes = (exports["root"] / "transformer-tokenizer" / "spm.model").read_bytes()
    assert (exports["transformer"].parent / tok["file"]).read_bytes() == spm_bytes  # byte for byte
    v = saved.vocab
    assert (tok["unk_id"], tok["pad_id"], tok["bos_id"], tok["eos_id"], tok["cls_id"], tok["sep_id"]) == (
        v.unk_id, v.pad_id, v.bos_id, v.eos_id, None, None)
    assert tok["max_length"] == fx.EXPORT_MAX_LENGTH == 24
    assert mt["outputs"][0]["shape"] == ["batch", "tgt_seq", len(v)]


def test_read_text_inputs(exports, tmp_path):
    assert read_text_inputs([exports["inputs"]]) == fx.expected_inputs()
    assert len(fx.expected_inputs()) == 12
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes("a\r\n\r\n b \r\nc\u2028d\n".encode("utf-8"))
    # only "\n" separates lines; one trailing "\r" goes; U+2028 stays inside the line
    assert read_text_inputs([crlf, exports["inputs"]])[:3] == ["a", " b ", "c\u2028d"]


def test_token_ids_equal_the_toolkit_tokenizers(exports):
    lines = fx.expected_inputs()
    wp, spec = load_deploy_tokenizer(_meta(exports["bert"]), exports["bert"].parent)
    saved = load_tokenizer(exports["root"] / "bert-tokenizer")
    for line in lines:
        ids = encode_classification(wp, spec, line)
        assert ids == saved.encode(line, max_length=spec["max_length"]), line
        assert ids[0] == spec["cls_id"] and ids[-1] == spec["sep_id"] and len(ids) <= spec["max_length"]
    long_line = max(lines, key=len)
    assert len(encode_classification(wp, spec, long_line)) == spec["max_length"]
    with_sep = next(line for line in lines if "[SEP]" in line)
    assert spec["sep_id"] in encode_classification(wp, spec, with_sep)[1:-1]  # matched as the special token

    sp, spec = load_deploy_tokenizer(_meta(exports["transformer"]), exports["transformer"].parent)
    saved = load_tokenizer(exports["root"] / "transformer-tokenizer")
    for line in lines:
        src = encode_source(sp, spec, line)
        assert src == saved.encode(line)[: spec["max_length"] - 1] + [spec["eos_id"]], line
    assert len(encode_source(sp, spec, long_line)) == spec["max_length"]
    greek = next(line for line in lines if "ΟΔΥΣΣΕΥΣ" in line)
    assert sp.encode(greek) == sp.encode(greek.lower()) == saved.processor.encode("οδυσσευς ο πολύτροπος και σοφος")


# ------------------------------------------------------------------------------------ classification
@pytest.mark.slow
def test_classification_eager_onnxruntime_openvino(exports):
    pytest.importorskip("openvino")
    prefix, inputs = exports["bert"], exports["inputs"]
    ort = predict(prefix, [inputs], k=5, with_logits=True)
    ov = predict(prefix, [inputs], k=5, with_logits=True, runtime="openvino")
    model = fx.load_checkpoint(exports["root"] / "bert-checkpoint.pt")
    wp, spec = load_deploy_tokenizer(_meta(prefix), prefix.parent)
    lines = fx.expected_inputs()
    assert [r["input"] for r in ort] == [r["input"] for r in ov] == lines
    for line, a, b in zip(lines, ort, ov):
        ids = torch.tensor([encode_classification(wp, spec, line)])
        with torch.no_grad():
            eager = model(ids, torch.zeros_like(ids), torch.ones_like(ids))[0].double().numpy()
        _close(a["logits"], eager)
        _close(b["logits"], eager)
        order = [int(i) for i in np.argsort(-eager, kind="stable")[:5]]
        assert [t["index"] for t in a["topk"]] == [t["index"] for t in b["topk"]] == order
        assert [t["label"] for t in a["topk"]] == [fx.BERT_CLASSES[i] for i in order]
        probs = np.exp(eager - eager.max()) / np.exp(eager - eager.max()).sum()
        _close([t["prob"] for t in a["topk"]], probs[order])
        assert abs(sum(t["prob"] for t in a["topk"]) - 1.0) < 1e-9  # all 3 classes: a full softmax
    # the model learnt something: plain English and plain Spanish lines come out as such
    assert ort[lines.index(next(s for s in lines if s.startswith("Y dijo Dios")))]["topk"][0]["label"] == "spanish"


# ------------------------------------------------------------------------------------ translation
def _eager_step(model):
    def step(src, valid, tgt):
        with torch.no_grad():
            return model(torch.from_numpy(src), torch.from_numpy(valid), torch.from_numpy(tgt)).numpy()

    return step


@pytest.mark.slow
def test_translation_eager_onnxruntime_openvino(exports):
    pytest.importorskip("openvino")
    from toolkit.nlp.decoding import GreedySearch

    prefix, inputs = exports["transformer"], exports["inputs"]
    ort = predict(prefix, [inputs], with_logits=True)
    ov = predict(prefix, [inputs], with_logits=True, runtime="openvino")
    meta = _meta(prefix)
    sp, spec = load_deploy_tokenizer(meta, prefix.parent)
    model = fx.load_checkpoint(exports["root"] / "transformer-checkpoint.pt")
    eos, bos = spec["eos_id"], spec["bos_id"]
    stopped = 0
    for line, a, b in zip(fx.expected_inputs(), ort, ov):
        assert a["input"] == b["input"] == line
        assert a["ids"] == b["ids"], line
        _close(a["logprob"], b["logprob"])
        _close(a["logits"], b["logits"])
        assert a["output"] == b["output"] == sp.decode(a["ids"])
        assert eos not in a["ids"]
        src = encode_source(sp, spec, line)
        limit = decode_limit(spec, meta["decoding"], len(src))
        assert limit == min(int(1.2 * len(src) + 10), 23)
        # the same loop over the eager model
        ids, logprob, first = greedy_translate(_eager_step(model), src, bos, eos, limit)
        assert ids == a["ids"]
        _close(logprob, a["logprob"])
        _close(first, a["logits"])
        # and the model's own incremental decoder (cached states, no graph re-run)
        src_t = torch.tensor([src])
        states = model.init_states(src_t, torch.tensor([len(src)]))
        samples, scores, lengths = GreedySearch(model.decode_step, eos_id=eos, max_length=limit)(
            torch.tensor([bos]), states)
        n = int(lengths[0, 0])
        own = samples[0, 0, 1:n].tolist()
        if own and own[-1] == eos:
            own = own[:-1]
            stopped += 1
        else:
            assert len(a["ids"]) == limit  # ran to the length limit
        assert own == a["ids"], line
        _close(float(scores[0, 0]), a["logprob"])
    assert 0 < stopped < len(ort)  # both ways of ending (eos, length limit) are exercised


# ------------------------------------------------------------------------------------ CLI
@pytest.mark.slow
def test_cli_export_and_predict(exports, tmp_path, capsys):
    root = exports["root"]
    for name in ("bert", "transformer"):
        out = tmp_path / name
        fixture = _meta(exports[name])
        rc = main(["export", str(root / f"{name}-checkpoint.pt"), "--tokenizer", str(root / f"{name}-tokenizer"),
                   "--out", str(out), "--max-length", str(fixture["tokenizer"]["max_length"])])
        assert rc == 0, capsys.readouterr().err
        capsys.readouterr()
        written = _meta(out)
        assert written["tokenizer"] == fixture["tokenizer"] and written.get("decoding") == fixture.get("decoding")
        assert written["model"] == fixture["model"] and written["sha256"] == fixture["sha256"]  # the same graph
        assert main(["predict", str(out), str(exports["inputs"]), "--json", "--topk", "2", "--logits"]) == 0
        got = json.loads(capsys.readouterr().out)
        want = predict(exports[name], [exports["inputs"]], k=2, with_logits=True)
        assert [g["input"] for g in got] == fx.expected_inputs()
        for g, w in zip(got, want):
            assert g.keys() == w.keys()
            if name == "bert":
                assert set(g) == {"input", "topk", "logits"} and len(g["topk"]) == 2
                assert [t["index"] for t in g["topk"]] == [t["index"] for t in w["topk"]]
            else:
                assert set(g) == {"input", "output", "ids", "logprob", "logits"}
                assert g["ids"] == w["ids"] and g["output"] == w["output"]
            _close(g["logits"], w["logits"])
    assert main(["predict", str(tmp_path / "transformer"), str(exports["inputs"])]) == 0
    text = capsys.readouterr().out.splitlines()
    assert len(text) == 12 and text[0].startswith(fx.expected_inputs()[0] + "\t=> ")
    assert main(["predict", str(tmp_path / "bert"), str(exports["inputs"]), "--topk", "1"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(fx.expected_inputs()[0] + ":  ") and first.count("(") == 1


# ------------------------------------------------------------------------------------ errors
def _cli_error(capsys, *argv) -> str:
    assert main(list(map(str, argv))) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("toolkit: error: "), err
    return err[0]


@pytest.mark.parametrize("name", ["bert", "transformer"])
def test_bad_tokenizer(exports, tmp_path, capsys, name):
    prefix = _copy(exports[name], tmp_path)
    meta = _meta(prefix)
    tok_file = prefix.parent / meta["tokenizer"]["file"]
    data = tok_file.read_bytes()
    tok_file.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one flipped bit
    assert "corrupt" in _cli_error(capsys, "predict", prefix, exports["inputs"], "--json")
    tok_file.unlink()
    assert "not found" in _cli_error(capsys, "predict", prefix, exports["inputs"])
    tok_file.write_bytes(data)
    assert predict(prefix, [exports["inputs"]])  # restored: works again
    path = Path(f"{prefix}.json")
    for change, words in (
        (lambda m: m.pop("tokenizer"), 'no "tokenizer"'),
        (lambda m: m["tokenizer"].update(type="bpe"), "unknown tokenizer type 'bpe'"),
        (lambda m: m["tokenizer"].update(sha256="0" * 64), "corrupt"),
        (lambda m: m["tokenizer"].update(file="../" + m["tokenizer"]["file"]), "must be a file name beside"),
    ):
        broken = json.loads(json.dumps(meta))
        change(broken)
        path.write_text(json.dumps(broken))
        assert words in _cli_error(capsys, "predict", prefix, exports["inputs"])
        with pytest.raises(ExportError, match=words.replace("(", r"\(")):
            predict(prefix, [exports["inputs"]])


def test_bad_inputs(exports, tmp_path, capsys):
    prefix = exports["bert"]
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("año\n".encode("latin-1"))
    assert "not valid UTF-8" in _cli_error(capsys, "predict", prefix, latin1)
    assert "cannot read input file" in _cli_error(capsys, "predict", prefix, tmp_path / "missing.txt")
    assert "cannot read input file" in _cli_error(capsys, "predict", prefix, tmp_path)  # a folder
    blank = tmp_path / "blank.txt"
    blank.write_bytes(b"\n  \t \r\n\n")
    assert "no non-empty line" in _cli_error(capsys, "predict", exports["transformer"], exports["inputs"], blank)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ExportError, match="no non-empty line"):
        predict(prefix, [empty])


def test_text_task_without_toolkit_nlp(exports, monkeypatch):
    """toolkit-core alone: a text export says which distribution to install."""
    import importlib

    P = importlib.import_module("toolkit.deploy.predict")  # the package re-exports a function of that name

    monkeypatch.setattr(P, "PREDICTORS", {k: v for k, v in P.PREDICTORS.items() if k == "classification"})
    monkeypatch.setitem(sys.modules, "toolkit.nlp.deploy", None)  # import raises ImportError
    with pytest.raises(ExportError, match="pip install toolkit-nlp"):
        predict(exports["transformer"], [exports["inputs"]])


def test_export_text_rejects(exports, tmp_path):
    saved = load_tokenizer(exports["root"] / "bert-tokenizer")
    model = fx.load_checkpoint(exports["root"] / "bert-checkpoint.pt")
    with pytest.raises(ValueError, match="exceeds the model's max_length 64"):
        export_text(model, saved, tmp_path / "b", max_length=65)
    with pytest.raises(ValueError, match="max_length must be"):
        export_text(model, saved, tmp_path / "b", max_length=2)
    from toolkit.nlp.models.bert import build_bert

    small = build_bert("bert_2_128_2", head="classification", num_classes=2, vocab_size=100, units=16,
                       hidden_size=16, num_layers=1, num_heads=1)
    with pytest.raises(ValueError, match="tokenizer has .* tokens but the model's vocabulary only 100"):
        export_text(small, saved, tmp_path / "b")
    from toolkit.nlp.tokenizers import BasicTokenizer

    with pytest.raises(TypeError, match="BertWordPieceTokenizer or a SentencepieceTokenizer"):
        export_text(model, BasicTokenizer(), tmp_path / "b")
    bare = build_bert("bert_2_128_2", vocab_size=len(saved), units=16, hidden_size=16, num_layers=1, num_heads=1)
    with pytest.raises(ValueError, match="serves tasks"):
        export_text(bare, saved, tmp_path / "b")
    assert not list(tmp_path.iterdir())  # nothing written by a refused export


# ------------------------------------------------------------------------------------ int8
@pytest.mark.slow
def test_int8_dynamic_keeps_the_tokenizer(exports, tmp_path, capsys):
    """``toolkit quantize`` of a text export: dynamic int8 (token inputs), tokenizer copied, predict works."""
    pytest.importorskip("openvino")
    for name in ("bert", "transformer"):
        out = tmp_path / "int8" / f"{name}-q"  # another folder: the int8 export must stand on its own
        assert main(["quantize", str(exports[name]), "--out", str(out), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["method"] == "dynamic"
        fp32, int8 = _meta(exports[name]), _meta(out)
        suffix = fp32["tokenizer"]["file"][len(name):]
        assert int8["tokenizer"] == {**fp32["tokenizer"], "file": out.name + suffix}
        assert (out.parent / int8["tokenizer"]["file"]).read_bytes() == (
            exports[name].parent / fp32["tokenizer"]["file"]).read_bytes()
        assert int8.get("decoding") == fp32.get("decoding") and int8["quantization"]["method"] == "dynamic"
        ref = predict(exports[name], [exports["inputs"]], with_logits=True)
        got = predict(out, [exports["inputs"]], with_logits=True)
        got_ov = predict(out, [exports["inputs"]], with_logits=True, runtime="openvino")
        assert [g["input"] for g in got] == [g["input"] for g in got_ov] == fx.expected_inputs()
        assert int8["quantization"]["scheme"] == ("reduced-range" if u8s8_saturates() else "full-range")
        # int8 moves the logits (max |int8 - fp32| / max |fp32| over the lines, first decoding step for the
        # Transformer; benchmarks/int8_schemes.py, model_zoo_logs/quantization/int8_schemes.md) by, BERT / Transformer:
        #   Intel Xeon, AVX-512 VNNI (auto = full-range, 8-bit weights): 1.55% / 4.86%
        #   AMD EPYC-Rome, AVX2 without VNNI, emulated by QEMU (auto = reduced-range, 7-bit): 1.28% / 4.72%, the
        #   same as natively: 7-bit sums never saturate, so these graphs compute the same integers on both CPUs
        #   that CPU with full-range weights: 6.52% / 13.15% (issue 10 measured 6.4% for BERT on a real AMD EPYC):
        #   its u8 x s8 kernels saturate int16 sums, which auto avoids (see toolkit/deploy/cpu.py)
        # onnxruntime and OpenVINO run the int8 graph within 0.2% of each other (Intel); OpenVINO under the same
        # emulation gives BERT 1.28% (reduced-range) like onnxruntime, so the 1% bound holds there too
        bound = 0.05 if name == "bert" else 0.1
        for r, g, v in zip(ref, got, got_ov):
            scale = max(abs(x) for x in r["logits"])
            assert max(abs(a - b) for a, b in zip(r["logits"], g["logits"])) < bound * scale
            assert max(abs(a - b) for a, b in zip(g["logits"], v["logits"])) < 0.01 * scale
            if name == "bert":
                assert g["topk"][0]["index"] == r["topk"][0]["index"] == v["topk"][0]["index"]
            else:
                assert g["output"] == load_deploy_tokenizer(int8, out.parent)[0].decode(g["ids"])


@pytest.mark.slow
def test_int8_text_on_an_emulated_avx2_cpu(exports, tmp_path):
    """The int8 text graphs auto picks on an AMD EPYC (AVX2, no VNNI), run there under QEMU."""
    from toolkit.deploy import quantize
    from toolkit.deploy._emulation import qemu, record_calls, run_emulated, save_calls

    if qemu() is None:
        pytest.skip("qemu-x86_64 is not installed (tools/setup.sh installs Debian's qemu-user)")
    cases = []
    for name in ("bert", "transformer"):
        calls = record_calls(exports[name], lambda: predict(exports[name], [exports["inputs"]]))
        if name == "transformer":  # first decoding step of each line (the logits the test above compares)
            calls = [c for c in calls if c[1].shape[1] == 1]
        case = save_calls(tmp_path, name, calls)
        quantize(exports[name], out=tmp_path / f"{name}-r", scheme="reduced-range", latency_repeats=1)
        cases.append({**case, "kind": "rows" if name == "bert" else "first_step", "graphs": {"auto": f"{name}-r.onnx"}})
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    emulated = run_emulated(tmp_path, timeout=120)  # raises unless onnxruntime there clips int16 sums
    assert emulated["auto_scheme"] == "reduced-range"
    drift = {k: v["max_rel_drift"] for k, v in emulated["results"].items()}
    assert emulated["results"]["bert/auto"]["rows"] == emulated["results"]["transformer/auto"]["rows"] == 12
    # bounds and measured numbers: test_int8_dynamic_keeps_the_tokenizer
    assert drift["bert/auto"] < 0.05 and drift["transformer/auto"] < 0.1, drift


@pytest.mark.slow
def test_cli_export_bare_weights_sized_by_the_tokenizer(exports, tmp_path, capsys):
    """A training script's bare safetensors + its tokenizer folder: the vocabulary and ids come from the tokenizer."""
    from toolkit.zoo import get_model, save_weights

    tok_dir = exports["root"] / "transformer-tokenizer"
    v = load_tokenizer(tok_dir).vocab
    torch.manual_seed(1)
    model = get_model("transformer_tiny", vocab_size=len(v), pad_id=v.pad_id, bos_id=v.bos_id, eos_id=v.eos_id).eval()
    weights = tmp_path / "transformer_tiny.safetensors"
    save_weights(model, weights)
    out = tmp_path / "mt"
    assert main(["export", str(weights), "--model", "transformer_tiny", "--tokenizer", str(tok_dir),
                 "--out", str(out), "--max-length", "16"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    meta = _meta(out)
    assert meta["tokenizer"]["max_length"] == 16 and meta["tgt_vocab_size"] == len(v)
    line = fx.expected_inputs()[0]
    one = tmp_path / "one.txt"
    one.write_text(line + "\n", encoding="utf-8")
    assert main(["predict", str(out), str(one), "--json"]) == 0
    (got,) = json.loads(capsys.readouterr().out)
    sp, spec = load_deploy_tokenizer(meta, tmp_path)
    src = encode_source(sp, spec, line)
    assert len(src) == 16  # truncated to max_length, eos last
    ids, logprob, _ = greedy_translate(_eager_step(model), src, v.bos_id, v.eos_id, decode_limit(spec, meta["decoding"], 16))
    assert got["ids"] == ids and got["input"] == line
    _close(got["logprob"], logprob)
    # without the tokenizer's sizes the default 32000-token model would not fit the weights
    assert "does not fit" in _cli_error(capsys, "export", weights, "--model", "transformer_tiny", "--out", tmp_path / "x")


@pytest.mark.slow
def test_tutorial_text_section(tmp_path):
    import subprocess

    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(repo / "tutorials" / "deploy_export_quantize.py"), "--task", "text", "--skip-native",
         "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "onnxruntime and OpenVINO give the same ids on 3/3 lines" in done.stdout
    assert (tmp_path / "transformer_tiny-int8.spm.model").is_file()
