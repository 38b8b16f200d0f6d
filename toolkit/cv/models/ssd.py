"""SSD (Liu et al. 2016) as GluonCV builds it, and torchvision's SSDlite-MobileNetV3.

* Features: a classification-zoo backbone cut at two strides (:class:`BackboneFeatures`),
  or VGG-16 atrous (:class:`~toolkit.cv.models.vgg.VGGAtrous`) for SSD-300, then extra
  stride-2 blocks (GluonCV's ``FeatureExpander``: 1x1 conv to ``max(min_depth, f * reduce_ratio)``
  + BN + ReLU, 3x3/2 conv to ``f`` + BN + ReLU; defaults 128 and 1.0, and MXNet's symbol BatchNorm
  epsilon 1e-3).
* Heads: one 3x3 convolution per feature map for class scores (background first) and box offsets.
* Anchors: GluonCV's ``SSDAnchorGenerator`` (per position: ``sizes[i]`` with each ratio and
  ``sqrt(sizes[i] * sizes[i+1])`` at ratio 1, centers ``(j + 0.5) * step``), center form, pixels.
* Training mode returns GluonCV's ``(cls_preds (B, N, C+1), box_preds (B, N, 4), anchors (1, N, 4))``;
  :class:`SSDTargetGenerator` + :class:`SSDMultiBoxLoss` turn them and padded labels into a loss.
* Eval mode: softmax, boxes decoded with stds (0.1, 0.1, 0.2, 0.2), per-class NMS 0.45 over the
  400 best candidates, 100 detections (GluonCV's defaults).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import box_iou

from ...zoo import Weights, register_model
from .detection._backbone import BackboneFeatures, build_backbone
from .detection._base import ClassLayer, Detector, detection_preprocessing, fashion_scenes_weights
from .detection._boxes import NormalizedBoxCenterCoder, center_to_corner, fixed_detections
from .detection._classes import COCO_CLASSES, VOC_CLASSES

__all__ = ["SSD", "SSDLite", "SSDMultiBoxLoss", "SSDTargetGenerator", "ssd_anchors"]


def ssd_anchors(feature_sizes: Sequence[tuple[int, int]], sizes: Sequence[float], ratios: Sequence[Sequence[float]],
                steps: Sequence[float], offset: float = 0.5, device=None) -> torch.Tensor:
    """GluonCV's SSD anchors for all feature maps: (N, 4) ``cx, cy, w, h`` in input pixels.

    Layer ``i`` uses ``sizes[i]`` and ``sizes[i + 1]``; order: row, column, anchor.
    """
    out = []
    for (fh, fw), (s0, s1), rs, step in zip(feature_sizes, zip(sizes[:-1], sizes[1:]), ratios, steps):
        wh = [(s0 * math.sqrt(rs[0]), s0 / math.sqrt(rs[0])), (math.sqrt(s0 * s1),) * 2]
        wh += [(s0 * math.sqrt(r), s0 / math.sqrt(r)) for r in rs[1:]]
        wh_t = torch.tensor(wh, dtype=torch.float32, device=device)  # (A, 2)
        cy = (torch.arange(fh, dtype=torch.float32, device=device) + offset) * step
        cx = (torch.arange(fw, dtype=torch.float32, device=device) + offset) * step
        gy, gx = torch.meshgrid(cy, cx, indexing="ij")
        centers = torch.stack([gx, gy], -1).reshape(-1, 1, 2).expand(-1, wh_t.shape[0], 2)
        out.append(torch.cat([centers, wh_t.expand(centers.shape[0], -1, 2)], -1).reshape(-1, 4))
    return torch.cat(out, 0)


def _flatten_pred(x: torch.Tensor, width: int) -> torch.Tensor:
    # (B, A*width, H, W) -> (B, H*W*A, width): GluonCV's transpose(0, 2, 3, 1) + flatten
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, width)


def _extra_block(cin: int, f: int, norm: bool = True, reduce_ratio: float = 1.0, min_depth: int = 128,
                 eps: float = 1e-3) -> nn.Sequential:
    # GluonCV's FeatureExpander: the 1x1 transition has max(min_depth, round(f * reduce_ratio)) channels,
    # and its BatchNorms are MXNet symbol BatchNorms (eps 1e-3; fix_gamma, so a converted gamma is 1)
    mid = max(int(min_depth), int(round(f * reduce_ratio)))
    layers: list[nn.Module] = [nn.Conv2d(cin, mid, 1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(mid, eps=eps))
    layers += [nn.ReLU(inplace=True), nn.Conv2d(mid, f, 3, 2, 1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(f, eps=eps))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class SSD(Detector):
    """Single-shot multibox detector.

    Parameters
    ----------
    features : nn.Module
        Returns a list of feature maps (channels in ``features.channels``).
    extras : nn.ModuleList
        Blocks applied one after the other to the last feature map, each output a further map.
    extra_channels : sequence of int
        Output channels of ``extras``.
    sizes : sequence of float
        Anchor sizes in pixels, one more than the feature maps.
    ratios : sequence of sequence of float
        Aspect ratios per feature map (first should be 1).
    steps : sequence of float
        Anchor center spacing per feature map, in pixels.
    classes : sequence of str
        Class names.
    data_shape : int
        Input side the anchors were designed for (metadata; any size runs).
    nms_thresh, nms_topk, post_nms, score_thresh : float, int, int, float
        Post-processing (GluonCV's defaults 0.45, 400, 100, 0.01).
    in_channels : int
        Image channels.
    """

    def __init__(self, features: nn.Module, extras: nn.ModuleList, extra_channels: Sequence[int],
                 sizes: Sequence[float], ratios: Sequence[Sequence[float]], steps: Sequence[float],
                 classes: Sequence[str], data_shape: int = 512, nms_thresh: float = 0.45, nms_topk: int = 400,
                 post_nms: int = 100, score_thresh: float = 0.01, in_channels: int = 3) -> None:
        super().__init__(classes, in_channels, data_shape)
        channels = list(features.channels) + list(extra_channels)
        if not (len(channels) == len(ratios) == len(steps) == len(sizes) - 1):
            raise ValueError(f"{len(channels)} feature maps need as many ratios and steps and one more size; got "
                             f"{len(ratios)} ratios, {len(steps)} steps, {len(sizes)} sizes")
        self.features, self.extras = features, extras
        self.channels = channels
        self.sizes, self.ratios, self.steps = [float(s) for s in sizes], [list(r) for r in ratios], list(steps)
        self.num_anchors = [len(r) + 1 for r in ratios]
        self.nms_thresh, self.nms_topk, self.post_nms, self.score_thresh = nms_thresh, nms_topk, post_nms, score_thresh
        self.coder = NormalizedBoxCenterCoder()
        self.box_predictors = nn.ModuleList(nn.Conv2d(c, a * 4, 3, 1, 1) for c, a in zip(channels, self.num_anchors))
        self._build_class_layers(self.num_class)
        for m in self.box_predictors:
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)

    def _build_class_layers(self, num_classes: int) -> None:
        self.class_predictors = nn.ModuleList(
            nn.Conv2d(c, a * (num_classes + 1), 3, 1, 1) for c, a in zip(self.channels, self.num_anchors))
        for m in self.class_predictors:
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)

    def _class_layers(self) -> list[ClassLayer]:
        return [ClassLayer(f"class_predictors.{i}", groups=a, extra=1) for i, a in enumerate(self.num_anchors)]

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = list(self.features(x))
        y = feats[-1]
        for block in self.extras:
            y = block(y)
            feats.append(y)
        return feats

    def anchors(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """(1, N, 4) center-form anchors for these feature maps."""
        sizes = [(int(f.shape[-2]), int(f.shape[-1])) for f in feats]
        return ssd_anchors(sizes, self.sizes, self.ratios, self.steps, device=feats[0].device).unsqueeze(0)

    def forward(self, data: torch.Tensor):
        self._check(data)
        feats = self.feature_maps(data)
        cls_preds = torch.cat([_flatten_pred(p(f), self.num_class + 1) for p, f in zip(self.class_predictors, feats)], 1)
        box_preds = torch.cat([_flatten_pred(p(f), 4) for p, f in zip(self.box_predictors, feats)], 1)
        anchors = self.anchors(feats)
        if self.training:
            return cls_preds, box_preds, anchors
        scores = F.softmax(cls_preds, dim=-1)[..., 1:]
        boxes = self.coder.decode(box_preds, anchors)
        return fixed_detections(boxes, scores, self.score_thresh, self.nms_thresh, self.nms_topk, self.post_nms)


def _pairwise_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """``torchvision.ops.box_iou`` (same operations in the same order, so the same values) on one
    coordinate at a time: 2-D broadcasts instead of box_iou's (N, M, 2) ones, 3x faster at SSD's sizes."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    w = (torch.minimum(boxes1[:, None, 2], boxes2[None, :, 2])
         - torch.maximum(boxes1[:, None, 0], boxes2[None, :, 0])).clamp_(min=0)
    h = (torch.minimum(boxes1[:, None, 3], boxes2[None, :, 3])
         - torch.maximum(boxes1[:, None, 1], boxes2[None, :, 1])).clamp_(min=0)
    inter = w * h
    return inter / (area1[:, None] + area2[None, :] - inter)


