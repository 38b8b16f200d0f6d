"""Vision model zoo: names, architecture facts, hybridize and ONNX export per family."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from toolkit.deploy import load
from toolkit.zoo import get_model, list_models

torch.set_num_threads(2)

REQUIRED = [
    *(f"resnet{d}_v{v}" for d in (18, 34, 50, 101, 152) for v in (1, 2)),
    *(f"resnet{d}_v1b" for d in (18, 34, 50, 101, 152)),
    *(f"resnet{d}_v1{x}" for d in (50, 101, 152) for x in "cdes"),
    "resnext50_32x4d", "resnext101_32x4d", "se_resnet50_v1", "se_resnet101_v1", "se_resnet50_v2",
    "mobilenet0.25", "mobilenet0.5", "mobilenet0.75", "mobilenet1.0",
    "mobilenetv2_0.25", "mobilenetv2_0.5", "mobilenetv2_0.75", "mobilenetv2_1.0",
    "mobilenetv3_large", "mobilenetv3_small",
    *(f"cifar_resnet{d}_v{v}" for d in (20, 56, 110) for v in (1, 2)),
    "cifar_wideresnet16_10", "cifar_wideresnet28_10", "resnet50_v1b_gn",
]


def _randomise_norms(model: nn.Module) -> nn.Module:
    """Non-trivial norm statistics, so eval-mode outputs depend on every layer."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            if m.weight is not None:
                m.weight.data.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.data.copy_(torch.rand(m.bias.shape, generator=gen) * 0.4 - 0.2)
    return model


def test_all_required_names_listed():
    names = set(list_models(task="classification"))
    missing = [n for n in REQUIRED if n not in names]
    assert not missing, missing
    assert get_model("ResNet50_V1D").metadata["name"] == "resnet50_v1d"  # case-insensitive


def test_unknown_name_suggests_close_ones():
    with pytest.raises(ValueError, match="closest names: .*resnet50_v1d"):
        get_model("resnet50_v1x")


# Parameter counts of torchvision's models of the same architecture (weights=None).
TORCHVISION_COUNTS = {
    "resnet18_v1b": 11689512,
    "resnet50_v1b": 25557032,
    "resnet101_v1b": 44549160,
    "resnet152_v1b": 60192808,
    "resnext50_32x4d": 25028904,
    "mobilenetv2_1.0": 3504872,
    "mobilenetv3_large": 5483032,
    "mobilenetv3_small": 2542856,
}


@pytest.mark.parametrize("name", sorted(TORCHVISION_COUNTS))
def test_parameter_count_matches_torchvision(name):
    import torchvision

    tv_name = {"resnet18_v1b": "resnet18", "resnet50_v1b": "resnet50", "resnet101_v1b": "resnet101",
               "resnet152_v1b": "resnet152", "mobilenetv2_1.0": "mobilenet_v2",
               "mobilenetv3_large": "mobilenet_v3_large", "mobilenetv3_small": "mobilenet_v3_small"}.get(name, name)
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        ours = sum(p.numel() for p in get_model(name).parameters())
    assert ours == TORCHVISION_COUNTS[name]
    if name in ("resnet18_v1b", "mobilenetv3_small", "mobilenetv2_1.0"):  # also re-measure a few
        with torch.device("meta"):
            ref = getattr(torchvision.models, tv_name)(weights=None)
        assert ours == sum(p.numel() for p in ref.parameters())


@pytest.mark.parametrize(
    "name",
    ["resnet101_v1", "resnet152_v2", "resnet101_v1d", "resnet152_v1s", "se_resnet101_v1", "resnext101_32x4d",
     "cifar_resnet110_v2", "cifar_wideresnet28_10", "resnet101_v1b_gn"],
)
def test_deep_variants_build(name):
    with torch.device("meta"):
        model = get_model(name, classes=10)
    count = sum(p.numel() for p in model.parameters())
    assert count > 1_000_000
    head = model.output if hasattr(model, "output") else model.fc
    assert head.out_features == 10


def test_v1_and_v1b_bottleneck_differ_where_gluoncv_says():
    with torch.device("meta"):
        v1 = get_model("resnet50_v1")
        v1b = get_model("resnet50_v1b")
    block_v1 = v1.features[5][0]  # first block of stage 2
    assert block_v1.body[0].stride == (2, 2) and block_v1.body[3].stride == (1, 1)
    assert block_v1.body[0].bias is not None and block_v1.body[6].bias is not None  # GluonCV 1x1 convs have bias
    block_v1b = v1b.layer2[0]
    assert block_v1b.conv1.stride == (1, 1) and block_v1b.conv2.stride == (2, 2)
    assert all(m.bias is None for m in v1b.modules() if isinstance(m, nn.Conv2d))


