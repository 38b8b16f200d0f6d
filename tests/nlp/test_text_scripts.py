"""The text reference scripts at tiny scale: they train, log, evaluate, and resume exactly."""
from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]

NUMBERS = {"one": "uno", "two": "dos", "three": "tres", "four": "cuatro", "five": "cinco", "red": "rojo",
           "green": "verde", "house": "casa", "dog": "perro", "cat": "gato", "big": "grande", "small": "chico"}


def load_script(rel: str):
    path = ROOT / rel
    spec = importlib.util.spec_from_file_location(f"_script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_same_weights(dir_a: Path, dir_b: Path) -> None:
    """Tensor-for-tensor equality of the saved weights (the file bytes may order tied-name metadata differently)."""
    from safetensors.torch import load_file

    (a,) = dir_a.glob("*.safetensors")
    (b,) = dir_b.glob("*.safetensors")
    wa, wb = load_file(str(a)), load_file(str(b))
    assert sorted(wa) == sorted(wb)
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def mt_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("mt")
    rng = random.Random(0)
    words = sorted(NUMBERS)
    for split, n in (("train", 60), ("dev", 8), ("test", 8)):
        src, tgt = [], []
        for _ in range(n):
            sent = [rng.choice(words) for _ in range(rng.randint(2, 6))]
            src.append(" ".join(sent))
            tgt.append(" ".join(NUMBERS[w] for w in sent))
        (root / f"{split}.src").write_text("\n".join(src) + "\n")
        (root / f"{split}.tgt").write_text("\n".join(tgt) + "\n")
    return root


def mt_args(data: Path, save: Path, *extra: str) -> list[str]:
    return ["--model", "transformer_tiny", "--dataset", "files", "--data-dir", str(data), "--vocab-size", "40",
            "--num-epochs", "2", "--batch-size", "120", "--num-buckets", "3", "--warmup-steps", "4", "--lr", "2.0",
            "--beam-size", "2", "--log-interval", "1", "--save-dir", str(save), *extra]


@pytest.mark.slow
def test_mt_script_trains_translates_and_resumes_exactly(mt_data, tmp_path):
    script = load_script("scripts/machine_translation/train_transformer.py")
    full = script.main(mt_args(mt_data, tmp_path / "full"))
    assert 0.0 <= full["bleu"] <= 100.0 and full["details"]["test_sentences"] == 8
    log = read_log(tmp_path / "full" / "log.jsonl")
    train = [r for r in log if r["kind"] == "train"]
    assert train[0]["loss"] > train[-1]["loss"]  # it learns
    assert 0.0 <= train[0]["padding"] < 1.0 and train[0]["tokens_per_s"] > 0
    assert [r["epoch"] for r in log if r["kind"] == "eval"] == [0, 1]
    assert (tmp_path / "full" / "translations.test.txt").read_text().count("\n") == 8
    config = json.loads((tmp_path / "full" / "config.json").read_text())
    assert config["args"]["model"] == "transformer_tiny" and config["batches_per_epoch"] >= 2

    steps = full["steps"]
    part = tmp_path / "part"
    assert script.main(mt_args(mt_data, part, "--stop-after-steps", str(steps // 2 + 1))) == {}
    resumed = script.main(mt_args(mt_data, part, "--resume-from", str(part / "checkpoint-last.pt")))
    assert resumed["steps"] == steps
    assert_same_weights(tmp_path / "full", part)  # exact resume, mid-epoch
    assert resumed["bleu"] == full["bleu"]


@pytest.fixture(scope="module")
def lm_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    rng = random.Random(1)
    words = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "house", "and", "big"]
    for split, n in (("train", 80), ("valid", 15), ("test", 15)):
        lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 9))) for _ in range(n)]
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def lm_args(data: Path, save: Path, *extra: str) -> list[str]:
    return ["--model", "standard_lstm_lm_200", "--dataset", "files", "--data-dir", str(data), "--epochs", "2",
            "--batch-size", "4", "--bptt", "10", "--eval-batch-size", "2", "--lr", "5", "--log-interval", "2",
            "--save-dir", str(save), *extra]


def test_lm_script_reports_perplexity_and_resumes_exactly(lm_data, tmp_path):
    script = load_script("scripts/language_model/train_lm.py")
    full = script.main(lm_args(lm_data, tmp_path / "full"))
    vocab_size = full["details"]["vocab_size"]
    assert 1.0 < full["perplexity"] < vocab_size  # better than uniform over the vocabulary
    part = tmp_path / "part"
    script.main(lm_args(lm_data, part, "--stop-after-steps", "5"))
    resumed = script.main(lm_args(lm_data, part, "--resume-from", str(part / "checkpoint-last.pt")))
    assert_same_weights(tmp_path / "full", part)
    assert resumed["perplexity"] == full["perplexity"]


