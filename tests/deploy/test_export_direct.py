"""The direct ONNX preparation (toolkit.deploy._onnx_prepare): same graphs and answers as torch.onnx's
decompositions where it applies, torch.onnx's own path where it does not (issue 16, export time)."""
from collections import Counter

import onnx
import pytest
import torch
from torch import nn

from toolkit.deploy import _onnx_prepare, load
from toolkit.nn import HybridBlock


class ResidualCNN(HybridBlock):
    """What a ResNet is made of: conv + batch norm, in-place ReLU and residual add, global pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 4)
        self.metadata["input_shape"] = [3, 10, 10]
        for bn in (self.bn1, self.bn2):  # non-trivial statistics, so that folding them matters
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(y))
        out += y
        return self.fc(torch.flatten(self.pool(self.relu(out)), 1))


class ViewThenInplace(HybridBlock):
    """An in-place op on a tensor a view was taken of: the view must see the write."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 6)
        self.metadata["input_shape"] = [6]

    def forward(self, x):
        y = self.lin(x)
        head = y[:, :3]
        y.relu_()
        return head * 2 + y[:, 3:]


class MixedDtypes(HybridBlock):
    """A float tensor plus an integer one: torch.onnx's type promotion has to insert a cast."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.metadata["input_shape"] = [4]

    def forward(self, x):
        return self.lin(x) + torch.arange(4)


def export_digests_with_switch(variable: str, tmp_path, monkeypatch) -> dict[str, str]:
    """sha256 of ResidualCNN's ONNX file exported with the switch ``variable`` on ("1") and off ("0").

    Each export checks onnxruntime against eager (``check=True``); the recorded
    digest must be the file's own.
    """
    import hashlib

    torch.manual_seed(0)
    net = ResidualCNN().eval()
    digests = {}
    for mode in ("1", "0"):
        monkeypatch.setenv(variable, mode)
        meta = net.export(str(tmp_path / f"m{mode}"))
        digests[mode] = meta["sha256"]
        assert hashlib.sha256((tmp_path / f"m{mode}.onnx").read_bytes()).hexdigest() == digests[mode]
    return digests


def _export_both(net, tmp_path, monkeypatch):
    """Export ``net`` with the direct preparation and with torch.onnx's; returns both prefixes and paths."""
    out = {}
    for mode in ("1", "0"):
        monkeypatch.setenv("TOOLKIT_EXPORT_DIRECT", mode)
        before = dict(_onnx_prepare.COUNTS)
        meta = net.export(str(tmp_path / f"m{mode}"))  # check=True: onnxruntime vs eager inside
        taken = [k for k, v in _onnx_prepare.COUNTS.items() if v != before[k]]
        out[mode] = (tmp_path / f"m{mode}", meta, taken)
    return out


def _ops(prefix):
    return Counter(n.op_type for n in onnx.load(f"{prefix}.onnx").graph.node)


def test_direct_preparation_gives_the_graph_and_answers_of_the_decompositions(tmp_path, monkeypatch):
    torch.manual_seed(0)
    net = ResidualCNN().eval().hybridize()
    out = _export_both(net, tmp_path, monkeypatch)
    (direct, meta_d, taken_d), (full, meta_f, taken_f) = out["1"], out["0"]
    assert taken_d == ["direct"] and taken_f == []
    assert _ops(direct) == _ops(full)
    assert "BatchNormalization" not in _ops(direct)  # folded by the optimizer, as on torch.onnx's path
    drop = ("sha256", "onnx_file")
    assert {k: v for k, v in meta_d.items() if k not in drop} == {k: v for k, v in meta_f.items() if k not in drop}
    x = torch.randn(5, 3, 10, 10)  # another batch size than the trace's: the batch axis stays dynamic
    with torch.no_grad():
        ref = net(x)
    got_d, got_f = load(direct)(x), load(full)(x)
    torch.testing.assert_close(got_d, got_f, atol=0, rtol=0)
    torch.testing.assert_close(got_d, ref, atol=1e-5, rtol=1e-5)


def test_inplace_write_seen_through_a_view_takes_torch_onnx_path(tmp_path, monkeypatch):
    torch.manual_seed(0)
    net = ViewThenInplace().eval()
    monkeypatch.setenv("TOOLKIT_EXPORT_DIRECT", "1")
    before = dict(_onnx_prepare.COUNTS)
    net.export(str(tmp_path / "m"))  # its onnxruntime check would fail had the relu_ been made functional
    assert _onnx_prepare.COUNTS["full"] == before["full"] + 1
    assert _onnx_prepare.COUNTS["direct"] == before["direct"]
    x = torch.randn(3, 6)
    with torch.no_grad():
        torch.testing.assert_close(load(tmp_path / "m")(x), net(x), atol=1e-5, rtol=1e-5)


def test_type_promotion_runs_only_where_a_cast_is_needed(tmp_path, monkeypatch):
    from torch.onnx._internal.exporter import _registration
    from torch.onnx._internal.fx.passes.type_promotion import InsertTypePromotion

    registry = _registration.ONNXRegistry.from_torchlib()
    for net, needed in ((ResidualCNN().eval(), False), (MixedDtypes().eval(), True)):
        program = torch.export.export(net, net.example_inputs(), strict=False)
        assert _onnx_prepare.prepare_without_retrace(program, registry)
        gm = program.graph_module
        assert _onnx_prepare._promotion_needed(gm) is needed
        nodes = len(gm.graph.nodes)
        with torch.fx.experimental._config.patch(backed_size_oblivious=True):
            InsertTypePromotion(gm).run()
        assert (len(gm.graph.nodes) > nodes) is needed  # the pass agrees: casts inserted exactly when needed
    torch.manual_seed(0)
    net = MixedDtypes().eval()
    out = _export_both(net, tmp_path, monkeypatch)
    x = torch.randn(3, 4)
    torch.testing.assert_close(load(out["1"][0])(x), load(out["0"][0])(x), atol=0, rtol=0)


def test_switch_off(monkeypatch):
    monkeypatch.setenv("TOOLKIT_EXPORT_DIRECT", "0")
    assert not _onnx_prepare.enabled()
    monkeypatch.delenv("TOOLKIT_EXPORT_DIRECT")
    assert _onnx_prepare.enabled()


@pytest.mark.parametrize("refused", ["input", "subgraph"])
def test_graphs_it_does_not_know_are_left_as_captured(refused):
    class WritesInput(nn.Module):
        def forward(self, x):
            x.add_(1)
            return x * 2

    class Cond(nn.Module):
        def forward(self, x):
            return torch.cond(x.sum() > 0, lambda t: t + 1, lambda t: t - 1, (x,))

    from torch.onnx._internal.exporter import _registration

    net = WritesInput() if refused == "input" else Cond()
    program = torch.export.export(net, (torch.randn(2, 3),), strict=False)
    code = program.graph_module.code
    assert not _onnx_prepare.prepare_without_retrace(program, _registration.ONNXRegistry.from_torchlib())
    assert program.graph_module.code == code