class SSDTargetGenerator:
    """Anchor matching for SSD training (GluonCV's ``SSDTargetGenerator`` semantics), batched on tensors.

    Each ground-truth box takes its best-overlapping anchor (bipartite step), then every other anchor
    whose best IoU is at least ``iou_thresh`` takes that box. Matched anchors get ``class + 1`` and
    encoded offsets, the rest background (0). Padding rows (class -1) and degenerate boxes are ignored.
    Where two boxes share their best anchor, the later box (in label order) keeps it.

    Parameters
    ----------
    iou_thresh : float
        IoU at which an anchor matches.
    stds : sequence of 4 float
        Box encoding scales.
    batched : bool, default True
        Match the whole batch with one IoU matrix (B, N, M). ``False`` matches image by image, the
        definition the batched path is tested against (same targets, 3-4x slower at batch 16).
    """

    def __init__(self, iou_thresh: float = 0.5, stds: Sequence[float] = (0.1, 0.1, 0.2, 0.2),
                 batched: bool = True) -> None:
        self.iou_thresh = iou_thresh
        self.coder = NormalizedBoxCenterCoder(stds)
        self.batched = batched

    @torch.no_grad()
    def __call__(self, anchors: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``anchors`` (1 or B, N, 4) center form, ``labels`` (B, M, >=5) padded with -1 ->
        ``cls_targets`` (B, N) int64, ``box_targets`` (B, N, 4)."""
        if labels.dim() != 3 or labels.shape[-1] < 5:
            raise ValueError(f"labels must be (B, M, 5 or 6), got {tuple(labels.shape)}")
        anchors = anchors.reshape(-1, 4)
        if self.batched:
            return self._match_batch(anchors, labels.to(anchors.device).float())
        return self._match_per_image(anchors, labels)

    def _match_per_image(self, anchors: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        corners = center_to_corner(anchors)
        batch, n = labels.shape[0], anchors.shape[0]
        cls_t = torch.zeros(batch, n, dtype=torch.long, device=anchors.device)
        box_t = torch.zeros(batch, n, 4, device=anchors.device)
        for b in range(batch):
            lab = labels[b].to(anchors.device).float()
            valid = (lab[:, 4] >= 0) & (lab[:, 2] > lab[:, 0]) & (lab[:, 3] > lab[:, 1])
            gt = lab[valid]
            if gt.shape[0] == 0:
                continue
            iou = box_iou(corners, gt[:, :4])  # (N, G)
            best_iou, best_gt = iou.max(dim=1)
            matched = best_iou >= self.iou_thresh
            forced = iou.argmax(dim=0)  # each gt's best anchor
            # index_put with repeated indices: the last gt sharing an anchor keeps it (the rule _match_batch
            # spells out)
            best_gt[forced] = torch.arange(gt.shape[0], device=gt.device)
            matched[forced] = True
            cls_t[b] = torch.where(matched, gt[best_gt, 4].long() + 1, 0)
            box_t[b] = torch.where(matched[:, None], self.coder.encode(gt[best_gt, :4], anchors), 0.0)
        return cls_t, box_t

    def _match_batch(self, anchors: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, m, n = labels.shape[0], labels.shape[1], anchors.shape[0]
        valid = (labels[..., 4] >= 0) & (labels[..., 2] > labels[..., 0]) & (labels[..., 3] > labels[..., 1])
        if m == 0 or not bool(valid.any()):
            return (torch.zeros(batch, n, dtype=torch.long, device=anchors.device),
                    torch.zeros(batch, n, 4, device=anchors.device))
        # one (B*M, N) IoU matrix with box_iou's arithmetic (the same values as per image), each row
        # contiguous over anchors; ignored rows get -1, below any IoU, so neither reduction picks them while
        # the valid rows keep their order (ties resolve as per image)
        iou = _pairwise_iou(labels[..., :4].reshape(-1, 4), center_to_corner(anchors)).reshape(batch, m, n)
        iou = torch.where(valid[..., None], iou, -1.0)  # (B, M, N)
        best_iou, best_gt = iou.max(dim=1)  # (B, N)
        matched = best_iou >= self.iou_thresh
        forced = iou.argmax(dim=2)  # (B, M): each gt's best anchor
        # an anchor that is the best of several gts goes to the last of them: scatter gt indices in order
        # (scatter_reduce "amax" makes the rule explicit instead of relying on write order)
        last = torch.full((batch, n), -1, dtype=torch.long, device=anchors.device)
        order = torch.arange(m, device=anchors.device).expand(batch, m)
        last.scatter_reduce_(1, forced, torch.where(valid, order, -1), reduce="amax")
        is_forced = last >= 0
        best_gt = torch.where(is_forced, last, best_gt)
        matched |= is_forced
        rows = (best_gt + (torch.arange(batch, device=anchors.device) * m)[:, None]).reshape(-1)
        gt_cls = labels[..., 4].reshape(-1).index_select(0, rows).reshape(batch, n)
        gt_box = labels[..., :4].reshape(-1, 4).index_select(0, rows).reshape(batch, n, 4)
        cls_t = torch.where(matched, gt_cls.long() + 1, 0)
        box_t = torch.where(matched[..., None], self.coder.encode(gt_box, anchors), 0.0)
        return cls_t, box_t


class SSDMultiBoxLoss(nn.Module):
    """GluonCV's ``SSDMultiBoxLoss``: softmax cross-entropy with hard negative mining + smooth L1.

    Negatives (target 0) are ranked by their cross-entropy; the hardest ``negative_mining_ratio`` times the
    positives of each image count. Both terms are divided by the positives of the whole batch; a batch
    without positives gives a zero loss that still back-propagates (GluonCV does the same).

    Returns
    -------
    sum_loss, cls_loss, box_loss : Tensor
        Per image, (B,) each; ``sum_loss.sum()`` is what to back-propagate.
    """

    def __init__(self, negative_mining_ratio: float = 3, rho: float = 1.0, lambd: float = 1.0) -> None:
        super().__init__()
        self.negative_mining_ratio, self.rho, self.lambd = negative_mining_ratio, rho, lambd

    def forward(self, cls_preds: torch.Tensor, box_preds: torch.Tensor, cls_targets: torch.Tensor,
                box_targets: torch.Tensor):
        pos = cls_targets > 0
        num_pos = pos.sum()
        if int(num_pos) == 0:
            zero = (cls_preds.sum(dim=(1, 2)) + box_preds.sum(dim=(1, 2))) * 0.0
            return zero, zero, zero
        ce = F.cross_entropy(cls_preds.transpose(1, 2), cls_targets.clamp(min=0), reduction="none")  # (B, N)
        neg = cls_targets == 0
        score = torch.where(neg, ce.detach(), torch.full_like(ce, -1.0))
        rank = score.argsort(dim=1, descending=True).argsort(dim=1)
        hard = neg & (rank < (pos.sum(dim=1, keepdim=True) * self.negative_mining_ratio))
        cls_loss = torch.where(pos | hard, ce, 0.0).sum(dim=1) / num_pos
        box = F.smooth_l1_loss(box_preds, box_targets, reduction="none", beta=self.rho).sum(-1)
        box_loss = torch.where(pos, box, 0.0).sum(dim=1) / num_pos
        return cls_loss + self.lambd * box_loss, cls_loss, box_loss


# ------------------------------------------------------------------------------------------------ builders
_RATIOS = [[1, 2, 0.5]] + [[1, 2, 0.5, 3, 1.0 / 3]] * 3 + [[1, 2, 0.5]] * 2
_SIZES_512 = [51.2, 102.4, 189.4, 276.4, 363.52, 450.6, 492]
_STEPS_512 = [16, 32, 64, 128, 256, 512]


def _names(classes: Sequence[str] | None, default: Sequence[str]) -> Sequence[str]:
    return default if classes is None else classes


def ssd_512(backbone: str | nn.Module, classes: Sequence[str], pretrained_base: bool | str = False,
            norm_layer=None, reduce_ratio: float = 1.0, min_depth: int = 128,
            filters: Sequence[int] = (512, 512, 256, 256), base_strides: Sequence[int] = (16, 32),
            sizes: Sequence[float] | None = None, extra_bn_eps: float = 1e-3, **kwargs: Any) -> SSD:
    """SSD-512 on a classification-zoo backbone cut at ``base_strides`` (GluonCV: 16 and 32), with 4 extra
    blocks (``filters`` channels, GluonCV's ``get_ssd`` argument: 512, 512, 256, 256).

    ``data_shape`` (default 512) scales GluonCV's anchor sizes for other input sizes; ``sizes`` (7 values,
    pixels) replaces them. Each extra block halves the last map, so the anchor steps are ``base_strides``
    followed by doublings, capped at ``data_shape`` (a 1x1 map's anchors sit at the image center).
    ``reduce_ratio`` and ``min_depth`` size the extra blocks' 1x1 transitions as GluonCV's ``SSD`` does
    (``max(min_depth, f * reduce_ratio)``), and ``extra_bn_eps`` is their BatchNorms' epsilon (GluonCV's
    symbol BatchNorm: 1e-3); ``reduce_ratio=0.5, extra_bn_eps=1e-5`` give the extras of toolkit models
    built before the GluonCV converter (``ssd_128_*``).
    """
    base_kw = {} if norm_layer is None else {"norm_layer": norm_layer}
    if len(base_strides) != 2 or base_strides[1] != 2 * base_strides[0]:
        raise ValueError(f"base_strides must be two strides, the second twice the first, got {base_strides}")
    feats = BackboneFeatures(build_backbone(backbone, pretrained_base, **base_kw), strides=tuple(base_strides),
                             in_channels=kwargs.get("in_channels", 3))
    filters = [int(f) for f in filters]
    extras, cin = [], feats.channels[-1]
    for f in filters:
        extras.append(_extra_block(cin, f, reduce_ratio=reduce_ratio, min_depth=min_depth, eps=extra_bn_eps))
        cin = f
    kwargs.setdefault("data_shape", 512)
    if sizes is None:  # GluonCV's sizes for 512-pixel inputs, scaled to data_shape
        sizes = [s * kwargs["data_shape"] / 512 for s in _SIZES_512]
    # below 512 the last maps shrink to 1x1 before the strides reach 512: a 1x1 map's anchor center is the
    # image center (step = data_shape), not (256, 256) or beyond the image
    steps = [min(base_strides[0] * 2 ** i, kwargs["data_shape"]) for i in range(len(_STEPS_512))]
    return SSD(feats, nn.ModuleList(extras), filters, sizes, _RATIOS, steps, classes, **kwargs)


#: Anchor sizes of the small-input SSD (``ssd_128_*``), as fractions of the input side: items of about
#: 15-50 % of the image (as in ``fashion-scenes``) each get several anchors at IoU >= 0.5 on the stride-8 map.
_SIZES_SMALL = (0.16, 0.28, 0.41, 0.53, 0.70, 0.86, 1.0)


def ssd_small(backbone: str | nn.Module, classes: Sequence[str], **kwargs: Any) -> SSD:
    """SSD for small inputs (default 128 px): :func:`ssd_512` cut at strides 8 and 16 (a 16x16 first map at
    128 px instead of 8x8) with anchor sizes ``_SIZES_SMALL`` times ``data_shape``."""
    kwargs.setdefault("data_shape", 128)
    # our own model, trained before the GluonCV converter changed ssd_512's extras: keep its f/2 transitions
    # and PyTorch's BatchNorm epsilon so its zoo weights load and evaluate as they were trained
    kwargs.setdefault("reduce_ratio", 0.5)
    kwargs.setdefault("extra_bn_eps", 1e-5)
    kwargs.setdefault("sizes", [round(f * kwargs["data_shape"], 2) for f in _SIZES_SMALL])
    return ssd_512(backbone, classes, base_strides=(8, 16), **kwargs)


def ssd_300_vgg16_atrous(classes: Sequence[str], pretrained_base: bool | str = False, **kwargs: Any) -> SSD:
    from .vgg import VGGAtrous

    feats = VGGAtrous(build_backbone("vgg16", pretrained_base))
    specs = [(256, 512, 2, 1), (128, 256, 2, 1), (128, 256, 1, 0), (128, 256, 1, 0)]
    extras, cin = [], feats.channels[-1]
    for mid, out, stride, pad in specs:
        extras.append(nn.Sequential(nn.Conv2d(cin, mid, 1), nn.ReLU(inplace=True),
                                    nn.Conv2d(mid, out, 3, stride, pad), nn.ReLU(inplace=True)))
        cin = out
    kwargs.setdefault("data_shape", 300)
    sizes = [s * kwargs["data_shape"] / 300 for s in (30, 60, 111, 162, 213, 264, 315)]
    return SSD(feats, nn.ModuleList(extras), [s[1] for s in specs], sizes, _RATIOS,
               [8, 16, 32, 64, 100, 300], classes, **kwargs)


_META = {"family": "ssd", "paper": "https://arxiv.org/abs/1512.02325"}


@register_model(name="ssd_300_vgg16_atrous_voc", task="detection", metadata=_META)
def ssd_300_vgg16_atrous_voc(classes: Sequence[str] | None = None, **kwargs: Any) -> SSD:
    """SSD-300 on VGG-16 atrous, 20 VOC classes. Keyword arguments go to :class:`SSD` (``pretrained_base``)."""
    return ssd_300_vgg16_atrous(_names(classes, VOC_CLASSES), **kwargs)


@register_model(name="ssd_300_vgg16_atrous_coco", task="detection", metadata=_META)
def ssd_300_vgg16_atrous_coco(classes: Sequence[str] | None = None, **kwargs: Any) -> SSD:
    """SSD-300 on VGG-16 atrous, 80 COCO classes."""
    return ssd_300_vgg16_atrous(_names(classes, COCO_CLASSES), **kwargs)


@register_model(name="ssd_512_resnet50_v1_voc", task="detection", metadata=_META)
def ssd_512_resnet50_v1_voc(classes: Sequence[str] | None = None, backbone: str | nn.Module = "resnet50_v1",
                            **kwargs: Any) -> SSD:
    """SSD-512 on ResNet-50 v1 (any zoo backbone through ``backbone=``), 20 VOC classes."""
    return ssd_512(backbone, _names(classes, VOC_CLASSES), **kwargs)


@register_model(name="ssd_512_resnet50_v1_coco", task="detection", metadata=_META)
def ssd_512_resnet50_v1_coco(classes: Sequence[str] | None = None, backbone: str | nn.Module = "resnet50_v1",
                             **kwargs: Any) -> SSD:
    """SSD-512 on ResNet-50 v1, 80 COCO classes."""
    return ssd_512(backbone, _names(classes, COCO_CLASSES), **kwargs)


@register_model(name="ssd_512_mobilenet1.0_voc", task="detection", metadata=_META)
def ssd_512_mobilenet1_0_voc(classes: Sequence[str] | None = None, backbone: str | nn.Module = "mobilenet1.0",
                             **kwargs: Any) -> SSD:
    """SSD-512 on MobileNet 1.0 (any zoo backbone through ``backbone=``), 20 VOC classes."""
    return ssd_512(backbone, _names(classes, VOC_CLASSES), **kwargs)


@register_model(name="ssd_512_mobilenet1.0_coco", task="detection", metadata=_META)
def ssd_512_mobilenet1_0_coco(classes: Sequence[str] | None = None, backbone: str | nn.Module = "mobilenet1.0",
                              **kwargs: Any) -> SSD:
    """SSD-512 on MobileNet 1.0, 80 COCO classes."""
    return ssd_512(backbone, _names(classes, COCO_CLASSES), **kwargs)


@register_model(
    name="ssd_128_mobilenet0.25_voc", task="detection", metadata=_META,
    # Numbers as the run in model_zoo_logs/<log>/ wrote them (tests/core/test_zoo.py compares them).
    weights=[fashion_scenes_weights(
        "detection/ssd_128_mobilenet0.25-fashion-scenes", sha256="7fda9e163180a9470b5d7d957859826aabdd10b5081cfde62bbf2c915e406efa",
        metrics={'voc07_map': 62.24, 'coco_map': 39.44}, size=128, data_shape=128)],
)
def ssd_128_mobilenet0_25_voc(classes: Sequence[str] | None = None, backbone: str | nn.Module = "mobilenet0.25",
                              **kwargs: Any) -> SSD:
    """Small-input SSD (:func:`ssd_small`, 128 px) on MobileNet 0.25, 20 VOC classes (not a GluonCV model).

    ``pretrained=True`` loads the ``fashion-scenes`` zoo row's weights (its ten classes; trained from random
    weights, ``model_zoo_logs/detection/ssd_128_mobilenet0.25-fashion-scenes``).
    """
    return ssd_small(backbone, _names(classes, VOC_CLASSES), **kwargs)


@register_model(name="ssd_128_mobilenet0.25_coco", task="detection", metadata=_META)
def ssd_128_mobilenet0_25_coco(classes: Sequence[str] | None = None, backbone: str | nn.Module = "mobilenet0.25",
                               **kwargs: Any) -> SSD:
    """Small-input SSD (128 px) on MobileNet 0.25, 80 COCO classes (not a GluonCV model)."""
    return ssd_small(backbone, _names(classes, COCO_CLASSES), **kwargs)


# ------------------------------------------------------------------------------------------------ SSDlite
class _SSDLiteFeatures(nn.Module):
    """torchvision's SSDlite MobileNetV3 features from a zoo MobileNetV3: the C4 block is split after its
    expansion layer (MobileNetV3 paper, section 6.3); returns the two maps (strides 16 and 32)."""

    def __init__(self, mnv3: nn.Module) -> None:
        super().__init__()
        from .mobilenetv3 import MobileNetV3Unit

        mods = [m for m in mnv3.features if not isinstance(m, nn.AdaptiveAvgPool2d)]
        c4 = max(i for i, m in enumerate(mods) if isinstance(m, MobileNetV3Unit) and m.conv1.conv.stride[0] == 2)
        unit = mods[c4]
        if unit.expand is None:
            raise ValueError("the C4 block of this MobileNetV3 has no expansion layer to split at")
        self.stage1 = nn.Sequential(*mods[:c4], unit.expand)
        tail = [unit.conv1] + ([unit.se] if unit.se is not None else []) + [unit.conv2]
        self.stage2 = nn.Sequential(*tail, *mods[c4 + 1:])
        self.channels = [unit.expand.conv.out_channels, mods[-3].out_channels]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c4 = self.stage1(x)
        return [c4, self.stage2(c4)]


class SSDLite(SSD):
    """torchvision's ``ssdlite320_mobilenet_v3_large`` with the toolkit's output contract.

    Built from torchvision's generic SSD parts (``SSDLiteHead``, ``DefaultBoxGenerator``) on a zoo
    MobileNetV3; its post-processing is torchvision's (boxes clipped to the image, per-class top 300 above
    0.001, NMS 0.55, 300 detections). Inputs are normalised with mean = std = 0.5, as torchvision does.
    """

    def __init__(self, classes: Sequence[str], data_shape: int = 320, in_channels: int = 3,
                 score_thresh: float = 0.001, nms_thresh: float = 0.55, topk_candidates: int = 300,
                 post_nms: int = 300, width_mult: float = 1.0) -> None:
        from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
        from torchvision.models.detection.ssdlite import SSDLiteHead
        from torchvision.ops.misc import Conv2dNormActivation

        from .mobilenetv3 import LARGE_CONFIG, MobileNetV3

        Detector.__init__(self, classes, in_channels, data_shape,
                          detection_preprocessing(data_shape, [0.5] * 3, [0.5] * 3))
        norm = functools.partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
        # torchvision's reduced tail (used when no backbone weights are given): last stage halved
        config = [*LARGE_CONFIG[:-3], (5, 672, 80, True, "hswish", 2), (5, 480, 80, True, "hswish", 1),
                  (5, 480, 80, True, "hswish", 1)]
        self.features = _SSDLiteFeatures(MobileNetV3(config, 480, 1280, multiplier=width_mult,
                                                     in_channels=in_channels, norm_layer=norm))
        extra, cin = [], self.features.channels[-1]
        for out in (512, 256, 256, 128):
            mid = out // 2
            extra.append(nn.Sequential(
                Conv2dNormActivation(cin, mid, 1, norm_layer=norm, activation_layer=nn.ReLU6),
                Conv2dNormActivation(mid, mid, 3, stride=2, groups=mid, norm_layer=norm, activation_layer=nn.ReLU6),
                Conv2dNormActivation(mid, out, 1, norm_layer=norm, activation_layer=nn.ReLU6)))
            cin = out
        self.extras = nn.ModuleList(extra)
        for m in self.extras.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.03)
        self.channels = self.features.channels + [512, 256, 256, 128]
        self.anchor_generator = DefaultBoxGenerator([[2, 3] for _ in range(6)], min_ratio=0.2, max_ratio=0.95)
        self.num_anchors = self.anchor_generator.num_anchors_per_location()
        self._norm = norm
        self.score_thresh, self.nms_thresh, self.topk_candidates, self.post_nms = (
            score_thresh, nms_thresh, topk_candidates, post_nms)
        self.coder = NormalizedBoxCenterCoder(clip=math.log(1000.0 / 16))
        self._build_class_layers(self.num_class)

    def _build_class_layers(self, num_classes: int) -> None:
        from torchvision.models.detection.ssdlite import SSDLiteClassificationHead, SSDLiteHead

        if not hasattr(self, "head"):
            self.head = SSDLiteHead(self.channels, self.num_anchors, num_classes + 1, self._norm)
            return
        # only the last 1x1 convolution of each branch depends on the classes (the depthwise part is kept)
        fresh = SSDLiteClassificationHead(self.channels, self.num_anchors, num_classes + 1, self._norm)
        for branch, new in zip(self.head.classification_head.module_list, fresh.module_list):
            branch[1] = new[1]
        self.head.classification_head.num_columns = num_classes + 1

    def _class_layers(self) -> list[ClassLayer]:
        return [ClassLayer(f"head.classification_head.module_list.{i}.1", groups=a, extra=1)
                for i, a in enumerate(self.num_anchors)]

    def anchors(self, feats: Sequence[torch.Tensor], image: torch.Tensor | None = None) -> torch.Tensor:
        from torchvision.models.detection.image_list import ImageList
        from .detection._boxes import corner_to_center

        if image is None:
            raise ValueError("SSDLite.anchors needs the input image (its size scales the default boxes)")
        # DefaultBoxGenerator reads the image size from the tensor itself
        boxes = self.anchor_generator(ImageList(image[:1], [tuple(image.shape[-2:])]), list(feats))[0]
        return corner_to_center(boxes).unsqueeze(0)

    def forward(self, data: torch.Tensor):
        self._check(data)
        feats = self.feature_maps(data)
        out = self.head(feats)
        cls_preds, box_preds = out["cls_logits"], out["bbox_regression"]
        anchors = self.anchors(feats, data)
        if self.training:
            return cls_preds, box_preds, anchors
        h, w = data.shape[-2], data.shape[-1]
        boxes = self.coder.decode(box_preds, anchors)
        boxes = torch.stack([boxes[..., 0].clamp(0, w), boxes[..., 1].clamp(0, h),
                             boxes[..., 2].clamp(0, w), boxes[..., 3].clamp(0, h)], -1)
        scores = F.softmax(cls_preds, dim=-1)[..., 1:]
        return fixed_detections(boxes, scores, self.score_thresh, self.nms_thresh, -1, self.post_nms,
                                per_class_topk=self.topk_candidates)


@register_model(name="ssdlite320_mobilenet_v3_large", task="detection",
                metadata={"family": "ssdlite", "paper": "https://arxiv.org/abs/1905.02244"})
def ssdlite320_mobilenet_v3_large(classes: Sequence[str] | None = None, **kwargs: Any) -> SSDLite:
    """torchvision's SSDlite-320 on MobileNetV3-Large (reduced tail), 80 COCO classes by default."""
    return SSDLite(_names(classes, COCO_CLASSES), **kwargs)
