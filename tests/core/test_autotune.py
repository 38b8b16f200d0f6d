"""Convolution kernel autotuning: every kernel equals aten's conv2d, and a tuned graph equals eager."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from toolkit.nn import HybridBlock
from toolkit.nn import autotune
from toolkit.nn.autotune import KERNELS, conv2d_channels_last, conv2d_gemm


class Bottleneck(HybridBlock):
    """1x1 (strided, with and without bias), 3x3, depthwise and BN: every case the kernels cover."""

    def __init__(self) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(6, 4, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.expand = nn.Conv2d(4, 8, 1)
        self.bn2 = nn.BatchNorm2d(8)
        self.down = nn.Conv2d(6, 8, 1, stride=2, bias=False)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        h = torch.relu(self.bn1(self.reduce(x)))
        h = self.bn2(self.expand(self.dw(self.conv(h))))
        h = F.max_pool2d(h, 2, ceil_mode=True) + self.down(x)
        return self.fc(torch.relu(h).mean((2, 3)))


@pytest.fixture(autouse=True)
def fresh_cache():
    autotune.clear_cache()
    yield
    autotune.clear_cache()


def _force(monkeypatch, winner: str) -> list[dict]:
    """Make ``winner`` the fastest kernel wherever it applies; returns the candidate sets measured."""
    calls: list[dict] = []

    def fake(fns, budget_s=autotune.BUDGET_S):
        calls.append(dict(fns))
        return {name: 0.5 if name == winner else 1.0 for name in fns}

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


@pytest.mark.parametrize("kwargs", [
    dict(stride=1, padding=1, dilation=1, groups=1),
    dict(stride=2, padding=2, dilation=2, groups=1),
    dict(stride=1, padding=1, dilation=1, groups=6),  # depthwise
    dict(stride=2, padding=0, dilation=1, groups=2),
])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_channels_last_kernel_equals_conv2d(kwargs, layout):
    torch.manual_seed(0)
    x = torch.randn(2, 6, 9, 8, dtype=torch.float64).contiguous(memory_format=layout).requires_grad_()
    w = torch.randn(6, 6 // kwargs["groups"], 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, requires_grad=True)
    ref = F.conv2d(x, w, b, **kwargs)
    out = conv2d_channels_last(x, w, b, **kwargs)
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


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("winner", ["gemm", "channels_last"])
def test_tuned_training_graph_equals_eager(monkeypatch, winner, layout):
    _force(monkeypatch, winner)
    eager, tuned = _twins()
    eager.to(memory_format=layout)
    tuned.to(memory_format=layout).train().hybridize()
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
    kernels = {c.node: c.kernel for c in tuned.conv_kernels}
    assert len(kernels) == 5
    expected = {"gemm": {"gemm", "aten"}, "channels_last": {"channels_last"}}[winner]
    assert set(kernels.values()) == expected
    # the graph really calls the chosen kernels (3x3 convolutions stay aten where gemm won)
    targets = [n.target for n in tuned._last_graph.runner.graph.nodes if n.op == "call_function"]
    assert targets.count(KERNELS[winner].fn) == (3 if winner == "gemm" else 5)
    torch.testing.assert_close(tuned.state_dict(), eager.state_dict(), rtol=1e-4, atol=1e-5)


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
    # 3x3 and depthwise have two candidates (aten, channels_last), the 1x1s three
    assert first == 5 and sorted(len(c) for c in calls) == [2, 2, 3, 3, 3]
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
    assert len(choices) == 5
    for c in choices:
        assert "aten" in c.times and c.kernel in c.times
        assert c.kernel == "aten" or c.times[c.kernel] < autotune.MARGIN * c.times["aten"]
    for (name, a), e in zip(_grads(tuned).items(), _grads(eager).values()):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-5, msg=name)
