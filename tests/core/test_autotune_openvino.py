"""The inference race's OpenVINO candidate: the captured program converted and compiled by OpenVINO
with the weights frozen in. These tests run the real converter (a tiny model converts in about a
second); only the timing of the race is faked, so that which candidate wins is decided by the test.
"""
import logging

import pytest
import torch
from torch import nn

from toolkit.nn import HybridBlock, autotune

from ._fake_race import fake_race
from .test_autotune import Bottleneck, _twins

pytest.importorskip("openvino")
pytestmark = pytest.mark.openvino_last  # see tests/conftest.py


@pytest.fixture(autouse=True)
def openvino_on(monkeypatch):
    autotune.clear_cache()
    monkeypatch.setenv(autotune.OPENVINO_ENV, "1")
    monkeypatch.setenv(autotune.EAGER_ENV, "1")
    yield
    autotune.clear_cache()


def _pair(seed: int = 1):
    eager, tuned = _twins(seed)
    return eager.eval(), tuned.eval()


def _count_compiles(monkeypatch) -> list[tuple]:
    compiles: list[tuple] = []
    real = autotune.compile_openvino

    def counting(program, args, kwargs, example_output):
        compiles.append(tuple(args[0].shape))
        return real(program, args, kwargs, example_output)

    monkeypatch.setattr(autotune, "compile_openvino", counting)
    return compiles


@pytest.mark.parametrize("times, path", [
    ({"openvino": 0.5}, "openvino"),
    ({"openvino": 0.98}, "as_given"),  # faster than the graph, not by the margin
    ({"eager": 0.4, "openvino": 0.5}, "eager"),
])
def test_openvino_kept_only_when_fastest_and_matches_eager(monkeypatch, times, path):
    races = fake_race(monkeypatch, {"as_given": 0.9} | times)
    compiles = _count_compiles(monkeypatch)
    eager, tuned = _pair()
    tuned.hybridize()
    x = torch.randn(3, 6, 10, 10)
    with torch.no_grad():
        for _ in range(2):
            torch.testing.assert_close(tuned(x), eager(x), rtol=1e-4, atol=1e-4)
    assert races == [["as_given", "channels_last", "eager", "openvino"]] and compiles == [(3, 6, 10, 10)]
    assert tuned.graph_memory_format == path
    if path == "openvino":
        assert isinstance(tuned._last_graph.runner, autotune.FrozenOpenVINO)


def test_never_runs_stale_weights_and_recompiles_once_they_settle(monkeypatch):
    fake_race(monkeypatch, {"openvino": 0.5})
    compiles = _count_compiles(monkeypatch)
    eager, tuned = _pair()
    tuned.hybridize()
    x = torch.randn(3, 6, 10, 10)
    with torch.no_grad():
        tuned(x)
        assert tuned.graph_memory_format == "openvino" and len(compiles) == 1
        for net in (eager, tuned):  # what an optimizer step does: in place, version counters move
            net.reduce.weight.mul_(1.5)
            net.bn2.running_var.add_(0.25)
        # the race's compile served one call before the change: not worth it, the wait doubled
        wait = 2 * autotune.INDUCTOR_RECOMPILE_CALLS
        for call in range(wait + 2):
            torch.testing.assert_close(tuned(x), eager(x), rtol=1e-4, atol=1e-4, msg=f"call {call}")
            assert len(compiles) == (1 if call < wait else 2)
        y = torch.randn(5, 6, 10, 10)  # another batch size: the captured graph, no compile per size
        torch.testing.assert_close(tuned(y), eager(y), rtol=1e-4, atol=1e-4)
        assert len(compiles) == 2


