"""Convolution kernel autotuning: every kernel equals aten's conv2d, and a tuned graph equals eager."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from toolkit.nn import HybridBlock
from toolkit.nn import autotune
from toolkit.nn.autotune import KERNELS, conv2d_channels_last, conv2d_contiguous, conv2d_gemm

from ._fake_race import fake_race


class Bottleneck(HybridBlock):
    """1x1 (strided, with and without bias), 3x3, depthwise and BN: every case the kernels cover.

    No convolution before a training-mode BN has a bias: its gradient is zero in exact arithmetic,
    and the rounding noise left (3e-5 here in channels-last, 3e-6 in NCHW) says nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(6, 4, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.expand = nn.Conv2d(4, 8, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.down = nn.Conv2d(6, 8, 1, stride=2)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        h = torch.relu(self.bn1(self.reduce(x)))
        h = self.bn2(self.expand(torch.relu(self.dw(self.conv(h)))))
        h = F.max_pool2d(h, 2, ceil_mode=True) + self.down(x)
        return self.fc(torch.relu(h).mean((2, 3)))


@pytest.fixture(autouse=True)
def fresh_cache():
    autotune.clear_cache()
    yield
    autotune.clear_cache()


def _force(monkeypatch, winner: str, graph: str = "as_given") -> list[dict]:
    """Make ``winner`` the fastest kernel wherever it applies, and ``graph`` ("as_given" or
    "channels_last") the faster whole graph; returns the kernel candidate sets measured."""
    calls: list[dict] = []

    def fake(fns, budget_s=autotune.BUDGET_S):
        if "aten" in fns:  # a convolution's kernels
            calls.append(dict(fns))
            return {name: 0.5 if name == winner else 1.0 for name in fns}
        # the race of whole graphs ("as_given", "channels_last") and, where enabled, the eager forward
        return {name: 0.5 if name == graph else 1.0 for name in fns}

    monkeypatch.setattr(autotune, "_measure", fake)
    return calls


def _twins(seed: int = 0) -> tuple[Bottleneck, Bottleneck]:
    torch.manual_seed(seed)
    eager = Bottleneck()
    tuned = Bottleneck()
    tuned.load_state_dict(eager.state_dict())
    return eager, tuned


def _grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("channels_last", [False, True])
def test_gemm_kernel_equals_conv2d_forward_and_backward(stride, bias, channels_last):
    torch.manual_seed(0)
    x = torch.randn(3, 5, 7, 6, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(4, 5, 1, 1, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64) if bias else None
    inputs = [t.requires_grad_() for t in (x, w, b) if t is not None]
    ref = F.conv2d(x, w, b, stride)
    out = conv2d_gemm(x, w, b, [stride, stride], [0, 0], [1, 1], 1)
    assert out.shape == ref.shape and out.stride() == ref.stride()  # aten's layout: NCHW, or NHWC for NHWC input
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(ref)
    for a, e in zip(torch.autograd.grad(out, inputs, g), torch.autograd.grad(ref, inputs, g)):
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", [conv2d_channels_last, conv2d_contiguous])
@pytest.mark.parametrize("kwargs", [
    dict(stride=1, padding=1, dilation=1, groups=1),
    dict(stride=2, padding=2, dilation=2, groups=1),
    dict(stride=1, padding=1, dilation=1, groups=6),  # depthwise
    dict(stride=2, padding=0, dilation=1, groups=2),
])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_layout_kernels_equal_conv2d(kwargs, layout, kernel):
    torch.manual_seed(0)
    x = torch.randn(2, 6, 9, 8, dtype=torch.float64).contiguous(memory_format=layout).requires_grad_()
    w = torch.randn(6, 6 // kwargs["groups"], 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, requires_grad=True)
    ref = F.conv2d(x, w, b, **kwargs)
    out = kernel(x, w, b, **kwargs)
    assert out.stride() == ref.stride()
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(ref)
    for a, e in zip(torch.autograd.grad(out, (x, w, b), g), torch.autograd.grad(ref, (x, w, b), g)):
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-12)


def test_gemm_kernel_refuses_what_it_cannot_compute():
    x = torch.randn(1, 4, 5, 5)
    with pytest.raises(ValueError, match="1x1"):
        conv2d_gemm(x, torch.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match="1x1"):
        conv2d_gemm(x, torch.randn(2, 4, 1, 1), padding=1)
    with pytest.raises(ValueError, match="1x1"):
        conv2d_gemm(x, torch.randn(2, 2, 1, 1), groups=2)


# how many of Bottleneck's five convolutions each kernel applies to, by the layout they run in
_APPLIES = {"gemm": (3, 3), "channels_last": (5, 0), "contiguous": (0, 5)}


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("winner", list(_APPLIES))
def test_tuned_training_graph_equals_eager(monkeypatch, winner, layout):
    _force(monkeypatch, winner)
    eager, tuned = _twins()
    eager.to(memory_format=layout)
    tuned.to(memory_format=layout).train().hybridize()
    _train_alike(eager, tuned, layout)
    assert tuned.graph_memory_format == "as_given"
    kernels = [c.kernel for c in tuned.conv_kernels]
    # measured at the capture's sizes: reduce and down read the batch-4 input
    assert [c.input_shape for c in tuned.conv_kernels].count((4, 6, 11, 11)) == 2
    count = _APPLIES[winner][layout == torch.channels_last]
    assert len(kernels) == 5 and kernels.count(winner) == count and kernels.count("aten") == 5 - count
    # the graph really calls the chosen kernels
    targets = [n.target for n in tuned._last_graph.runner.graph.nodes if n.op == "call_function"]
    assert targets.count(KERNELS[winner].fn) == count


def _train_alike(eager: Bottleneck, tuned: Bottleneck, layout=torch.contiguous_format) -> None:
    """Four SGD steps of both models on the same batches: same gradients, weights and running statistics."""
    opts = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (eager, tuned)]
    for step, batch in enumerate((4, 4, 3, 5)):  # captured at 4; the batch axis stays dynamic
        x = torch.randn(batch, 6, 11, 11).contiguous(memory_format=layout)
        y = torch.randint(0, 3, (batch,))
        for model, opt in zip((eager, tuned), opts):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
        for (name, a), e in zip(_grads(tuned).items(), _grads(eager).values()):
            torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-5, msg=f"step {step}: grad of {name}")
        for opt in opts:
            opt.step()
    torch.testing.assert_close(tuned.state_dict(), eager.state_dict(), rtol=1e-4, atol=1e-5)


def test_channels_last_graph_chosen_for_the_whole_network(monkeypatch):
    """When the channels-last capture wins the race, inputs are converted on the way in, its convolutions
    were tuned on channels-last strides, and the race left no trace: no gradient, running statistic
    or random number of the first step differs from eager."""
    calls = _force(monkeypatch, "gemm", graph="channels_last")
    eager, tuned = _twins()
    tuned.train().hybridize()
    torch.manual_seed(5)
    _train_alike(eager, tuned)
    after_tuned = torch.rand(3)
    eager2, _ = _twins()
    torch.manual_seed(5)
    _train_alike(eager2, eager2)  # the same draws without a capture
    torch.testing.assert_close(after_tuned, torch.rand(3), rtol=0, atol=0)
    assert tuned.graph_memory_format == "channels_last"
    assert isinstance(tuned._last_graph.runner, autotune.ChannelsLastInputs)
    placeholders = [n for n in tuned.graph.nodes if n.op == "placeholder" and n.name == "x"]
    assert autotune._channels_last(placeholders[0].meta["val"])
    # both captures' convolutions were tuned: the channels-last ones on other strides
    assert len(calls) == 10
    assert [c.kernel for c in tuned.conv_kernels].count("gemm") == 3


def test_fastest_leaves_no_trace():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5)).train()
    x = torch.randn(2, 3, 8, 8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    index, times = autotune.fastest([model, model], (x,), {}, model, budget_s=0.01)
    assert index in (0, 1) and len(times) == 2 and all(t > 0 for t in times)
    assert all(p.grad is None for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert torch.equal(torch.get_rng_state(), rng)


def test_tuned_inference_graph_equals_eager(monkeypatch):
    _force(monkeypatch, "gemm")
    eager, tuned = _twins(1)
    eager.eval()
    tuned.eval().hybridize()
    x = torch.randn(3, 6, 10, 10)
    with torch.no_grad():
        out = tuned(x)
        torch.testing.assert_close(out, eager(x), rtol=1e-5, atol=1e-5)
    # batch norms were folded before tuning: the reduce conv's folded weights feed the gemm kernel
    assert [c.kernel for c in tuned.conv_kernels].count("gemm") == 3


def test_margin_keeps_aten_for_a_near_tie(monkeypatch):
    def near_tie(fns, budget_s=autotune.BUDGET_S):
        return {name: 1.0 if name == "aten" else 0.99 for name in fns}

    monkeypatch.setattr(autotune, "_measure", near_tie)
    _, tuned = _twins()
    tuned.train().hybridize()
    tuned(torch.randn(2, 6, 8, 8)).sum().backward()
    assert {c.kernel for c in tuned.conv_kernels} == {"aten"}
    assert all(n.target is not KERNELS["gemm"].fn for n in tuned._last_graph.runner.graph.nodes)


def test_decisions_are_cached_per_shape(monkeypatch):
    calls = _force(monkeypatch, "gemm")
    _, tuned = _twins()
    tuned.train().hybridize()
    tuned(torch.randn(2, 6, 8, 8)).sum().backward()
    first = len(calls)
    # each capture (as given, and channels-last for the layout race) tunes its 5 convolutions:
    # 3x3 and depthwise have two candidates (aten and the other layout), the 1x1s three (and gemm)
    assert first == 10 and sorted(len(c) for c in calls) == [2] * 4 + [3] * 6
    tuned.hybridize()  # drops the graphs, not the decisions
    tuned(torch.randn(2, 6, 8, 8)).sum().backward()
    assert len(calls) == first
    tuned(torch.randn(2, 6, 12, 12)).sum().backward()  # a new spatial size is a new shape
    assert len(calls) == 2 * first
    with torch.no_grad():  # forward-only timing is a decision of its own
        tuned.eval()(torch.randn(2, 6, 8, 8))
    assert len(calls) == 3 * first


def test_autotune_off_keeps_the_captured_graph(monkeypatch):
    calls = _force(monkeypatch, "gemm")
    _, tuned = _twins()
    tuned.train().hybridize(autotune=False)
    tuned(torch.randn(2, 6, 8, 8)).sum().backward()
    assert calls == [] and tuned.conv_kernels == []
    assert sum(n.target is torch.ops.aten.conv2d.default for n in tuned._last_graph.runner.graph.nodes) == 5


def test_measured_choice_on_a_real_model_is_consistent():
    """Unforced: whatever the timings pick on this machine, each choice was measured and the answers hold."""
    eager, tuned = _twins(2)
    tuned.train().hybridize()
    x = torch.randn(4, 6, 16, 16)
    eager(x).sum().backward()
    tuned(x).sum().backward()
    choices = tuned.conv_kernels
    assert len(choices) == 5 and tuned.graph_memory_format in ("as_given", "channels_last")
    for c in choices:
        assert "aten" in c.times and c.kernel in c.times
        assert c.kernel == "aten" or c.times[c.kernel] < autotune.MARGIN * c.times["aten"]
    for (name, a), e in zip(_grads(tuned).items(), _grads(eager).values()):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-5, msg=name)


# ------------------------------------------------------------------------------------ eager fallback
def _race(monkeypatch, times: dict[str, float]) -> list[list[str]]:
    """Race the eager forward too, with fake medians (see :func:`fake_race`). Returns the candidates of each race."""
    monkeypatch.setenv(autotune.EAGER_ENV, "1")
    return fake_race(monkeypatch, times)


def _count_calls(module: nn.Module) -> list[int]:
    """Forward hooks run in the eager module, never inside a captured graph."""
    calls: list[int] = []
    module.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_eager_winning_the_race_trains_eagerly_and_leaves_no_trace(monkeypatch):
    races = _race(monkeypatch, {"eager": 0.5})
    eager, tuned = _twins()
    tuned.train().hybridize()
    hook = _count_calls(tuned.reduce)
    torch.manual_seed(5)
    _train_alike(eager, tuned)  # gradients, weights and running statistics as eager's, batches 4, 4, 3, 5
    after_tuned = torch.rand(3)
    eager2, _ = _twins()
    torch.manual_seed(5)
    _train_alike(eager2, eager2)
    torch.testing.assert_close(after_tuned, torch.rand(3), rtol=0, atol=0)  # the race drew no random number
    assert races == [["as_given", "channels_last", "eager"]], "one race: the other batches fit its signature"
    assert tuned.graph_memory_format == "eager" and tuned.graph is None and tuned.conv_kernels == []
    assert tuned.race_times == {"as_given": 1.0, "channels_last": 1.0, "eager": 0.5}
    before = len(hook)
    tuned(torch.randn(4, 6, 11, 11))
    assert len(hook) == before + 1, "the block's own forward must run, not a graph"


@pytest.mark.parametrize("times, path", [
    ({"as_given": 0.5}, "as_given"),
    ({"channels_last": 0.5}, "channels_last"),
    ({"as_given": 0.98}, "eager"),  # faster, but not by the margin: eager
    ({"eager": 0.5}, "eager"),
])
def test_graph_kept_only_when_faster_than_eager_by_the_margin(monkeypatch, times, path):
    _race(monkeypatch, times)
    eager, tuned = _twins(1)
    eager.eval()
    tuned.eval().hybridize()
    x = torch.randn(3, 6, 10, 10)
    with torch.no_grad():
        torch.testing.assert_close(tuned(x), eager(x), rtol=1e-5, atol=1e-5)
    assert tuned.graph_memory_format == path
    assert (tuned.graph is None) == (path == "eager")
    assert set(tuned.race_times) == {"as_given", "channels_last", "eager"}


def test_eager_decision_is_cached_and_skips_the_capture(monkeypatch):
    from toolkit.nn import HybridBlock

    races = _race(monkeypatch, {"eager": 0.5})
    x = torch.randn(2, 6, 9, 9)
    first = Bottleneck().train().hybridize()
    first(x).sum().backward()
    assert first.graph_memory_format == "eager" and len(races) == 1
    autotune._cache.clear()  # what a new process starts with: the disk only
    autotune._disk.clear()
    exports: list[int] = []
    real = HybridBlock._export_program
    monkeypatch.setattr(HybridBlock, "_export_program", lambda self, *a, **k: exports.append(1) or real(self, *a, **k))
    second = Bottleneck().train().hybridize()
    second(x).sum().backward()
    assert len(races) == 1 and exports == [], "a decision on disk: nothing measured, nothing captured"
    assert second.graph_memory_format == "eager" and second.race_times == first.race_times
    second(torch.randn(5, 6, 9, 9))  # another batch: the signature the stored decision covers
    assert exports == [] and len(races) == 1
    with torch.no_grad():  # forward-only is a signature of its own: captured (both layouts) and raced
        second.eval()(x)
    assert len(exports) == 2 and len(races) == 2


def test_text_block_without_convolutions_races_eager(monkeypatch):
    from .test_hybridize import TinyEncoder

    races = _race(monkeypatch, {"eager": 0.5})
    torch.manual_seed(0)
    net = TinyEncoder().eval().hybridize()
    with torch.no_grad():
        for batch, seq in ((2, 7), (3, 5)):
            tokens, mask = torch.randint(0, 50, (batch, seq)), torch.ones(batch, seq, dtype=torch.bool)
            for a, b in zip(net(tokens, mask), TinyEncoder.forward(net, tokens, mask)):
                torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert races == [["as_given", "eager"]] and net.graph_memory_format == "eager"


def test_no_eager_race_without_autotune_or_when_turned_off(monkeypatch):
    races = _race(monkeypatch, {"eager": 0.5})
    _, tuned = _twins()
    tuned.train().hybridize(autotune=False)
    tuned(torch.randn(2, 6, 8, 8)).sum().backward()
    assert races == [] and tuned.graph_memory_format == "as_given" and tuned.graph is not None
    monkeypatch.setenv(autotune.EAGER_ENV, "0")
    tuned.hybridize()
    tuned(torch.randn(2, 6, 8, 8)).sum().backward()
    assert races == [["as_given", "channels_last"]] and tuned.graph_memory_format == "as_given"
