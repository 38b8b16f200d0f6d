"""Lazy autotuning: the first call answers eagerly; later calls capture, measure a step at a time, then switch."""
import pytest
import torch

from toolkit.nn import autotune

from .test_autotune import Bottleneck, _count_calls, _train_alike, _twins


@pytest.fixture(autouse=True)
def lazy(monkeypatch):
    autotune.clear_cache()
    monkeypatch.setenv(autotune.LAZY_ENV, "1")
    monkeypatch.setattr(autotune, "LAZY_BUDGET_S", 0.0)  # one step a call: a fixed schedule
    yield
    autotune.clear_cache()


def _fake(monkeypatch, kernel: str = "gemm", graph: str = "channels_last") -> dict[str, list]:
    """``kernel`` wins every convolution it applies to, ``graph`` the race; returns what was measured."""
    seen: dict[str, list] = {"convs": [], "race": []}

    def measure(fns, budget_s=autotune.BUDGET_S):
        assert "aten" in fns, "a lazy race runs one candidate at a time, through race_once"
        seen["convs"].append(dict(fns))
        return {name: 0.5 if name == kernel else 1.0 for name in fns}

    def race_once(name, runner, args, kwargs, module, backward):
        seen["race"].append(name)
        return 0.5 if name == graph else 1.0

    monkeypatch.setattr(autotune, "_measure", measure)
    monkeypatch.setattr(autotune, "race_once", race_once)
    return seen


def _workload_kinds(calls: list[dict]) -> set[str]:
    return {fn.__name__ for fns in calls for fn in fns.values()}


def test_first_call_measures_nothing_and_later_calls_finish_on_a_fixed_schedule(monkeypatch):
    seen = _fake(monkeypatch)
    eager, tuned = _twins(1)
    eager.eval()
    tuned.eval().hybridize()
    x = torch.randn(3, 6, 10, 10)
    with torch.no_grad():
        torch.testing.assert_close(tuned(x), eager(x), rtol=1e-5, atol=1e-5)
        assert seen == {"convs": [], "race": []} and tuned.tuning_pending
        assert tuned.graph is None and tuned.graph_memory_format == "eager"  # no capture yet
        torch.testing.assert_close(tuned(x), eager(x), rtol=1e-5, atol=1e-5)  # captured, runs aten's kernels
        assert seen == {"convs": [], "race": []} and tuned.tuning_pending and tuned.graph is not None
        assert tuned.graph_memory_format == "as_given" and {c.kernel for c in tuned.conv_kernels} == {"aten"}
        calls = 2
        while tuned.tuning_pending:
            torch.testing.assert_close(tuned(x), eager(x), rtol=1e-5, atol=1e-5)  # right at every step
            calls += 1
            assert calls < 100
    # one step a call: the capture, 5 convolutions, the channels-last capture, its 5 convolutions, then a
    # warm-up round and RACE_ROUNDS rounds of the two graphs (a round a step); the call after the last decides
    assert calls == 1 + 1 + 5 + 1 + 5 + (1 + autotune.RACE_ROUNDS) + 1
    assert len(seen["convs"]) == 10 and _workload_kinds(seen["convs"]) == {"forward"}  # no_grad: no backward
    assert seen["race"][:4] == ["as_given", "channels_last", "channels_last", "as_given"]  # alternating
    assert tuned.graph_memory_format == "channels_last" and tuned.race_times == {"as_given": 1.0,
                                                                                 "channels_last": 0.5}
    assert [c.kernel for c in tuned.conv_kernels].count("gemm") == 3
    with torch.no_grad():
        torch.testing.assert_close(tuned(x), eager(x), rtol=1e-5, atol=1e-5)
    # the decisions are on disk: a new block captures the winner at once and measures nothing
    autotune._cache.clear()
    autotune._disk.clear()
    seen["convs"].clear(), seen["race"].clear()
    again = Bottleneck().eval().hybridize()
    with torch.no_grad():
        again(x)
        again(x)
    assert seen == {"convs": [], "race": []} and not again.tuning_pending
    assert again.graph_memory_format == "channels_last"


