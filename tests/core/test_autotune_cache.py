"""Autotune decisions on disk (a second process measures nothing) and forward-only tuning of eval graphs."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from toolkit.nn import autotune

from .test_autotune import Bottleneck

REPO = Path(__file__).resolve().parents[2]

# One process: hybridize a Bottleneck, run one training call; report what was measured and chosen.
_CHILD = textwrap.dedent("""
    import json, sys
    import torch
    torch.set_num_threads(1)
    from toolkit.nn import HybridBlock, autotune
    from tests.core.test_autotune import Bottleneck

    measured, captures = [], []
    real_measure, real_capture = autotune._measure, HybridBlock._capture_as_given
    def counting_measure(fns, *a, **k):
        measured.append(sorted(fns))
        return real_measure(fns, *a, **k)
    def counting_capture(self, *a, **k):
        captures.append(1)
        return real_capture(self, *a, **k)
    autotune._measure = counting_measure
    HybridBlock._capture_as_given = counting_capture

    torch.manual_seed(0)
    net = Bottleneck().train().hybridize()
    net(torch.randn(2, 6, 9, 9)).sum().backward()
    print(json.dumps({"measured": len(measured), "captures": len(captures),
                      "kernels": [[c.node, c.kernel] for c in net.conv_kernels],
                      "layout": net.graph_memory_format}))
