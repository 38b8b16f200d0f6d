"""Issue 11: a hybridized model returns on an empty batch what eager returns."""
from __future__ import annotations

import torch

from toolkit.nn.autotune import conv2d_gemm


def test_conv2d_gemm_on_an_empty_batch():
    w = torch.randn(6, 4, 1, 1)
    out = conv2d_gemm(torch.zeros(0, 4, 5, 5), w, stride=2)
    assert out.shape == (0, 6, 3, 3)
    ref = torch.nn.functional.conv2d(torch.zeros(0, 4, 5, 5), w, stride=2)
    assert out.shape == ref.shape


def test_hybridized_model_on_an_empty_batch():
    from toolkit.zoo import get_model

    torch.manual_seed(0)
    model = get_model("mobilenetv3_small", classes=5).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        eager = model(x[:0])
        model.hybridize()
        model(x)
        hybrid = model(x[:0])
    assert eager.shape == hybrid.shape == (0, 5)