def test_textcnn_script_on_gensim_sentences(tmp_path):
    pytest.importorskip("gensim")
    script = load_script("scripts/text_classification/train_textcnn.py")
    metrics = script.main(["--dataset", "gensim", "--num-epochs", "2", "--embed-size", "16", "--batch-size", "20",
                           "--save-dir", str(tmp_path), "--hybridize"])
    assert metrics["test_samples"] == 40 and 0.0 <= metrics["accuracy"] <= 1.0
    assert {"f1", "mcc"} <= set(metrics)
    assert any(r["kind"] == "eval" for r in read_log(tmp_path / "log.jsonl"))


def _bert_vocab(path: Path) -> Path:
    words = sorted(set("good bad great awful movie film was is the a not very and it fun boring plot "
                       "who wrote paris london city capital of france england what where".split()))
    path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, "?", ".", ","]) + "\n")
    return path


def test_bert_classifier_script_resumes_exactly(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rng = random.Random(2)
    pos, neg = ["good movie", "great film", "very fun plot"], ["bad movie", "awful film", "boring plot"]
    for split, n in (("train", 24), ("dev", 6)):
        rows = [f"{rng.choice(pos)}\t1" if i % 2 else f"{rng.choice(neg)}\t0" for i in range(n)]
        (data / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    vocab = _bert_vocab(tmp_path / "vocab.txt")
    script = load_script("scripts/bert/finetune_classifier.py")

    def args(save, *extra):
        return ["--model", "bert_2_128_2", "--vocab-file", str(vocab), "--dataset", "tsv", "--data-dir", str(data),
                "--num-epochs", "2", "--batch-size", "8", "--lr", "1e-3", "--log-interval", "1",
                "--save-dir", str(save), *extra]

    full = script.main(args(tmp_path / "full"))
    assert full["test_samples"] == 6 and "mcc" in full
    script.main(args(tmp_path / "part", "--stop-after-steps", "4"))
    resumed = script.main(args(tmp_path / "part", "--resume-from", str(tmp_path / "part" / "checkpoint-last.pt")))
    assert resumed["steps"] == full["steps"]
    assert_same_weights(tmp_path / "full", tmp_path / "part")


def test_squad_script_from_hf_checkpoint(tmp_path):
    transformers = pytest.importorskip("transformers")
    vocab = _bert_vocab(tmp_path / "vocab.txt")
    ckpt = tmp_path / "hf"
    cfg = transformers.BertConfig(vocab_size=len(vocab.read_text().split()), hidden_size=32, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=40, max_position_embeddings=64)
    transformers.BertModel(cfg).save_pretrained(ckpt)
    (ckpt / "vocab.txt").write_text(vocab.read_text())
    contexts = [("paris is the capital of france .", "who", "paris"),
                ("london is the capital of england .", "what is the capital of england ?", "london"),
                ("it was a good movie and the plot was fun .", "what was fun ?", "the plot")]
    squad = tmp_path / "squad"
    squad.mkdir()
    for split in ("train", "dev"):
        data = [{"title": "t", "paragraphs": [{"context": c, "qas": [
            {"id": f"{split}{i}", "question": q, "answers": [{"text": a, "answer_start": c.index(a)}]}]}]}
            for i, (c, q, a) in enumerate(contexts)]
        (squad / f"{split}-v1.1.json").write_text(json.dumps({"version": "1.1", "data": data}))
    script = load_script("scripts/bert/finetune_squad.py")
    metrics = script.main(["--model-dir", str(ckpt), "--data-dir", str(squad), "--num-epochs", "3",
                           "--batch-size", "2", "--lr", "5e-3", "--max-seq-length", "16", "--doc-stride", "4",
                           "--max-query-length", "6", "--save-dir", str(tmp_path / "run")])
    assert 0.0 <= metrics["exact_match"] <= metrics["f1"] <= 100.0
    predictions = json.loads((tmp_path / "run" / "predictions.json").read_text())
    assert set(predictions) == {"dev0", "dev1", "dev2"}
    for qid, (c, *_rest) in zip(sorted(predictions), contexts):
        assert predictions[qid] in c  # every answer is a span of its context


@pytest.mark.slow
def test_translation_tutorial_runs_tiny(tmp_path):
    from toolkit.data import MissingDatasetError
    from toolkit.nlp.datasets.bible import load_bible_pairs

    try:
        load_bible_pairs("test")
    except MissingDatasetError as err:
        pytest.skip(f"Bible corpus not available: {err}")
    tutorial = load_script("tutorials/text_translation.py")
    out = tutorial.main(["--tiny", "--workdir", str(tmp_path)])
    assert len(out["translations"]) == 8 and 0.0 <= out["bleu"] <= 100.0
    assert sum(out["losses"][-3:]) < sum(out["losses"][:3])  # the model learns something
    assert (tmp_path / "tokenizer").is_dir()


@pytest.mark.slow
def test_lm_script_under_torchrun(lm_data, tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           str(ROOT / "scripts/language_model/train_lm.py"), *lm_args(lm_data, tmp_path, "--epochs", "1")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["hardware"].endswith("x2 processes") and metrics["perplexity"] > 1.0
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["env"]["hardware"].endswith("x2 processes")
