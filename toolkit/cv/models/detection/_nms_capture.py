"""``torchvision.ops.nms`` under ``torch.export``: a kept count that may be 0 or 1.

torchvision's meta kernel for ``torchvision::nms`` sizes its output with the deprecated
``create_unbacked_symint()``, whose lower bound defaults to 2; ``torch.export`` then puts a runtime
assertion ``kept >= 2`` into every captured graph, so a hybridized detector (the graph runs as a
``torch.fx`` module) fails on an image where NMS keeps fewer than two boxes, e.g. a Faster R-CNN whose
RoI heads score nothing above ``score_thresh``. The fake implementation registered here is the same
but with the true bound, 0 (the ONNX graph is unchanged: the assertion is not exported).
"""
from __future__ import annotations

import torch
import torchvision  # noqa: F401 - registers the torchvision:: operators first


def _nms_fake(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    torch._check(dets.dim() == 2, lambda: f"boxes should be a 2d tensor, got {dets.dim()}D")
    torch._check(dets.size(1) == 4, lambda: f"boxes should have 4 elements in dimension 1, got {dets.size(1)}")
    torch._check(scores.dim() == 1, lambda: f"scores should be a 1d tensor, got {scores.dim()}")
    torch._check(dets.size(0) == scores.size(0),
                 lambda: f"boxes and scores differ in length: {dets.size(0)} and {scores.size(0)}")
    n = dets.size(0)
    kept = torch.library.get_ctx().new_dynamic_size(min=0, max=n if isinstance(n, int) else None)
    return dets.new_empty(kept, dtype=torch.long)


def register() -> bool:
    """Register the fake implementation once; False where torchvision was built without its operators."""
    if not hasattr(torch.ops.torchvision, "nms"):
        return False
    torch.library.register_fake("torchvision::nms", _nms_fake, allow_override=True)
    return True


REGISTERED = register()
