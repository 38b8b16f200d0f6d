"""Inference graphs fold batch norm into convolutions, and never run on stale weights."""
import pytest
import torch
from torch import nn

from toolkit.nn import HybridBlock
from toolkit.nn.autotune import ChannelsLastInputs
from toolkit.nn.fold import FoldedGraph

_aten = torch.ops.aten


class ConvNet(HybridBlock):
    """conv(bias) + BN, conv + BN without affine, a depthwise conv + BN, and a BN with no conv before it."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1, bias=True)
        self.b1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.b2 = nn.BatchNorm2d(8, affine=False, eps=1e-3)
        self.b3 = nn.BatchNorm2d(8)  # follows a ReLU: must stay a norm
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = torch.relu(self.b1(self.c1(x)))
        x = self.b3(torch.relu(self.b2(self.c2(x))))
        return self.fc(x.mean((2, 3)))


def _randomise_norms(model: nn.Module) -> None:
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.randn(m.num_features, generator=gen))
                m.bias.data.copy_(torch.randn(m.num_features, generator=gen))


def _eager(model: HybridBlock, x: torch.Tensor) -> torch.Tensor:
    model._hybrid_active = False
    try:
        return model(x)
    finally:
        model._hybrid_active = True


@pytest.fixture
def net() -> ConvNet:
    torch.manual_seed(0)
    model = ConvNet()
    _randomise_norms(model)
    return model.eval().hybridize()


def _graph_runner(model: HybridBlock):
    """The last graph's runner, unwrapped from the channels-last input conversion.

    Autotune races the graph on channels-last inputs and keeps whichever is faster, which
    depends on the machine's load: the folding under test is the same either way.
    """
    runner = model._last_graph.runner
    return runner.runner if isinstance(runner, ChannelsLastInputs) else runner


def _norm_count(runner) -> int:
    module = runner.module if isinstance(runner, FoldedGraph) else runner
    return sum(n.op == "call_function" and n.target is _aten.batch_norm.default for n in module.graph.nodes)


@pytest.mark.parametrize("context", [torch.no_grad, torch.inference_mode])
def test_inference_graph_folds_conv_norm_pairs(net, context):
    x = torch.randn(2, 3, 10, 10)
    with context():
        out = net(x)
        ref = _eager(net, x)
    runner = _graph_runner(net)
    assert isinstance(runner, FoldedGraph) and len(runner.folds) == 2
    assert _norm_count(runner) == 1  # only the norm after the ReLU is left
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_graph_with_gradients_is_not_folded(net):
    x = torch.randn(2, 3, 10, 10, requires_grad=True)
    out = net(x)
    assert not isinstance(_graph_runner(net), FoldedGraph)
    assert _norm_count(_graph_runner(net)) == 3
    out.sum().backward()
    assert x.grad is not None


def test_cached_inference_graph_refolds_after_weights_change(net):
    x = torch.randn(4, 3, 10, 10)
    with torch.no_grad():
        before = net(x).clone()
    graph = net._last_graph
    # an optimizer step through a (separately captured) training graph: new weights and running statistics
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    net.train()
    torch.nn.functional.cross_entropy(net(x), torch.tensor([0, 1, 2, 3])).backward()
    opt.step()
    net.eval()
    with torch.no_grad():
        after = net(x)
        ref = _eager(net, x)
    assert net._last_graph is graph  # the cached graph ran, not a new capture
    assert not torch.allclose(after, before, atol=1e-4)
    torch.testing.assert_close(after, ref, rtol=1e-5, atol=1e-5)
    # load_state_dict copies in place: the folded weights follow too
    state = {k: v + 0.25 if v.is_floating_point() else v for k, v in net.state_dict().items()}
    net.load_state_dict(state)
    with torch.no_grad():
        torch.testing.assert_close(net(x), _eager(net, x), rtol=1e-5, atol=1e-5)


def test_double_precision_and_channels_last(net):
    model = net.double().to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        out = model(x)
        ref = _eager(model, x)
    assert isinstance(_graph_runner(model), FoldedGraph)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


def test_folded_weights_record_no_autograd_graph_and_the_block_copies(net):
    """The refold runs without gradients (torch.inference_mode(False) inside torch.no_grad turned them back
    on: the folded buffers held CopyBackwards nodes, and copy.deepcopy of a hybridized model failed);
    pickle and deepcopy copy a hybridized block without its graphs, and the copy hybridizes again."""
    import copy
    import pickle

    x = torch.randn(2, 3, 10, 10)
    with torch.no_grad():
        net(x)
    runner = _graph_runner(net)
    assert isinstance(runner, FoldedGraph)
    assert all(not b.requires_grad and b.grad_fn is None for b in runner.module.buffers())
    net.train()
    net(x).sum().backward()  # a training graph captured too
    net.eval()
    with torch.no_grad():
        want = net(x)
        for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
            assert clone._last_graph is None and clone._hybrid_active
            torch.testing.assert_close(clone(x), want, rtol=1e-5, atol=1e-5)
            assert isinstance(_graph_runner(clone), FoldedGraph)  # captured anew
    assert net._last_graph is not None  # the original keeps its graphs