""")


def _run_child(home: Path, **env: str) -> dict:
    environ = dict(os.environ, TOOLKIT_HOME=str(home), PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", **env)
    proc = subprocess.run([sys.executable, "-c", _CHILD], cwd=REPO, env=environ, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(autouse=True)
def fresh_cache():
    autotune.clear_cache()
    yield
    autotune.clear_cache()


def test_second_process_measures_nothing_and_picks_the_same_kernels(tmp_path):
    first = _run_child(tmp_path)
    files = list((tmp_path / "autotune").glob("v*.json"))
    assert len(files) == 1
    data = json.loads(files[0].read_text())
    assert data["version"] == autotune.CACHE_VERSION and data["machine"]["threads"] == 1
    assert first["measured"] > 0 and first["captures"] == 2  # kernels of both graphs, then the layout race

    second = _run_child(tmp_path)
    assert second["measured"] == 0, "a fresh process with the decisions on disk must not time anything"
    assert second["captures"] == 1, "the graph that lost the layout race must not be captured again"
    assert second["kernels"] == first["kernels"] and second["layout"] == first["layout"]


def test_disabled_by_environment(tmp_path):
    result = _run_child(tmp_path, TOOLKIT_AUTOTUNE_CACHE="0")
    assert result["measured"] > 0
    assert not (tmp_path / "autotune").exists()


def _fake_measure(monkeypatch) -> list[dict]:
    calls: list[dict] = []

    def fake(fns, budget_s=autotune.BUDGET_S):
        calls.append(dict(fns))
        winner = "gemm" if "aten" in fns else "channels_last"  # a convolution's kernels, or whole graphs
        return {name: 0.5 if name == winner else 1.0 for name in fns}

    monkeypatch.setattr(autotune, "_measure", fake)
    return calls


def _decisions_on_disk() -> dict:
    cache = autotune.disk_cache()
    return json.loads(cache.path.read_text())["decisions"]


def test_decisions_are_read_back_in_process(monkeypatch):
    calls = _fake_measure(monkeypatch)
    x = torch.randn(2, 6, 9, 9)
    first = Bottleneck().train().hybridize()
    first(x)
    assert calls and _decisions_on_disk()
    kernels = [(c.node, c.kernel) for c in first.conv_kernels]
    autotune._cache.clear()  # what a new process starts with: the disk only
    autotune._disk.clear()
    calls.clear()
    second = Bottleneck().train().hybridize()
    second(x)
    assert calls == []
    assert [(c.node, c.kernel) for c in second.conv_kernels] == kernels
    assert second.graph_memory_format == first.graph_memory_format == "channels_last"


@pytest.mark.parametrize("content", ["{not json", json.dumps({"version": 999, "machine": {}, "decisions": {}}),
                                     json.dumps([1, 2])])
def test_corrupt_or_foreign_file_is_ignored_with_a_warning(monkeypatch, content):
    calls = _fake_measure(monkeypatch)
    path = autotune.disk_cache().path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    autotune._disk.clear()
    net = Bottleneck().train().hybridize()
    with pytest.warns(UserWarning, match="autotune cache"):
        net(torch.randn(2, 6, 9, 9))
    assert calls, "decisions from an unusable file must be measured again"
    data = json.loads(path.read_text())  # and the file is rewritten whole
    assert data["version"] == autotune.CACHE_VERSION and data["decisions"]


def test_fingerprint_names_machine_torch_and_threads():
    fp = autotune.machine_fingerprint()
    assert fp["torch"] == torch.__version__ and fp["threads"] == torch.get_num_threads() and fp["cpu"]
    assert set(fp["isa"]) <= set(autotune._ISA_FLAGS)
    assert _path_at_threads(1) != _path_at_threads(2)  # one file per thread count


def _path_at_threads(n: int) -> Path:
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(n)
        return autotune.disk_cache().path
    finally:
        torch.set_num_threads(old)


def _workload_kinds(calls: list[dict]) -> set[str]:
    """"forward" or "forward_backward" for each convolution measurement (not the race of whole graphs)."""
    return {fn.__name__ for fns in calls if "aten" in fns for fn in fns.values()}


def test_eval_block_outside_no_grad_tunes_forward_only(monkeypatch):
    calls = _fake_measure(monkeypatch)
    net = Bottleneck().eval().hybridize()
    x = torch.randn(2, 6, 9, 9)
    assert torch.is_grad_enabled()
    out = net(x)
    assert calls and _workload_kinds(calls) == {"forward"}
    assert out.requires_grad  # the graph still records gradients: only the timing skipped backward
    torch.testing.assert_close(out, Bottleneck.forward(net, x), rtol=1e-4, atol=1e-5)


def test_eval_block_with_an_input_asking_for_grad_tunes_backward(monkeypatch):
    calls = _fake_measure(monkeypatch)
    net = Bottleneck().eval().hybridize()
    net(torch.randn(2, 6, 9, 9, requires_grad=True))
    assert _workload_kinds(calls) == {"forward_backward"}


def test_training_block_tunes_backward(monkeypatch):
    calls = _fake_measure(monkeypatch)
    Bottleneck().train().hybridize()(torch.randn(2, 6, 9, 9))
    assert _workload_kinds(calls) == {"forward_backward"}


def _count_exports(monkeypatch) -> list[int]:
    from toolkit.nn import HybridBlock

    exports: list[int] = []
    real = HybridBlock._export_program

    def counting(self, *args, **kwargs):
        exports.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(HybridBlock, "_export_program", counting)
    return exports


def test_first_no_grad_call_reuses_the_eval_capture(monkeypatch):
    _fake_measure(monkeypatch)
    exports = _count_exports(monkeypatch)
    torch.manual_seed(0)
    net = Bottleneck().eval().hybridize(autotune=False)
    x = torch.randn(2, 6, 9, 9)
    with_grad = net(x)
    with torch.no_grad():
        without = net(x)
    assert len(exports) == 1, "the no_grad graph must come from the grad-enabled eval capture"
    assert with_grad.requires_grad and not without.requires_grad
    torch.testing.assert_close(without, with_grad.detach(), rtol=1e-4, atol=1e-5)  # folded BN, same answer
    net.train()
    net(x)  # a training graph is never taken from an eval capture
    assert len(exports) == 2


def test_export_of_a_hybridized_block_captures_no_graph_for_its_reference(monkeypatch, tmp_path):
    from .test_hybridize import SmallCNN

    torch.manual_seed(0)
    net = SmallCNN().eval().hybridize()
    exports = _count_exports(monkeypatch)
    calls = _fake_measure(monkeypatch)
    net.export(str(tmp_path / "cnn"))
    assert exports == [] and calls == [], "export's eager reference must not capture or autotune a graph"
    assert (tmp_path / "cnn.onnx").is_file()
