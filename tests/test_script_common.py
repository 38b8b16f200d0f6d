"""scripts.common.fused_options: fused optimizers where torch has them, the same updates."""
from __future__ import annotations

import pytest
import torch

from scripts.common import fused_options


@pytest.mark.parametrize("make", [lambda p, **kw: torch.optim.SGD(p, lr=0.1, momentum=0.9, **kw),
                                  lambda p, **kw: torch.optim.AdamW(p, lr=1e-3, **kw)])
def test_fused_updates_equal_the_default_up_to_rounding(make):
    torch.manual_seed(0)
    fused_model, plain_model = torch.nn.Linear(8, 3), torch.nn.Linear(8, 3)
    plain_model.load_state_dict(fused_model.state_dict())
    options = fused_options(fused_model)
    assert options == {"fused": True}
    fused, plain = make(fused_model.parameters(), **options), make(plain_model.parameters())
    for _ in range(3):
        x = torch.randn(5, 8)
        for model, opt in ((fused_model, fused), (plain_model, plain)):
            opt.zero_grad()
            model(x).square().sum().backward()
            opt.step()
    for a, b in zip(fused_model.parameters(), plain_model.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_no_fused_for_parameters_it_cannot_take():
    model = torch.nn.Linear(2, 2)
    model.register_parameter("count", torch.nn.Parameter(torch.zeros(1, dtype=torch.int64), requires_grad=False))
    assert fused_options(model) == {}
