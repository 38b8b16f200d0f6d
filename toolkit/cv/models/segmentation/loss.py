"""GluonCV's ``MixSoftmaxCrossEntropyLoss``: pixel-wise softmax cross-entropy, plus the weighted auxiliary loss."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["IGNORE_INDEX", "MixSoftmaxCrossEntropyLoss"]

#: Label of ignored pixels in tensors fed to losses and metrics (255 on disk; see
#: :func:`toolkit.cv.data.segmentation.mask_to_target`).
IGNORE_INDEX = -1


class MixSoftmaxCrossEntropyLoss(nn.Module):
    """Softmax cross-entropy over pixels, ``loss(main) + aux_weight * loss(aux)``.

    Pixels labelled ``ignore_label`` (-1) are left out, and the mean runs over
    the labelled pixels of the batch (the normalisation of the gradient of
    GluonCV's ``SoftmaxOutput(normalization='valid')``).

    Parameters
    ----------
    aux : bool
        Expect ``(main, aux)`` outputs (a model built with ``aux=True`` in training mode).
    aux_weight : float
        Weight of the auxiliary loss (GluonCV's scripts: 0.5).
    ignore_label : int
        Label value of ignored pixels.

    Call with ``(outputs, label)``: ``outputs`` a (N, C, H, W) tensor or a
    tuple/list ``(main, aux)``; ``label`` (N, H, W) integers.
    """

    def __init__(self, aux: bool = True, aux_weight: float = 0.5, ignore_label: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.aux = bool(aux)
        self.aux_weight = float(aux_weight)
        self.ignore_label = int(ignore_label)

    def _single(self, pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        if pred.dim() != 4 or label.dim() != 3 or pred.shape[0] != label.shape[0] or pred.shape[-2:] != label.shape[-2:]:
            raise ValueError(
                f"segmentation loss takes logits (N, C, H, W) and labels (N, H, W) of the same N, H, W; "
                f"got {tuple(pred.shape)} and {tuple(label.shape)}"
            )
        if label.is_floating_point():
            label = label.long()
        bad = (label != self.ignore_label) & ((label < 0) | (label >= pred.shape[1]))
        if bool(bad.any()):
            values = torch.unique(label[bad])[:10].tolist()
            raise ValueError(f"labels {values} are outside the {pred.shape[1]} classes (ignore label "
                             f"{self.ignore_label}); convert stored masks with mask_to_target")
        return F.cross_entropy(pred.float(), label.long(), ignore_index=self.ignore_label)

    def forward(self, outputs: torch.Tensor | Sequence[torch.Tensor], label: torch.Tensor) -> torch.Tensor:
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        if self.aux and len(outputs) > 1:
            return self._single(outputs[0], label) + self.aux_weight * self._single(outputs[1], label)
        return self._single(outputs[0], label)
