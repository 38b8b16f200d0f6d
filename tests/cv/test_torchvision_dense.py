"""pretrained="torchvision" for detectors and segmentation models (issue 15): torchvision's weights API
and cache, converted, checked; no download (a seeded checkpoint saved by torchvision itself sits in a
temporary TORCH_HOME under the file name torchvision's weights API expects: no package ships real ones)."""
import pytest
import torch

torchvision = pytest.importorskip("torchvision")

from toolkit.zoo import WeightsError, get_model, list_models  # noqa: E402


def _seeded_checkpoint(tmp_path, monkeypatch, builder, weights):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(5)
    reference = builder(weights=None, weights_backbone=None, num_classes=len(weights.meta["categories"])).eval()
    with torch.no_grad():  # non-trivial norm statistics, so a wrong mapping shows
        for m in reference.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    torch.save(reference.state_dict(), cache / weights.url.rsplit("/", 1)[1])
    return reference


@pytest.mark.slow
def test_segmentation_from_torchvision_weights_api(tmp_path, monkeypatch):
    from torchvision.models import segmentation as tvseg

    weights = tvseg.LRASPP_MobileNet_V3_Large_Weights.DEFAULT
    reference = _seeded_checkpoint(tmp_path, monkeypatch, tvseg.lraspp_mobilenet_v3_large, weights)
    model = get_model("lraspp_mobilenet_v3_large", pretrained="torchvision").eval()
    x = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want, got = reference(x)["out"], model(x)
    assert got.shape == want.shape == (1, 21, 96, 96)
    assert (got - want).abs().max().item() < 1e-4
    meta = model.metadata["weights"]
    assert meta["source"] == "torchvision" and meta["name"] == str(weights)
    assert meta["metrics"] == weights.meta["_metrics"]  # torchvision's published numbers, as published
    assert model.metadata["classes"] == weights.meta["categories"]
    assert "lraspp_mobilenet_v3_large" in list_models(pretrained=True)


@pytest.mark.slow
def test_detector_from_torchvision_weights_api(tmp_path, monkeypatch):
    from torchvision.models import detection as tvdet

    weights = tvdet.SSDLite320_MobileNet_V3_Large_Weights.DEFAULT
    reference = _seeded_checkpoint(tmp_path, monkeypatch, tvdet.ssdlite320_mobilenet_v3_large, weights)
    model = get_model("ssdlite320_mobilenet_v3_large", pretrained="torchvision:COCO_V1").eval()
    ours = model.state_dict()
    theirs = reference.state_dict()
    # every tensor of torchvision's checkpoint landed in the zoo model (same values, same count)
    ours_values = sorted(float(v.double().sum()) for k, v in ours.items() if not k.endswith("num_batches_tracked"))
    theirs_values = sorted(float(v.double().sum()) for k, v in theirs.items() if not k.endswith("num_batches_tracked"))
    assert ours_values == pytest.approx(theirs_values, rel=1e-6, abs=1e-6)
    ids, scores, boxes = model(torch.rand(1, 3, 320, 320))
    assert ids.shape[-1] == 1 and scores.shape[-1] == 1 and boxes.shape[-1] == 4
    assert model.metadata["weights"]["metrics"] == weights.meta["_metrics"]


def test_unpublished_torchvision_weights_are_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsError, match="torchvision publishes no weights 'IMAGENET9K'"):
        get_model("fcn_resnet50_coco", pretrained="torchvision:IMAGENET9K")
