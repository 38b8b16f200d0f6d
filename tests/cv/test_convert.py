"""Weight converters: torchvision state dicts and GluonCV .params files, output for output."""
from __future__ import annotations

import json
import lzma
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from toolkit.cv.convert import (
    ParamsFormatError,
    from_gluoncv,
    from_torchvision,
    read_params,
)
from toolkit.zoo import WeightsError, get_model

torch.set_num_threads(2)

FIXTURES = Path(__file__).parent / "fixtures"
INDEX = json.loads((FIXTURES / "gluoncv_fixtures.json").read_text())


def _randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random norm statistics and affine parameters, so every tensor matters in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=gen) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=gen) * 0.4 - 0.2)
            elif isinstance(m, (nn.Linear, nn.Conv2d)) and m.bias is not None:
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) * 0.2 - 0.1)
    return model


# ----------------------------------------------------------------------------- torchvision

TV = [
    ("resnet18", "resnet18_v1b", 64),
    ("resnet50", "resnet50_v1b", 64),
    ("resnext50_32x4d", "resnext50_32x4d", 64),
    ("mobilenet_v2", "mobilenetv2_1.0", 64),
    ("mobilenet_v3_large", "mobilenetv3_large", 64),
    ("mobilenet_v3_small", "mobilenetv3_small", 96),
]


@pytest.mark.parametrize("tv_name,name,size", TV, ids=[t[1] for t in TV])
def test_from_torchvision_same_logits(tv_name, name, size):
    import torchvision

    torch.manual_seed(0)
    ref = _randomise(getattr(torchvision.models, tv_name)(weights=None, num_classes=13)).eval()
    model = from_torchvision(ref.state_dict(), name).eval()
    assert model.classes == 13
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        want, got = ref(x), model(x)
    assert want.abs().max() > 1e-2  # a comparison of near-zero outputs would prove nothing
    assert (got - want).abs().max().item() < 1e-4


def test_from_torchvision_resnet_variants_and_grayscale(tmp_path):
    import torchvision
    from safetensors.torch import save_file

    for depth in (34, 101, 152):  # names line up for every depth; build-only check of the mapping
        ref = getattr(torchvision.models, f"resnet{depth}")(weights=None, num_classes=3)
        assert from_torchvision(ref, f"resnet{depth}_v1b").fc.out_features == 3
    ref = torchvision.models.resnet18(weights=None, num_classes=4)
    ref.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    ref = _randomise(ref).eval()
    save_file(ref.state_dict(), str(tmp_path / "r18.safetensors"))
    model = from_torchvision(tmp_path / "r18.safetensors", "resnet18_v1b").eval()
    assert model.metadata["preprocessing"]["color"] == "L"
    x = torch.randn(1, 1, 40, 40)
    with torch.no_grad():
        assert (model(x) - ref(x)).abs().max().item() < 1e-4