def test_races_next_to_inductor_and_the_fastest_wins(monkeypatch):
    monkeypatch.setenv(autotune.INDUCTOR_ENV, "1")
    monkeypatch.setattr(autotune, "inductor_enabled", lambda: True)  # no C++ compiler needed: faked below
    monkeypatch.setattr(autotune, "compile_frozen", lambda gm, args, kwargs: gm)
    races = fake_race(monkeypatch, {"inductor": 0.6, "openvino": 0.5})
    eager, tuned = _pair()
    tuned.hybridize()
    x = torch.randn(2, 6, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(tuned(x), eager(x), rtol=1e-4, atol=1e-4)
    assert races == [["as_given", "channels_last", "eager", "inductor", "openvino"]]
    assert tuned.graph_memory_format == "openvino"
    assert set(tuned.race_times) == set(races[0])


class TwoHeads(HybridBlock):
    """Nested outputs: a dict holding a tuple, rebuilt from OpenVINO's flat list of outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.cls = nn.Linear(4, 5)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        return {"logits": self.cls(h.mean((2, 3))), "maps": (h, h.amax(1))}


def test_nested_outputs_keep_their_structure(monkeypatch):
    fake_race(monkeypatch, {"openvino": 0.5})
    torch.manual_seed(0)
    net = TwoHeads().eval()
    x = torch.randn(2, 3, 9, 7)
    with torch.no_grad():
        want = net(x)
        got = net.hybridize()(x)
    assert net.graph_memory_format == "openvino"
    assert set(got) == {"logits", "maps"} and isinstance(got["maps"], tuple)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


class Scaled(HybridBlock):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x, scale: float = 1.0):
        return self.conv(x) * scale


def test_unsupported_inputs_keep_the_graph_with_a_warning(monkeypatch, caplog):
    races = fake_race(monkeypatch, {"openvino": 0.5})
    net = Scaled().eval().hybridize()
    x = torch.randn(1, 3, 4, 4)
    with torch.no_grad(), caplog.at_level(logging.WARNING, logger="toolkit"):
        out = net(x, scale=2.0)
    torch.testing.assert_close(out, Scaled.forward(net, x, 2.0))
    assert net.graph_memory_format != "openvino" and all("openvino" not in r for r in races)
    assert any("OpenVINO compile failed" in r.getMessage() for r in caplog.records)


def test_off_switches(monkeypatch):
    races = fake_race(monkeypatch, {"openvino": 0.5})
    compiles = _count_compiles(monkeypatch)
    with torch.no_grad():
        Bottleneck().eval().hybridize(openvino=False)(torch.randn(2, 6, 8, 8))
        monkeypatch.setenv(autotune.OPENVINO_ENV, "0")
        Bottleneck().eval().hybridize()(torch.randn(3, 6, 8, 8))
        monkeypatch.delenv(autotune.OPENVINO_ENV)  # on by default where openvino is installed
        Bottleneck().eval().hybridize()(torch.randn(4, 6, 8, 8))
        monkeypatch.setenv(autotune.OPENVINO_ENV, "0")  # per block, True wins over the variable
        Bottleneck().eval().hybridize(openvino=True)(torch.randn(5, 6, 8, 8))
    Bottleneck().eval().hybridize(openvino=True)(torch.randn(6, 6, 8, 8))  # gradients recording: never
    assert compiles == [(4, 6, 8, 8), (5, 6, 8, 8)]
    assert races[:2] == [["as_given", "channels_last", "eager"]] * 2
    assert races[2][-1] == races[3][-1] == "openvino"


@torch.library.custom_op("toolkit_test::shift", mutates_args=())
def _shift(x: torch.Tensor) -> torch.Tensor:
    """An operator OpenVINO has no conversion rule for (as the zoo's NMS)."""
    return x + 1


@_shift.register_fake
def _(x):
    return torch.empty_like(x)


class Shifted(HybridBlock):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return _shift(self.conv(x))


@pytest.mark.parametrize("asked", [False, True])
def test_failed_convert_is_quiet_by_default_and_leaves_logging_alone(monkeypatch, caplog, asked):
    """OpenVINO's converter sets the root logger to ERROR and leaves it so when it fails: every later
    warning of the process was silenced. A failure is a warning only where OpenVINO was asked for."""
    races = fake_race(monkeypatch, {"openvino": 0.5})
    monkeypatch.delenv(autotune.OPENVINO_ENV)
    root = logging.getLogger()
    before = root.level, list(root.handlers), list(root.filters)
    net = Shifted().eval().hybridize(openvino=True if asked else None)
    x = torch.randn(1, 3, 4, 4)
    with torch.no_grad(), caplog.at_level(logging.INFO, logger="toolkit"):
        out = net(x)
    torch.testing.assert_close(out, Shifted.forward(net, x), rtol=1e-5, atol=1e-5)
    assert (root.level, list(root.handlers), list(root.filters)) == before
    assert net.graph_memory_format != "openvino" and all("openvino" not in r for r in races)
    failed = [r for r in caplog.records if "OpenVINO compile failed" in r.getMessage()]
    assert len(failed) == 1 and "toolkit_test.shift" in failed[0].getMessage()
    assert failed[0].levelno == (logging.WARNING if asked else logging.INFO)
    logging.getLogger("toolkit.nn.block").warning("still heard")  # the process's warnings are not silenced
    assert caplog.records[-1].getMessage() == "still heard"


def test_decision_cached_compiles_without_racing(monkeypatch):
    races = fake_race(monkeypatch, {"openvino": 0.5})
    compiles = _count_compiles(monkeypatch)
    x = torch.randn(2, 6, 8, 8)
    with torch.no_grad():
        first = Bottleneck().eval().hybridize()
        first(x)
        autotune._cache.clear()  # a new process: the disk only
        autotune._disk.clear()
        second = Bottleneck().eval().hybridize()
        out = second(x)
        torch.testing.assert_close(out, Bottleneck.forward(second, x), rtol=1e-4, atol=1e-4)
    assert second.graph_memory_format == "openvino" and len(races) == 1 and len(compiles) == 2
    assert second.race_times == first.race_times


class Tagger(HybridBlock):
    """Integer token ids and a boolean mask in, as a text model takes them."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, ids, mask):
        h = self.embed(ids) * mask.unsqueeze(-1).to(torch.float32)
        return self.out(torch.tanh(h))


def test_integer_and_boolean_inputs(monkeypatch):
    fake_race(monkeypatch, {"openvino": 0.5})
    torch.manual_seed(0)
    net = Tagger().eval()
    ids, mask = torch.randint(0, 50, (2, 7)), torch.rand(2, 7) > 0.3
    with torch.no_grad():
        want = net(ids, mask)
        got = net.hybridize()(ids, mask)
        assert net.graph_memory_format == "openvino"
        other = torch.randint(0, 50, (2, 7))  # other values, same shapes: the compiled model
        torch.testing.assert_close(net(other, mask), Tagger.forward(net, other, mask), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_left_out_where_its_weight_copy_would_not_fit(monkeypatch, caplog):
    races = fake_race(monkeypatch, {"openvino": 0.5})
    compiles = _count_compiles(monkeypatch)
    net = Bottleneck().eval().hybridize()
    weights = sum(t.numel() * t.element_size() for t in list(net.parameters()) + list(net.buffers()))
    monkeypatch.setattr(autotune, "available_memory", lambda: 3 * weights)  # under 4x the weights
    x = torch.randn(2, 6, 8, 8)
    with torch.no_grad(), caplog.at_level(logging.WARNING, logger="toolkit"):
        torch.testing.assert_close(net(x), Bottleneck.forward(net, x), rtol=1e-5, atol=1e-5)
    assert compiles == [] and net.graph_memory_format != "openvino" and "openvino" not in races[0]
    assert any("would not fit" in r.getMessage() for r in caplog.records)  # asked for (the variable): a warning
    monkeypatch.setattr(autotune, "available_memory", lambda: 4 * weights)
    with torch.no_grad():
        Bottleneck().eval().hybridize()(torch.randn(3, 6, 8, 8))
    assert compiles == [(3, 6, 8, 8)]
