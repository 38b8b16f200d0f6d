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
