"""The base of every detector: GluonCV's eval-mode output contract, metadata and ``reset_class``."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ....nn import HybridBlock
from ....nn.autotune import _close
from ....zoo import Weights
from ..._blocks import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["ClassLayer", "Detector", "detection_preprocessing", "fashion_scenes_weights", "labels_to_targets",
           "same_detections"]


def detection_preprocessing(size: Sequence[int], mean=IMAGENET_MEAN, std=IMAGENET_STD) -> dict[str, Any]:
    """What a detector expects of an image: resized to ``(h, w)`` (no crop), scaled to [0, 1], normalised."""
    h, w = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
    return {
        "type": "image", "layout": "NCHW", "color": "RGB", "resize": [h, w], "crop": None,
        "interpolation": "bilinear", "scale": 255.0, "mean": list(mean), "std": list(std),
    }


def fashion_scenes_weights(log: str, sha256: str, metrics: Mapping[str, float], size: int | Sequence[int],
                           **kwargs: Any) -> Weights:
    """:class:`~toolkit.zoo.Weights` of a detection zoo row trained on ``fashion-scenes`` (``model_zoo_logs/<log>``).

    The training scripts re-head a ``*_voc`` detector for the set's ten classes and keep its name, as
    GluonCV's scripts do for a custom dataset, so the row's weights are published under that name with
    the class names and input size (``size``: the square input's side, or ``(h, w)``) its ``config.json`` records;
    ``kwargs`` are further builder arguments the weights need (``data_shape=``, ``backbone=`` ...).
    """
    from ...data.scenes import SCENES_CLASSES

    classes = list(SCENES_CLASSES)
    preprocessing = detection_preprocessing(size)
    return Weights(
        sha256=sha256, metrics=dict(metrics), log=log,
        kwargs={"classes": classes, **kwargs},
        metadata={"dataset": "fashion-scenes", "classes": classes, "input_shape": [3, *preprocessing["resize"]],
                  "preprocessing": preprocessing},
    )


class ClassLayer:
    """Where one layer keeps its per-class rows, for :meth:`Detector.reset_class`.

    The layer's output rows are ``groups`` repetitions of ``[extra rows, class 0 rows, class 1 rows ...]``
    with ``width`` rows per class (SSD: ``groups`` = anchors, one background row first; YOLOv3:
    5 box/objectness rows first; R-CNN box regression: ``width`` 4).
    """

    def __init__(self, path: str, groups: int = 1, extra: int = 0, width: int = 1) -> None:
        self.path, self.groups, self.extra, self.width = path, groups, extra, width

    def rows(self, num_classes: int, cls: int) -> list[int]:
        group = self.extra + num_classes * self.width
        return [g * group + self.extra + cls * self.width + r for g in range(self.groups) for r in range(self.width)]


class Detector(HybridBlock):
    """Base of the zoo detectors.

    Eval mode: ``data`` (B, C, H, W) normalised images in, GluonCV's ``(ids, scores, bboxes)``
    of shapes (B, K, 1), (B, K, 1), (B, K, 4) out, best first, padded with -1, boxes
    ``x1, y1, x2, y2`` in input pixels. Training mode: what the family's loss takes.

    Attributes
    ----------
    classes : tuple of str
        Class names (GluonCV's ``net.classes``); ``ids`` index into it.
    num_class : int
        ``len(classes)``.
    """

    input_names = ("data",)
    output_names = ("ids", "scores", "bboxes")

    def __init__(self, classes: Sequence[str], in_channels: int, data_shape: Sequence[int],
                 preprocessing: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.classes = _check_classes(classes)
        self.in_channels = int(in_channels)
        h, w = (int(data_shape), int(data_shape)) if isinstance(data_shape, int) else map(int, data_shape)
        self.metadata.update({
            "task": "detection",
            "input_shape": [self.in_channels, h, w],
            "classes": list(self.classes),
            "num_classes": len(self.classes),
            "preprocessing": preprocessing or detection_preprocessing((h, w)),
            "outputs": {"ids": "(B, K, 1)", "scores": "(B, K, 1)", "bboxes": "(B, K, 4) x1,y1,x2,y2 pixels",
                        "padding": -1},
        })

    @property
    def num_class(self) -> int:
        return len(self.classes)

    def same_outputs(self, out: Any, ref: Any) -> bool:
        """The same detections in another order among equal scores count as the same answer (see
        :func:`same_detections`): how another runtime's graph is checked before it replaces the captured one."""
        return same_detections(out, ref)

    def _check(self, x: torch.Tensor) -> None:
        from ..._blocks import check_input

        check_input(x, self.in_channels, type(self).__name__)

    # ---------------------------------------------------------------- reset_class
    def _class_layers(self) -> list[ClassLayer]:
        """The layers whose rows depend on the classes (families override)."""
        raise NotImplementedError

    def _build_class_layers(self, num_classes: int) -> None:
        """Replace the class-dependent layers by fresh ones for ``num_classes`` classes."""
        raise NotImplementedError

    def reset_class(self, classes: Sequence[str], reuse_weights: Mapping[str, str | int] | Sequence[str] | None = None
                    ) -> "Detector":
        """Re-head the detector for new ``classes`` (GluonCV's ``reset_class``).

        Parameters
        ----------
        classes : sequence of str
            The new class names.
        reuse_weights : dict or sequence, optional
            Classes whose trained rows are kept: ``{new name: old name or old index}``, or a
            list of names present in both the old and the new classes.

        Returns
        -------
        Detector
            ``self``.
        """
        new = _check_classes(classes)
        old = self.classes
        mapping: dict[int, int] = {}
        if reuse_weights is not None:
            pairs = reuse_weights.items() if isinstance(reuse_weights, Mapping) else [(n, n) for n in reuse_weights]
            for new_name, old_ref in pairs:
                if new_name not in new:
                    raise ValueError(f"reuse_weights names {new_name!r}, which is not in the new classes {list(new)}")
                if isinstance(old_ref, int) and not isinstance(old_ref, bool):
                    if not 0 <= old_ref < len(old):
                        raise ValueError(f"reuse_weights index {old_ref} is outside the old {len(old)} classes")
                    old_idx = old_ref
                elif old_ref in old:
                    old_idx = old.index(old_ref)
                else:
                    raise ValueError(f"reuse_weights names {old_ref!r}, which is not an old class ({list(old)})")
                mapping[new.index(new_name)] = old_idx
        layers = self._class_layers()
        saved = {spec.path: {k: v.detach().clone() for k, v in self.get_submodule(spec.path).state_dict().items()}
                 for spec in layers}
        self._build_class_layers(len(new))
        for spec in self._class_layers():
            module = self.get_submodule(spec.path)
            with torch.no_grad():
                for name, param in module.state_dict(keep_vars=True).items():
                    before = saved[spec.path][name]
                    # rows shared by every class (background, box, objectness) are kept too
                    shared_new = [r for r in range(param.shape[0]) if _is_shared(spec, len(new), r)]
                    shared_old = [r for r in range(before.shape[0]) if _is_shared(spec, len(old), r)]
                    for rn, ro in zip(shared_new, shared_old):
                        param[rn] = before[ro]
                    for n_idx, o_idx in mapping.items():
                        param[spec.rows(len(new), n_idx)] = before[spec.rows(len(old), o_idx)]
        self.classes = new
        self.metadata["classes"] = list(new)
        self.metadata["num_classes"] = len(new)
        self._clear_graphs()
        return self


def _is_shared(spec: ClassLayer, num_classes: int, row: int) -> bool:
    return row % (spec.extra + num_classes * spec.width) < spec.extra


def _check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    if isinstance(classes, str) or not isinstance(classes, Sequence):
        raise TypeError(f"classes must be a sequence of class names, not {type(classes).__name__}")
    names = tuple(str(c) for c in classes)
    if not names:
        raise ValueError("classes is empty: a detector needs at least one class")
    if len(set(names)) != len(names):
        raise ValueError(f"classes has duplicate names: {list(names)}")
    return names


def labels_to_targets(labels: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """GluonCV's padded labels (B, M, >=5) ``[x1, y1, x2, y2, class, ...]`` (-1 rows = padding) -> per-image
    ``{"boxes": (n, 4), "labels": (n,) 0-based}``."""
    if labels.dim() != 3 or labels.shape[-1] < 5:
        raise ValueError(f"labels must be (B, M, 5 or 6) [x1, y1, x2, y2, class, difficult], got {tuple(labels.shape)}")
    out = []
    for lab in labels:
        valid = lab[:, 4] >= 0
        out.append({"boxes": lab[valid, :4].float(), "labels": lab[valid, 4].long()})
    return out


def same_detections(out: Any, ref: Any, rtol: float = 1e-4) -> bool:
    """Whether two ``(ids, scores, bboxes)`` outputs of a detector (GluonCV's layout, -1 padding) hold the same
    detections up to float rounding, in any order among equal scores.

    Detections are ranked by score and cut at the best ``K``: where scores tie (common with random
    weights, possible with trained ones), another runtime may list the tied rows in another order, or keep
    another of them at the cut. So per image: the scores (sorted) must agree to rounding; every row of
    ``ref`` must pair with its own row of ``out`` of the same class, score and box, except rows scoring
    as the last one kept (ties at the cut). Anything else than three tensors is compared as is.
    """
    if not (isinstance(out, (tuple, list)) and isinstance(ref, (tuple, list)) and len(out) == len(ref) == 3
            and all(isinstance(t, torch.Tensor) for t in (*out, *ref))):
        return _close(out, ref)
    ids, scores, boxes = out
    rids, rscores, rboxes = ref
    if any(a.shape != b.shape or a.dtype != b.dtype for a, b in zip(out, ref)) or rboxes.dim() != 3:
        return False
    if rids.numel() == 0:
        return True
    score_tol = rtol * (1.0 + float(rscores.abs().max()))
    box_tol = rtol * (1.0 + float(rboxes.abs().max()))
    if not torch.allclose(scores, rscores, rtol=0.0, atol=score_tol):
        return False
    for b in range(rids.shape[0]):
        valid, rvalid = ids[b, :, 0] >= 0, rids[b, :, 0] >= 0
        if not torch.equal(valid, rvalid):
            return False
        n = int(rvalid.sum())
        if n == 0:
            continue
        # pairs (ref row i, out row j) that could be the same detection
        pairs = ((rids[b, :n, 0, None] == ids[b, None, :n, 0])
                 & ((rscores[b, :n, 0, None] - scores[b, None, :n, 0]).abs() <= score_tol)
                 & ((rboxes[b, :n, None, :] - boxes[b, None, :n, :]).abs().amax(-1) <= box_tol))
        free = torch.ones(n, dtype=torch.bool)
        last = float(rscores[b, n - 1, 0])
        for i in range(n):
            options = torch.nonzero(pairs[i] & free).flatten()
            if options.numel():  # greedy is enough: rows that pair with the same ones are interchangeable
                free[options[0]] = False
            elif abs(float(rscores[b, i, 0]) - last) > score_tol:  # unpaired, and not a tie at the cut
                return False
    return True
