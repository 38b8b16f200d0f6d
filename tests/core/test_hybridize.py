"""HybridBlock: captured graphs give eager answers, recapture instead of failing, name broken blocks."""
import pytest
import torch
from torch import nn

from toolkit.nn import HybridBlock, HybridizeError


class SmallCNN(HybridBlock):
    def __init__(self, classes: int = 5):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, classes)
        self.metadata = {"name": "small_cnn", "input_shape": [3, 12, 12]}

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        return self.fc(x.mean((2, 3)))


class TinyEncoder(HybridBlock):
    """Token ids + mask -> per-token features and a pooled vector (batch and sequence dynamic)."""

    dynamic_axes = {0: "batch", 1: "seq"}

    def __init__(self, vocab: int = 50, dim: int = 16):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.layer = nn.TransformerEncoderLayer(dim, 2, 32, dropout=0.0, batch_first=True)
        self.pool = nn.Linear(dim, dim)

    def forward(self, tokens, mask):
        h = self.layer(self.embed(tokens), src_key_padding_mask=~mask)
        pooled = torch.tanh(self.pool((h * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)))
        return h, pooled

    def example_inputs(self, batch_size: int = 2):
        return torch.randint(0, 50, (batch_size, 7)), torch.ones(batch_size, 7, dtype=torch.bool)


class DataDependent(HybridBlock):
    """Python control flow on a tensor value: torch.export cannot capture it."""

    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x


class Outer(HybridBlock):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(4, 4)
        self.inner = DataDependent()

    def forward(self, x):
        return self.inner(self.head(x))


def test_hybridized_equals_eager_at_several_batch_sizes(seed):
    net = SmallCNN().eval()
    net.hybridize()
    for batch in (2, 3, 8, 1, 5):
        x = torch.randn(batch, 3, 12, 12)
        with torch.no_grad():
            torch.testing.assert_close(net(x), SmallCNN.forward(net, x), atol=1e-5, rtol=1e-5)
    assert net.graph is not None
    assert "conv2d" in str(net.graph)
    # one graph for the dynamic batch, one for batch 1 (torch.export specialises size 1)
    assert sum(len(v) for v in net._graphs.values()) <= 2


def test_new_spatial_size_recaptures_instead_of_failing(seed):
    net = SmallCNN().eval().hybridize()
    net(torch.randn(2, 3, 12, 12))
    x = torch.randn(2, 3, 20, 16)
    with torch.no_grad():
        torch.testing.assert_close(net(x), SmallCNN.forward(net, x), atol=1e-5, rtol=1e-5)
    assert sum(len(v) for v in net._graphs.values()) == 2


def test_text_block_dynamic_batch_and_sequence(seed):
    net = TinyEncoder().eval().hybridize()
    for batch, seq in ((2, 7), (3, 5), (4, 11), (2, 3)):
        tokens = torch.randint(0, 50, (batch, seq))
        mask = torch.ones(batch, seq, dtype=torch.bool)
        mask[0, seq - 1 :] = False
        with torch.no_grad():
            h, pooled = net(tokens, mask)
            h_ref, pooled_ref = TinyEncoder.forward(net, tokens, mask)
        torch.testing.assert_close(h, h_ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(pooled, pooled_ref, atol=1e-5, rtol=1e-5)
    assert sum(len(v) for v in net._graphs.values()) == 1, "batch and sequence length should stay dynamic"


def test_training_through_graph_updates_shared_parameters(seed):
    net = SmallCNN().train()
    ref = SmallCNN().train()
    ref.load_state_dict(net.state_dict())
    net.hybridize()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.1)
    for _ in range(3):
        x = torch.randn(4, 3, 12, 12)
        for model, o in ((net, opt), (ref, opt_ref)):
            o.zero_grad()
            model(x).square().mean().backward()
            o.step()
    for (name, a), b in zip(net.state_dict().items(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, msg=name)


def test_mode_switch_and_dehybridize(seed):
    net = SmallCNN().hybridize()
    x = torch.randn(4, 3, 12, 12)
    net.train()
    net(x)
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x), SmallCNN.forward(net, x))
    net.hybridize(False)
    assert not net.hybridized and net.graph is None