def test_lazy_tuning_during_training_leaves_no_trace(monkeypatch):
    """Measured in the second call (unlimited budget): gradients, weights, running statistics and random
    numbers as eager's at every step, and the training graph timed forward and backward."""
    monkeypatch.setattr(autotune, "LAZY_BUDGET_S", float("inf"))
    seen = _fake(monkeypatch)
    eager, tuned = _twins()
    tuned.train().hybridize()
    torch.manual_seed(5)
    _train_alike(eager, tuned)  # four steps
    after = torch.rand(3)
    eager2, _ = _twins()
    torch.manual_seed(5)
    _train_alike(eager2, eager2)
    torch.testing.assert_close(after, torch.rand(3), rtol=0, atol=0)
    assert not tuned.tuning_pending and tuned.graph_memory_format == "channels_last"
    assert _workload_kinds(seen["convs"]) == {"forward_backward"}
    assert len(seen["race"]) == 2 * (1 + autotune.RACE_ROUNDS)


def test_eager_winning_a_lazy_race_runs_the_block_eagerly(monkeypatch):
    monkeypatch.setenv(autotune.EAGER_ENV, "1")
    monkeypatch.setattr(autotune, "LAZY_BUDGET_S", float("inf"))
    seen = _fake(monkeypatch, graph="eager")
    _, tuned = _twins()
    tuned.train().hybridize()
    hook = _count_calls(tuned.reduce)
    x = torch.randn(4, 6, 11, 11)
    tuned(x)
    assert tuned.graph is None and tuned.tuning_pending and len(hook) == 1  # eager answered
    tuned(x)
    assert not tuned.tuning_pending and tuned.graph_memory_format == "eager" and tuned.graph is None
    assert set(seen["race"]) == {"as_given", "channels_last", "eager"}
    before = len(hook)
    tuned(x)
    assert len(hook) == before + 1, "the block's own forward must run, not a graph"


def test_lazy_off_measures_everything_in_the_first_call(monkeypatch):
    seen = _fake(monkeypatch)
    monkeypatch.setattr(autotune, "race_once", lambda *a: pytest.fail("the first-call race uses fastest"))
    monkeypatch.setattr(autotune, "_measure", lambda fns, budget_s=autotune.BUDGET_S: seen["convs"].append(1) or {
        n: 0.5 if n in ("gemm", "channels_last") else 1.0 for n in fns})
    _, tuned = _twins()
    tuned.train().hybridize(lazy=False)
    tuned(torch.randn(2, 6, 8, 8))
    assert not tuned.tuning_pending and tuned.graph_memory_format == "channels_last"
    assert len(seen["convs"]) == 10 + 1  # two graphs' convolutions and one race


def test_a_block_that_cannot_be_captured_fails_at_the_deferred_capture():
    from toolkit.nn import HybridizeError

    from .test_hybridize import Outer

    net = Outer().hybridize()
    x = torch.randn(2, 4)
    torch.testing.assert_close(net(x), Outer.forward(net, x))  # the first call answers eagerly
    for _ in range(2):  # then every call tries the capture, and names the block that breaks it
        with pytest.raises(HybridizeError) as info:
            net(x)
        assert info.value.block_path == "inner"


def test_real_measuring_lazily_trains_like_eager(monkeypatch):
    """Unfaked timings, eager in the race: whatever wins on this machine, the steps equal eager's."""
    monkeypatch.setenv(autotune.EAGER_ENV, "1")
    monkeypatch.setattr(autotune, "LAZY_BUDGET_S", float("inf"))
    eager, tuned = _twins(3)
    tuned.train().hybridize()
    _train_alike(eager, tuned)
    assert not tuned.tuning_pending
    assert set(tuned.race_times) == {"as_given", "channels_last", "eager"}
    assert tuned.graph_memory_format in ("as_given", "channels_last", "eager")
    assert all(c.kernel in c.times or c.kernel == "aten" for c in tuned.conv_kernels)