def test_v1c_v1d_v1e_v1s_stems_and_shortcuts():
    with torch.device("meta"):
        c, d, e, s = (get_model(f"resnet50_v1{x}") for x in "cdes")
    assert [m.out_channels for m in c.conv1 if isinstance(m, nn.Conv2d)] == [32, 32, 64]
    assert [m.out_channels for m in e.conv1 if isinstance(m, nn.Conv2d)] == [64, 64, 128]
    assert isinstance(d.layer2[0].downsample[0], nn.AvgPool2d) and d.layer2[0].downsample[1].stride == (1, 1)
    assert isinstance(e.layer3[0].downsample[0], nn.AvgPool2d)
    assert isinstance(c.layer2[0].downsample[0], nn.Conv2d) and c.layer2[0].downsample[0].stride == (2, 2)
    assert isinstance(s.layer2[0].downsample[0], nn.Conv2d) and s.bn1.num_features == 128


def test_last_gamma_zeroes_last_norm_of_each_branch():
    model = get_model("resnet50_v1d", last_gamma=True)
    assert all(torch.all(b.bn3.weight == 0) for layer in (model.layer1, model.layer4) for b in layer)
    assert torch.all(model.layer1[0].bn1.weight == 1)
    model = get_model("resnet18_v1", last_gamma=True)
    assert torch.all(model.features[4][0].body[4].weight == 0)
    assert not torch.all(get_model("resnet18_v1").features[4][0].body[4].weight == 0)
    wrn = get_model("resnext50_32x4d", last_gamma=True)
    assert torch.all(wrn.features[4][0].body[7].weight == 0)


def test_mobilenetv3_matches_paper_structure():
    small = get_model("mobilenetv3_small")
    units = [m for m in small.features if m.__class__.__name__ == "MobileNetV3Unit"]
    assert len(units) == 11
    assert units[0].expand is None and units[0].se is not None and units[0].se.conv1.out_channels == 8
    assert isinstance(units[3].conv1.act, nn.Hardswish) and isinstance(units[1].conv1.act, nn.ReLU)
    assert isinstance(units[0].se.act2, nn.Hardsigmoid)
    assert small.head[1].out_features == 1024 and get_model("mobilenetv3_large").head[1].out_features == 1280


def test_metadata_contract():
    for name, shape, resize in [("resnet18_v1b", [3, 224, 224], 256), ("cifar_resnet20_v1", [3, 32, 32], 0)]:
        model = get_model(name)
        meta = model.metadata
        assert meta["task"] == "classification" and meta["input_shape"] == shape
        pre = meta["preprocessing"]
        assert pre["type"] == "image" and pre["layout"] == "NCHW" and pre["color"] == "RGB"
        assert pre["resize"] == resize and pre["crop"] == shape[1:] and pre["scale"] == 255.0
        assert len(pre["mean"]) == len(pre["std"]) == 3 and pre["interpolation"] == "bilinear"
        assert type(model).input_names == ("data",) and type(model).output_names == ("logits",)
    assert get_model("cifar_resnet20_v1").metadata["classes"][0] == "airplane"
    assert get_model("resnet18_v1b").metadata["classes"] is None
    gray = get_model("cifar_resnet20_v1", in_channels=1, classes=10).metadata
    assert gray["preprocessing"]["color"] == "L" and len(gray["preprocessing"]["mean"]) == 1
    assert gray["input_shape"] == [1, 32, 32] and gray["classes"] is None


def test_bad_inputs_give_clear_errors():
    model = get_model("cifar_resnet20_v1").eval()
    with pytest.raises(ValueError, match="1 input channel|3 input channel"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="4-d NCHW"):
        model(torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match="classes"):
        get_model("resnet18_v1", classes=0)


def test_norm_layer_injection_groupnorm():
    def gn(c, affine=True):
        return nn.GroupNorm(4, c, affine=affine)

    for name in ("cifar_resnet20_v2", "resnet18_v1b", "mobilenet0.25", "resnet18_v2"):
        model = get_model(name, norm_layer=gn, classes=5).eval()
        # only v2's input norm (no affine part) may fall back to BatchNorm: GroupNorm(4) cannot take 3 channels
        assert not any(isinstance(m, nn.BatchNorm2d) and m.affine for m in model.modules())
        assert any(isinstance(m, nn.GroupNorm) for m in model.modules())
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 5)