def test_load_state_dict_is_seen_by_captured_graph(seed):
    net = SmallCNN().eval().hybridize()
    x = torch.randn(2, 3, 12, 12)
    net(x)
    other = SmallCNN().eval()
    net.load_state_dict(other.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(net(x), other(x), atol=1e-5, rtol=1e-5)


def test_compile_option(seed):
    net = SmallCNN().eval().hybridize(compile=True)
    x = torch.randn(3, 3, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(net(x), SmallCNN.forward(net, x), atol=1e-5, rtol=1e-5)


def test_capture_error_names_the_offending_block():
    net = Outer().hybridize()
    with pytest.raises(HybridizeError) as info:
        net(torch.randn(2, 4))
    assert info.value.block_path == "inner"
    assert info.value.block_type == "DataDependent"
    assert "inner" in str(info.value) and "DataDependent" in str(info.value)


class ShapeBranch(HybridBlock):
    """Control flow on a size: the capture only holds for one side of the branch."""

    def forward(self, x):
        if x.shape[0] > 4:
            return x * 2
        return x - 1


def test_shape_outside_captured_range_recaptures_never_wrong():
    net = ShapeBranch().hybridize()
    small, large = torch.randn(3, 2), torch.randn(6, 2)
    torch.testing.assert_close(net(small), small - 1)
    torch.testing.assert_close(net(large), large * 2)  # the first graph would give large - 1
    torch.testing.assert_close(net(torch.randn(2, 2)).shape, torch.Size([2, 2]))
    assert sum(len(v) for v in net._graphs.values()) == 2


class TinyLSTM(HybridBlock):
    """nn.LSTM captures with a runtime guard on the sequence length that the ranges do not show."""

    dynamic_axes = {0: "batch", 1: "seq"}

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 8, batch_first=True)

    def forward(self, x):
        return self.lstm(x)[0]


@pytest.mark.filterwarnings("ignore:The tensor attributes")
def test_runtime_guard_failure_recaptures(seed):
    net = TinyLSTM().eval().hybridize()
    with torch.no_grad():
        for batch, seq in ((2, 5), (2, 7), (3, 5), (2, 7)):
            x = torch.randn(batch, seq, 4)
            torch.testing.assert_close(net(x), TinyLSTM.forward(net, x), atol=1e-5, rtol=1e-5)
    graphs = [g for v in net._graphs.values() for g in v]
    assert 2 <= len(graphs) <= 3
    assert any(g.refused for g in graphs)


def test_autocast_runs_through_graphs_of_its_own(seed):
    """torch.autocast applies when a captured graph runs; its graphs and races are not float32's."""
    net = SmallCNN().eval().hybridize(lazy=False)
    x = torch.randn(4, 3, 12, 12)
    with torch.no_grad():
        plain = net(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = net(x)
            raced = net.race_times  # timed in bfloat16: the layout race runs without tuned kernels too
            expected = SmallCNN.forward(net, x)
        after = net(x)
    assert plain.dtype == after.dtype == torch.float32
    assert mixed.dtype == torch.bfloat16
    assert {"as_given", "channels_last"} <= set(raced), raced
    torch.testing.assert_close(mixed, expected, atol=0.05, rtol=0.05)
    torch.testing.assert_close(after, SmallCNN.forward(net, x), atol=1e-5, rtol=1e-5)
    assert len(net._graphs) == 2  # one input signature, two autocast states
    # convolution kernels are timed in float32: under autocast, aten chooses
    with torch.no_grad():
        assert len(net._capture_as_given((x,), {}).kernels) == 1
        with torch.autocast("cpu", dtype=torch.bfloat16):
            graph = net._capture_as_given((x,), {})
            assert graph.kernels == []
            assert graph.runner(x).dtype == torch.bfloat16
