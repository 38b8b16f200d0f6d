"""plot_bbox draws what it is given: box outlines where the boxes are, nothing for filtered boxes."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from toolkit.cv.utils import plot_bbox  # noqa: E402

H, W = 100, 120


def _render(img, *args, **kw) -> np.ndarray:
    fig = plt.figure(figsize=(W / 100, H / 100), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.axis("off")
    out = plot_bbox(img, *args, ax=ax, **kw)
    assert out is ax
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return np.asarray(Image.open(buf).convert("RGB")).astype(int)


def _is(px, rgb, tol=40):
    """Pixels of a pure colour (or grey), allowing for antialiasing: the named channels dominate."""
    rgb = np.array(rgb)
    if (rgb == rgb[0]).all():
        return np.abs(px - rgb).max(-1) < tol
    on, off = px[..., rgb > 0].min(-1), px[..., rgb == 0].max(-1)
    return on - off > 100


def test_plot_bbox_draws_outlines_only_for_kept_boxes():
    img = torch.full((3, H, W), 128, dtype=torch.uint8)  # CHW tensor, as the datasets give
    boxes = torch.tensor([[20, 30, 70, 80], [80, 55, 110, 95], [5, 85, 30, 98]], dtype=torch.float32)
    labels = torch.tensor([[0], [1], [-1]])
    scores = torch.tensor([[0.9], [0.3], [0.99]])
    colors = {0: (255, 0, 0), 1: (0, 0, 255), -1: (0, 255, 0)}
    px = _render(img, boxes[None], scores[None], labels[None], colors=colors, class_names=["a", "b"])
    red = _is(px, (255, 0, 0))
    # the left and right edges of box 0 are red over their whole height, its inside stays grey
    assert red[35:75, 18:23].any(axis=1).all() and red[35:75, 67:73].any(axis=1).all()
    assert _is(px[45:65, 30:60], (128, 128, 128)).all()
    # box 1 scores below thresh, box 2 is padding: neither drawn
    assert not _is(px, (0, 0, 255)).any() and not _is(px, (0, 255, 0)).any()
    # drawing all of them with thresh=0 shows the blue box
    px = _render(img, boxes, scores, labels, thresh=0.2, colors=colors)
    assert _is(px[60:90, 78:83], (0, 0, 255)).any(axis=1).all()


def test_plot_bbox_relative_coordinates_and_hwc_float():
    img = np.full((H, W, 3), 0.5)
    px = _render(img, np.array([[0.25, 0.5, 0.75, 0.9]]), labels=np.array([0]), colors={0: "red"},
                 absolute_coordinates=False)
    red = _is(px, (255, 0, 0))
    assert red[55:85, 28:33].any(axis=1).all() and not red[:, :20].any()


def test_plot_bbox_bad_input():
    with pytest.raises(ValueError, match="bboxes must have shape"):
        plot_bbox(np.zeros((H, W, 3), np.uint8), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="2 labels for 1 bboxes"):
        plot_bbox(np.zeros((H, W, 3), np.uint8), np.zeros((1, 4)), labels=[0, 1])
    with pytest.raises(ValueError, match="img must be"):
        plot_bbox(np.zeros((0, W, 3), np.uint8), np.zeros((0, 4)))
    ax = plot_bbox(np.zeros((H, W, 3), np.uint8), np.zeros((0, 4)))  # no boxes: just the image
    assert not ax.patches
    plt.close("all")