# One representative per family, in a shallow configuration of the family's class (capture and
# ONNX export cost grows with the number of layers); the zoo builders are covered above.
def _families():
    from toolkit.cv.models import (
        CIFARResNetV1,
        CIFARResNetV2,
        CIFARWideResNet,
        MobileNetV3,
        ResNetV1,
        ResNetV1b,
        ResNetV2,
        ResNeXt,
    )
    from toolkit.cv.models.mobilenetv3 import SMALL_CONFIG
    from toolkit.cv.models.resnet import BasicBlockV2, BottleneckV1
    from toolkit.cv.models.resnetv1b import BottleneckV1b

    return {
        "cifar_resnet_v1": (lambda: CIFARResNetV1([1, 1, 1], [16, 16, 32, 64]), (32, 28)),
        "cifar_resnet_v2_gray": (lambda: CIFARResNetV2([1, 1, 1], [16, 16, 32, 64], in_channels=1), (28, 32)),
        "cifar_wideresnet": (lambda: CIFARWideResNet([1, 1, 1], [16, 32, 64, 128], dropout=0.3), (32, 28)),
        "resnet_v1_se_bottleneck": (
            lambda: ResNetV1(BottleneckV1, [1, 1, 1, 1], [16, 64, 128, 256, 512], classes=7, use_se=True), (32, 64)),
        "resnet_v2_thumbnail": (
            lambda: ResNetV2(BasicBlockV2, [1, 1, 1, 1], [16, 16, 32, 64, 128], thumbnail=True, classes=7), (32, 48)),
        "resnet_v1d": (
            lambda: ResNetV1b(BottleneckV1b, [1, 1, 1, 1], classes=5, deep_stem=True, stem_width=16, avg_down=True,
                              last_gamma=True, final_drop=0.2), (32, 64)),
        "se_resnext": (lambda: ResNeXt([1, 1, 1, 1], 8, 4, classes=10, use_se=True), (32, 40)),
        "mobilenet0.25": (lambda: get_model("mobilenet0.25", classes=10), (32, 64)),
        "mobilenetv2_0.25": (lambda: get_model("mobilenetv2_0.25", classes=10), (32, 64)),
        "mobilenetv3_small_0.5": (lambda: MobileNetV3(SMALL_CONFIG, 576, 1024, multiplier=0.5, classes=10), (32, 64)),
    }


FAMILIES = ["cifar_resnet_v1", "cifar_resnet_v2_gray", "cifar_wideresnet", "resnet_v1_se_bottleneck",
            "resnet_v2_thumbnail", "resnet_v1d", "se_resnext", "mobilenet0.25", "mobilenetv2_0.25",
            "mobilenetv3_small_0.5"]


@pytest.mark.parametrize("family", FAMILIES)
def test_family_forward_hybridize_export(family, tmp_path):
    torch.manual_seed(0)
    factory, sizes = _families()[family]
    model = _randomise_norms(factory()).eval()
    c, classes = model.in_channels, model.classes
    with torch.no_grad():
        for s in sizes:
            y = model(torch.randn(2, c, s, s))
            assert y.shape == (2, classes) and torch.isfinite(y).all() and y.std() > 0
        x = torch.randn(3, c, sizes[0], sizes[0])
        eager = model(x)
        model.hybridize()
        hybrid = model(x)
        assert model.graph is not None
        torch.testing.assert_close(hybrid, eager, atol=1e-5, rtol=1e-5)
        model.hybridize(False)
    meta = model.export(str(tmp_path / "m"), example_inputs=(torch.randn(2, c, sizes[0], sizes[0]),))
    assert meta["inputs"][0]["name"] == "data" and meta["outputs"][0]["name"] == "logits"
    assert meta["preprocessing"]["mean"] and meta["task"] == "classification"
    runner = load(tmp_path / "m")
    got = runner(x)  # another batch size than the export's
    torch.testing.assert_close(got, eager, atol=1e-4 * (1 + eager.abs().max().item()), rtol=1e-4)


def test_wideresnet_dropout_active_only_in_training():
    model = get_model("cifar_wideresnet16_10", dropout=0.5)
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    model.train()
    torch.manual_seed(0)
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))
    assert not any(isinstance(m, nn.Dropout) for m in get_model("cifar_wideresnet16_10").modules())
