"""The inference race's Inductor candidate (frozen weights): when it is kept, and that it never runs stale weights.

A fake compiler stands in for Inductor (a real compile takes minutes on a loaded 2-core machine): it
deep-copies the graph, so that, like freezing, it keeps the weights it saw: a call after the weights
changed that reached it would give the old answer.
"""
import copy

import pytest
import torch

from toolkit.nn import autotune

from ._fake_race import fake_race
from .test_autotune import Bottleneck, _twins


@pytest.fixture(autouse=True)
def inductor(monkeypatch):
    autotune.clear_cache()
    monkeypatch.setenv(autotune.INDUCTOR_ENV, "1")
    monkeypatch.setenv(autotune.EAGER_ENV, "1")
    yield
    autotune.clear_cache()


def _fake_compile(monkeypatch, offset: float = 0.0) -> list[tuple]:
    """Replace Inductor by a frozen copy of the graph (plus ``offset``: a wrong compile); returns the
    input shapes of every compile."""
    compiles: list[tuple] = []

    def compile_frozen(gm, args, kwargs):
        compiles.append(tuple(args[0].shape))
        frozen = copy.deepcopy(gm)
        return lambda *a, **k: frozen(*a, **k) + offset

    monkeypatch.setattr(autotune, "compile_frozen", compile_frozen)
    return compiles


_race = fake_race


def _pair(seed: int = 1):
    eager, tuned = _twins(seed)
    return eager.eval(), tuned.eval()