def test_from_torchvision_errors():
    import torchvision

    sd = torchvision.models.resnet18(weights=None).state_dict()
    with pytest.raises(ValueError, match="no torchvision counterpart"):
        from_torchvision(sd, "resnet18_v1")
    with pytest.raises(WeightsError, match="not a torchvision resnet34 checkpoint: missing"):
        from_torchvision(sd, "resnet34_v1b")
    renamed = {k.replace("layer1.", "stage1."): v for k, v in sd.items()}
    with pytest.raises(WeightsError, match="unexpected.*stage1"):
        from_torchvision(renamed, "resnet18_v1b")
    bad = dict(sd)
    bad["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    with pytest.raises(WeightsError, match="layer1.0.conv1.weight"):
        from_torchvision(bad, "resnet18_v1b")
    with pytest.raises(WeightsError, match="not found"):
        from_torchvision("/nonexistent/file.pth", "resnet18_v1b")


# ----------------------------------------------------------------------------- GluonCV


def _unpack(name: str, tmp_path: Path) -> Path:
    entry = INDEX["models"][name]
    target = tmp_path / (name + ".params")
    with lzma.open(FIXTURES / entry["params"]) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return target


def test_fixture_index_records_versions():
    assert INDEX["mxnet"] == "1.9.1" and INDEX["numpy"] == "1.23.5"
    assert INDEX["gluoncv_dist"].startswith("0.10.5")
    total = sum(p.stat().st_size for p in FIXTURES.iterdir())
    assert total < 16 * 2**20


@pytest.mark.parametrize("name", sorted(INDEX["models"]))
def test_from_gluoncv_same_outputs(name, tmp_path):
    entry = INDEX["models"][name]
    io = np.load(FIXTURES / entry["io"])
    model = from_gluoncv(_unpack(name, tmp_path), name).eval()
    with torch.no_grad():
        got = model(torch.from_numpy(io["x"])).numpy()
    want = io["y"]
    assert got.shape == want.shape
    assert np.abs(want).max() > 1e-2
    diff = np.abs(got - want).max()
    assert diff < 1e-4 * max(1.0, float(np.abs(want).max())), diff


def test_gluoncv_parameter_counts_match():
    """Trainable parameter counts equal GluonCV's, plus the biases we add where GluonCV had none."""
    for name, count in INDEX["param_counts"].items():
        kwargs = {"last_channels": 1280} if name == "mobilenetv3_small" else {}
        with torch.device("meta"):  # shapes only: no memory, no initialisation cost
            model = get_model(name, **kwargs)
        extra = 0
        if name.startswith("mobilenetv2"):
            extra = model.output.bias.numel()
        elif name.startswith("mobilenetv3"):
            extra = model.head[1].bias.numel()
        ours = sum(p.numel() for p in model.parameters())
        assert ours == count + extra, (name, ours, count, extra)
        del model


def test_read_params_format_and_errors(tmp_path):
    path = _unpack("cifar_resnet20_v1", tmp_path)
    arrays = read_params(path)
    assert list(arrays)[:3] == ["features.0.weight", "features.1.gamma", "features.1.beta"]
    assert arrays["features.0.weight"].shape == (16, 3, 3, 3) and arrays["features.0.weight"].dtype == np.float32
    data = path.read_bytes()
    (tmp_path / "trunc.params").write_bytes(data[: len(data) // 2])
    with pytest.raises(ParamsFormatError, match="truncated"):
        read_params(tmp_path / "trunc.params")
    (tmp_path / "junk.params").write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(ParamsFormatError, match="not an MXNet NDArray list"):
        read_params(tmp_path / "junk.params")
    (tmp_path / "tail.params").write_bytes(data + b"\0")
    with pytest.raises(ParamsFormatError, match="trailing"):
        read_params(tmp_path / "tail.params")
    with pytest.raises(WeightsError, match="truncated"):
        from_gluoncv(tmp_path / "trunc.params", "cifar_resnet20_v1")
    with pytest.raises(FileNotFoundError):
        read_params(tmp_path / "missing.params")


def test_read_params_hand_written_file(tmp_path):
    """A file written from the documented layout (V2 records, float16 and int64) reads back."""
    a = np.arange(6, dtype=np.float16).reshape(2, 3)
    b = np.array([7, -8], dtype=np.int64)
    out = struct.pack("<QQQ", 0x112, 0, 2)
    for arr, flag in ((a, 2), (b, 6)):
        out += struct.pack("<Iii", 0xF993FAC9, 0, arr.ndim) + struct.pack(f"<{arr.ndim}q", *arr.shape)
        out += struct.pack("<iii", 1, 0, flag) + arr.tobytes()
    out += struct.pack("<Q", 2)
    for name in (b"x", b"y"):
        out += struct.pack("<Q", len(name)) + name
    (tmp_path / "h.params").write_bytes(out)
    got = read_params(tmp_path / "h.params")
    np.testing.assert_array_equal(got["x"], a)
    np.testing.assert_array_equal(got["y"], b)
    assert got["x"].dtype == np.float16


def test_from_gluoncv_wrong_model(tmp_path):
    path = _unpack("cifar_resnet20_v1", tmp_path)
    with pytest.raises(WeightsError, match="does not fit"):
        from_gluoncv(path, "cifar_resnet56_v1")
    with pytest.raises(WeightsError, match="does not fit"):
        from_gluoncv(path, "cifar_resnet20_v2")
