"""The published segmentation rows: ``get_model(name, pretrained=True)`` scores each row's own
centre-crop validation numbers on the real ``fashion-scenes`` val set."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from toolkit.cv.metrics import SegmentationMetric
from toolkit.cv.presets.segmentation import segmentation_val
from toolkit.zoo import get_model

ROOT = Path(__file__).resolve().parents[2]
ROWS = sorted(p for p in (ROOT / "model_zoo_logs" / "segmentation").iterdir() if (p / "metrics.json").is_file())


@pytest.fixture(scope="module")
def scenes_val(tmp_path_factory) -> Path:
    from toolkit.cv.data import MissingDatasetError, build_fashion_scenes

    try:
        # A val canvas depends only on the seed and its index, so this is the rows' val set
        # (same pixel and annotation sha256) without rendering the 8,000 training canvases.
        return build_fashion_scenes(tmp_path_factory.mktemp("rows") / "fashion_scenes", num_train=1, num_val=1000)
    except MissingDatasetError:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")


def test_there_are_rows():
    assert len(ROWS) >= 2


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools
@pytest.mark.parametrize("row", ROWS, ids=lambda p: p.name)
def test_pretrained_row_scores_its_val_numbers(row: Path, scenes_val: Path):
    from toolkit.cv.data.segmentation import FashionScenesSegmentation

    metrics = json.loads((row / "metrics.json").read_text())
    if not (row / metrics["weights"]).is_file():
        pytest.skip(f"{row.name}: weights published by sha256 only, not in this checkout")
    model = get_model(metrics["model"], pretrained=True).eval()
    assert model.crop_size == metrics["kwargs"]["crop_size"] and model.base_size == metrics["kwargs"]["base_size"]
    val = FashionScenesSegmentation("val", root=scenes_val)
    preset = segmentation_val(model.crop_size, model.nclass)
    metric = SegmentationMetric(model.nclass)
    with torch.no_grad():
        for start in range(0, len(val), 50):
            images, masks = zip(*(preset(*val[i]) for i in range(start, min(start + 50, len(val)))))
            metric.update(torch.stack(masks), model(torch.stack(images)))
    pix_acc, miou = metric.get()
    # the row's numbers are rounded to 0.01; CPUs differ in the last bits, which moves a few pixels only
    assert 100 * pix_acc == pytest.approx(metrics["pixAcc"], abs=0.05)
    assert 100 * miou == pytest.approx(metrics["mIoU"], abs=0.1)