@pytest.mark.parametrize("times, path", [
    ({"inductor": 0.5}, "inductor"),
    ({"inductor": 0.98}, "as_given"),  # faster than the graph, not by the margin
    ({"as_given": 0.5, "inductor": 0.6}, "as_given"),
    ({"eager": 0.4, "inductor": 0.5}, "eager"),
])
def test_frozen_graph_kept_only_when_fastest_by_the_margin(monkeypatch, times, path):
    races = _race(monkeypatch, {"as_given": 0.9} | times)
    compiles = _fake_compile(monkeypatch)
    eager, tuned = _pair()
    tuned.hybridize()
    x = torch.randn(3, 6, 10, 10)
    with torch.no_grad():
        torch.testing.assert_close(tuned(x), eager(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(tuned(x), eager(x), rtol=1e-5, atol=1e-5)
    assert races == [["as_given", "channels_last", "eager", "inductor"]] and compiles == [(3, 6, 10, 10)]
    assert tuned.graph_memory_format == path and set(tuned.race_times) == set(races[0])
    if path == "inductor":
        assert isinstance(tuned._last_graph.runner, autotune.FrozenInductor)
        assert tuned.exported_program is not None


def test_frozen_graph_never_runs_stale_weights_and_recompiles_once_they_settle(monkeypatch):
    _race(monkeypatch, {"inductor": 0.5})
    compiles = _fake_compile(monkeypatch)
    eager, tuned = _pair()
    tuned.hybridize()
    x = torch.randn(3, 6, 10, 10)
    with torch.no_grad():
        tuned(x)
        assert tuned.graph_memory_format == "inductor" and len(compiles) == 1
        for net in (eager, tuned):  # an optimizer step would do the same: in place, version counters move
            net.reduce.weight.mul_(1.5)
            net.bn2.running_var.add_(0.25)
        # the race's compile served one call before the change: not worth it, the wait doubled
        wait = 2 * autotune.INDUCTOR_RECOMPILE_CALLS
        for call in range(wait + 2):
            torch.testing.assert_close(tuned(x), eager(x), rtol=1e-5, atol=1e-5, msg=f"call {call}")
            assert len(compiles) == (1 if call < wait else 2)
        # another batch size: the captured graph (no compile per size), right answer
        y = torch.randn(5, 6, 10, 10)
        torch.testing.assert_close(tuned(y), eager(y), rtol=1e-5, atol=1e-5)
        assert len(compiles) == 2


def test_recompiles_back_off_when_weights_change_between_few_calls(monkeypatch):
    """A loop that evaluates a couple of batches between training steps: compiles that served fewer calls
    than four times their wait double it, so compiling stops; a long evaluation after it compiles again
    (once its calls outlast the wait), and every answer is the live weights'."""
    _race(monkeypatch, {"inductor": 0.5})
    compiles = _fake_compile(monkeypatch)
    eager, tuned = _pair()
    tuned.hybridize()
    x = torch.randn(3, 6, 10, 10)
    with torch.no_grad():
        tuned(x)
        frozen = tuned._last_graph.runner
        assert isinstance(frozen, autotune.FrozenInductor) and len(compiles) == 1
        waits = []
        for step in range(6):  # "train" (weights change in place), then evaluate 5 batches
            for net in (eager, tuned):
                net.reduce.weight.mul_(1.01)
            for _ in range(5):
                torch.testing.assert_close(tuned(x), eager(x), rtol=1e-5, atol=1e-5, msg=f"step {step}")
            waits.append(frozen.wait)
        # 1st compile (the race's) served 1 call: wait 6; 5 calls never reach it: no compile after
        assert waits == [6] * 6 and len(compiles) == 1
        for net in (eager, tuned):
            net.reduce.weight.mul_(1.01)
        for call in range(40):  # a whole validation epoch: compiled after 6 calls, then served
            torch.testing.assert_close(tuned(x), eager(x), rtol=1e-5, atol=1e-5, msg=f"call {call}")
        assert len(compiles) == 2 and frozen.wait == 6
        for net in (eager, tuned):  # it paid off (34 calls >= 4 x 6): the wait stays
            net.reduce.weight.mul_(1.01)
        tuned(x)
        assert frozen.wait == 6


def test_never_raced_in_training_or_with_gradients(monkeypatch):
    races = _race(monkeypatch, {"inductor": 0.5})
    compiles = _fake_compile(monkeypatch)
    _, tuned = _twins()
    x = torch.randn(2, 6, 8, 8)
    tuned.train().hybridize()
    tuned(x).sum().backward()
    tuned.eval()
    tuned(x)  # eval with gradients recording: no frozen weights either
    assert compiles == [] and all("inductor" not in r for r in races) and len(races) == 2
    with torch.no_grad():  # the inference signature races it; the graph is kept for the others
        tuned(x)
    assert races[-1][-1] == "inductor" and len(compiles) == 1
    tuned.train()
    out = tuned(x)
    assert out.requires_grad and tuned.graph_memory_format != "inductor"


def test_wrong_compile_is_dropped(monkeypatch):
    races = _race(monkeypatch, {"as_given": 0.5, "inductor": 0.4})
    _fake_compile(monkeypatch, offset=1e-2)
    eager, tuned = _pair()
    tuned.hybridize()
    x = torch.randn(3, 6, 10, 10)
    with torch.no_grad():
        torch.testing.assert_close(tuned(x), eager(x), rtol=1e-5, atol=1e-5)
    assert races == [["as_given", "channels_last", "eager"]] and tuned.graph_memory_format == "as_given"


def test_off_switches(monkeypatch):
    races = _race(monkeypatch, {"inductor": 0.5})
    compiles = _fake_compile(monkeypatch)
    x = torch.randn(2, 6, 8, 8)
    with torch.no_grad():
        Bottleneck().eval().hybridize(inductor=False)(x)
        monkeypatch.setenv(autotune.INDUCTOR_ENV, "0")
        Bottleneck().eval().hybridize()(torch.randn(3, 6, 8, 8))
        monkeypatch.delenv(autotune.INDUCTOR_ENV)  # off by default
        Bottleneck().eval().hybridize()(torch.randn(4, 6, 8, 8))
    assert compiles == [] and races == [["as_given", "channels_last", "eager"]] * 3


def test_decision_cached_compiles_without_racing(monkeypatch):
    races = _race(monkeypatch, {"inductor": 0.5})
    compiles = _fake_compile(monkeypatch)
    x = torch.randn(2, 6, 8, 8)
    with torch.no_grad():
        first = Bottleneck().eval().hybridize()
        first(x)
        assert first.graph_memory_format == "inductor" and len(races) == 1 and len(compiles) == 1
        autotune._cache.clear()  # a new process: the disk only
        autotune._disk.clear()
        second = Bottleneck().eval().hybridize()
        out = second(x)
        torch.testing.assert_close(out, Bottleneck.forward(second, x), rtol=1e-5, atol=1e-5)
    assert second.graph_memory_format == "inductor" and len(races) == 1 and len(compiles) == 2
    assert second.race_times == first.race_times


def test_lazy_race_compiles_in_a_step_of_its_own(monkeypatch):
    monkeypatch.setenv(autotune.LAZY_ENV, "1")
    monkeypatch.setattr(autotune, "LAZY_BUDGET_S", 0.0)
    monkeypatch.setattr(autotune, "_measure", lambda fns, budget_s=0: {n: 0.5 if n == "aten" else 1.0 for n in fns})
    monkeypatch.setattr(autotune, "race_once", lambda name, *a: 0.5 if name == "inductor" else 1.0)
    compiles = _fake_compile(monkeypatch)
    eager, tuned = _pair()
    tuned.hybridize()
    x = torch.randn(3, 6, 10, 10)
    calls = 0
    with torch.no_grad():
        while True:
            torch.testing.assert_close(tuned(x), eager(x), rtol=1e-5, atol=1e-5)
            calls += 1
            if not tuned.tuning_pending:
                break
            assert calls < 100
    assert tuned.graph_memory_format == "inductor" and len(compiles) == 1


def test_lazy_race_times_the_frozen_graph_not_its_fallback(monkeypatch):
    """Each timed run leaves no trace, but putting back buffers it never wrote would move their
    version counters: the frozen graph would take that for new weights and every one of its race
    runs would time the captured graph instead (it did, and OpenVINO lost races it wins by 1.5x)."""
    monkeypatch.setenv(autotune.LAZY_ENV, "1")
    monkeypatch.setattr(autotune, "LAZY_BUDGET_S", 0.0)
    monkeypatch.setattr(autotune, "_measure", lambda fns, budget_s=0: {n: 0.5 if n == "aten" else 1.0 for n in fns})
    real_race_once = autotune.race_once
    monkeypatch.setattr(autotune, "race_once",
                        lambda name, *a: real_race_once(name, *a) * 0 + (0.5 if name == "inductor" else 1.0))
    frozen_runs = []

    def compile_frozen(gm, args, kwargs):
        frozen = copy.deepcopy(gm)

        def run(*a, **k):
            frozen_runs.append(1)
            return frozen(*a, **k)
        return run

    monkeypatch.setattr(autotune, "compile_frozen", compile_frozen)
    eager, tuned = _pair()
    tuned.hybridize()
    x = torch.randn(3, 6, 10, 10)
    with torch.no_grad():
        for _ in range(100):
            tuned(x)
            if not tuned.tuning_pending:
                break
    assert tuned.graph_memory_format == "inductor"
    # the compile's check, the warm-up round, the timed rounds and the call that ended the race:
    # none went to the fallback
    assert len(frozen_runs) == 1 + (1 + autotune.RACE_ROUNDS) + 1
    buffers = [b._version for b in tuned.buffers()]
    with torch.no_grad():
        autotune.race_once("as_given", tuned._last_graph.runner, (x,), {}, tuned, False)
    assert [b._version for b in tuned.buffers()] == buffers


@pytest.mark.slow
def test_real_inductor_compile_matches_eager(monkeypatch):
    _race(monkeypatch, {"inductor": 0.5})
    eager, tuned = _pair()
    tuned.hybridize()
    x = torch.randn(2, 6, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(tuned(x), eager(x), rtol=1e-4, atol=1e-4)
        assert tuned.graph_memory_format == "inductor"
        torch.testing.assert_close(tuned(x), eager(x), rtol=1e-4, atol=1e-4)
        for net in (eager, tuned):
            net.expand.weight.mul_(2)
        torch.testing.assert_close(tuned(x), eager(x), rtol=1e-4, atol=1e-4)
