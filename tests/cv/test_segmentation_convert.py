"""torchvision and GluonCV segmentation weights -> zoo models: same logits (random weights, no downloads)."""
from __future__ import annotations

import json
import lzma
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from toolkit.cv.convert import from_gluoncv, from_torchvision
from toolkit.zoo import WeightsError

tvseg = pytest.importorskip("torchvision.models.segmentation")


def _randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights *and* norm statistics, so a misplaced tensor changes the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


CASES = [
    # ResNet-50 pairs take ~20 s each on a loaded 2-core machine.
    pytest.param("fcn_resnet50", "fcn_resnet50_voc", {"aux_loss": True}, marks=pytest.mark.slow, id="fcn_resnet50"),
    pytest.param("deeplabv3_resnet50", "deeplabv3_resnet50", {"aux_loss": False}, marks=pytest.mark.slow,
                 id="deeplabv3_resnet50"),
    pytest.param("deeplabv3_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large", {"aux_loss": True},
                 id="deeplabv3_mobilenet_v3_large"),
    pytest.param("lraspp_mobilenet_v3_large", "lraspp_mobilenet_v3_large", {}, id="lraspp_mobilenet_v3_large"),
]


@pytest.mark.parametrize("arch,name,extra", CASES)
def test_from_torchvision_same_logits(arch, name, extra):
    torch.manual_seed(0)
    theirs = _randomize(getattr(tvseg, arch)(weights=None, weights_backbone=None, num_classes=5, **extra))
    ours = from_torchvision(theirs.state_dict(), name).eval()
    assert ours.nclass == 5
    assert ours.aux == bool(extra.get("aux_loss", False))
    x = torch.randn(1, 3, 48, 56)
    with torch.no_grad():
        want = theirs(x)["out"]
        got = ours(x)
    assert got.shape == want.shape == (1, 5, 48, 56)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    if "resnet" in arch:
        assert ours.metadata["backbone"].endswith("_v1b")  # torchvision's ResNet is v1b


def test_from_torchvision_segmentation_rejects_other_checkpoint():
    theirs = tvseg.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=3)
    with pytest.raises(WeightsError, match="not a torchvision fcn_resnet50 checkpoint"):
        from_torchvision(theirs.state_dict(), "fcn_resnet50")


# ----------------------------------------------------------------------------- GluonCV (MXNet-made fixtures)
SEG_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "segmentation"
SEG_INDEX = json.loads((SEG_FIXTURES / "gluoncv_segmentation_fixtures.json").read_text())


def _unpack_params(name: str, tmp_path: Path) -> Path:
    out = tmp_path / f"{name}.params"
    with lzma.open(SEG_FIXTURES / SEG_INDEX["models"][name]["params"], "rb") as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return out


@pytest.mark.parametrize("name", sorted(SEG_INDEX["models"]))
def test_from_gluoncv_same_logits(name, tmp_path):
    """GluonCV's (MXNet's) logits, every other pixel, and its argmax everywhere; built with other crop sizes."""
    entry = SEG_INDEX["models"][name]
    io = np.load(SEG_FIXTURES / entry["io"])
    model = from_gluoncv(_unpack_params(name, tmp_path), name).eval()
    assert model.aux and model.metadata["backbone"] == "resnet50_v1s"
    with torch.no_grad():
        got = model(torch.from_numpy(io["x"])).numpy()
    want = io["y_sub"]
    assert got[:, :, ::2, ::2].shape == want.shape and np.abs(want).max() > 0.5
    diff = np.abs(got[:, :, ::2, ::2] - want).max()
    assert diff < 1e-4 * max(1.0, float(np.abs(want).max())), diff
    agree = (got.argmax(1) == io["pred"]).mean()
    assert agree > 0.999, agree  # exact up to near-ties of float rounding


def test_from_gluoncv_segmentation_wrong_family(tmp_path):
    with pytest.raises(WeightsError):
        from_gluoncv(_unpack_params("fcn_resnet50_voc", tmp_path), "psp_resnet50_ade")


def test_multieval_matches_gluoncv(tmp_path):
    """GluonCV's MultiEvalModel (MXNet) on the FCN fixture: padded and sliding-window scales, with flips."""
    from toolkit.cv.models.segmentation import MultiEvalModel

    spec = SEG_INDEX["multieval"]
    data = np.load(SEG_FIXTURES / spec["file"])
    model = from_gluoncv(_unpack_params(spec["model"], tmp_path), spec["model"], base_size=56, crop_size=48).eval()
    scores = MultiEvalModel(model, 21, flip=spec["flip"], scales=spec["scales"])(torch.from_numpy(data["image"])[None])
    got = scores.log().numpy()
    assert got[:, :, ::2, ::2].shape == data["log_scores_sub"].shape
    np.testing.assert_allclose(got[:, :, ::2, ::2], data["log_scores_sub"], rtol=0, atol=2e-4)
    assert (scores.argmax(1).numpy() == data["pred"]).mean() > 0.999


def test_metric_matches_gluoncv():
    """toolkit's SegmentationMetric gives GluonCV's (pixAcc, mIoU) on the recorded updates."""
    from toolkit.cv.metrics import SegmentationMetric

    spec = SEG_INDEX["metric"]
    data = np.load(SEG_FIXTURES / spec["file"])
    metric = SegmentationMetric(spec["nclass"])
    metric.update(torch.from_numpy(data["labels"][0]), torch.from_numpy(data["logits"][0]))
    metric.update(list(data["labels"][1:]), list(data["logits"][1:]))  # GluonCV's per-device lists, numpy
    pix_acc, miou = metric.get()
    assert pix_acc == pytest.approx(spec["pixAcc"], abs=1e-7)
    assert miou == pytest.approx(spec["mIoU"], abs=1e-7)
