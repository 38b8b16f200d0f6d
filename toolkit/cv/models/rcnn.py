"""Faster R-CNN (Ren et al. 2015), with and without FPN (Lin et al. 2017), on torchvision's generic parts.

The region proposal network, RoI sampling, box heads, their losses and the per-class NMS are
torchvision's ``RegionProposalNetwork`` / ``RoIHeads`` / ``AnchorGenerator`` /
``MultiScaleRoIAlign`` / ``FeaturePyramidNetwork``; the backbone is a classification-zoo model cut
into stages (:class:`~toolkit.cv.models.detection.BackboneFeatures`). What is ours: building them
the GluonCV / torchvision way per zoo name, GluonCV's padded labels in, GluonCV's fixed-shape
``(ids, scores, bboxes)`` out, and ``reset_class``.

* ``faster_rcnn_resnet50_v1b_voc`` (GluonCV's C4 model): ResNet-50 v1b to ``layer3`` (stride 16),
  one level of anchors 32..512 x ratios (0.5, 1, 2), RoIAlign 14x14, ``layer4`` + global pooling as
  the box head, NMS 0.3, 300 test proposals.
* ``faster_rcnn_fpn_resnet50_v1b_coco``: ``layer1..layer4`` + FPN (256 channels, max-pool P6),
  one anchor size per level (32..512), RoIAlign 7x7 over P2-P5, two 1024-wide fully connected layers.
* ``fasterrcnn_mobilenet_v3_large_fpn`` / ``fasterrcnn_mobilenet_v3_large_320_fpn``: torchvision's
  models (FPN over the last two MobileNetV3-Large stages, 5 sizes x 3 ratios per position).

Training mode takes ``labels`` (B, M, 6) padded with -1 and returns torchvision's loss dict
(``loss_objectness``, ``loss_rpn_box_reg``, ``loss_classifier``, ``loss_box_reg``): the sampling
and both target generators run inside, as in torchvision.

Eval mode runs the same modules through a batched, fixed-shape path of ours (``torch.export`` /
ONNX-exportable: torchvision's RPN and ``RoIHeads`` loop over images and branch on sizes): per
level top-k proposals of every image, clipped, small or low-scoring ones masked out, one NMS call
for the batch with a group per (image, level) (``toolkit::grouped_nms``: ``batched_nms`` eagerly, one
ONNX ``NonMaxSuppression`` exported), the best
``post_nms_top_n`` per image padded to a fixed count, RoIAlign (``torchvision.ops.roi_align`` ->
ONNX ``RoiAlign``; FPN levels by torchvision's ``LevelMapper``), the box head on every padded
proposal, torchvision's box decoding and :func:`fixed_detections` with the padding masked out.
It computes what torchvision's eval path computes (tests compare both).

``postprocess="gluoncv"`` (set by ``toolkit.cv.convert.from_gluoncv``, recorded in
``metadata["postprocess"]``) swaps in GluonCV's semantics where they differ from torchvision's, so
that converted GluonCV weights give GluonCV's detections (facts from gluoncv 0.10.5's ``rpn`` and
``faster_rcnn`` modules):

* anchors (:class:`GluonCVAnchorGenerator`): Detectron's, centred at ``stride / 2 - 0.5`` with
  rounded shapes (torchvision's are centred at 0);
* proposals: boxes decoded without the ``log(1000 / 16)`` clamp (C4; FPN clamps at 4.14), clipped to
  ``[0, W] x [0, H]``, dropped when ``x2 - x1 + 1`` or ``y2 - y1 + 1`` is under
  ``rpn_min_size`` (16 for C4, 1 for FPN), the best ``pre_nms`` over *all* levels kept and one NMS
  (0.7) across levels (torchvision: per level top-k and per-level NMS);
* RoI level (FPN): ``floor(4 + log2(sqrt((w + 1) (h + 1)) / 224 + 1e-6))`` in ``[2, 5]``;
* detections: boxes decoded with the proposals' clamp and *not* clipped, no small-box removal, scores
  above 0.01, per-class NMS over each class's best ``nms_topk`` (400 for C4; all for FPN);
* FPN models: :class:`GluonCVFPN` (P6 a stride-2 convolution of the last lateral, top-down maps
  upsampled by 2 and cropped) and :class:`GluonCVRPNHead` (a 1024-wide 3x3 convolution).

GluonCV's own output is class-major (all of class 0's rows, then class 1's ...) and also holds
detections of its ``-1`` padding proposals (boxes ``-1, -1, -1, -1``, real scores); ours is the
contract's: the best ``post_nms`` real detections, best first.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead, concat_box_prediction_layers
from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign, roi_align
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
from torchvision.ops.poolers import LevelMapper

from ...zoo import register_model
from .detection._backbone import BackboneFeatures, build_backbone
from .detection._base import ClassLayer, Detector, fashion_scenes_weights, labels_to_targets
from .detection._boxes import fixed_detections, rank_within_image
from .detection._classes import COCO_CLASSES, VOC_CLASSES
from .detection._nms import grouped_nms

__all__ = ["FasterRCNN", "GluonCVAnchorGenerator", "GluonCVFPN", "GluonCVRPNHead", "gluoncv_cell_anchors"]

POSTPROCESS = ("torchvision", "gluoncv")


def gluoncv_cell_anchors(stride: int, sizes: Sequence[float], ratios: Sequence[float]) -> torch.Tensor:
    """GluonCV's (Detectron's) anchors of one feature-map cell, ``(len(ratios) * len(sizes), 4)``, ratio-major.

    A ``stride x stride`` window at the origin is reshaped per ratio (``w = round(sqrt(stride^2 / r))``,
    ``h = round(w * r)``, half to even), scaled by ``size / stride`` and centred at ``(stride - 1) / 2``;
    corners are ``centre -+ (w - 1) / 2`` (inclusive pixel boxes).
    """
    centre = (stride - 1) / 2.0
    rows = []
    for r in ratios:
        w = round(math.sqrt(stride * stride / float(r)))  # Python rounds half to even, as numpy does
        h = round(w * float(r))
        for size in sizes:
            ws, hs = w * size / stride, h * size / stride
            rows.append([centre - (ws - 1) / 2, centre - (hs - 1) / 2, centre + (ws - 1) / 2, centre + (hs - 1) / 2])
    return torch.tensor(rows, dtype=torch.float64).float()


class GluonCVAnchorGenerator(AnchorGenerator):
    """torchvision's ``AnchorGenerator`` with GluonCV's cell anchors and fixed strides.

    Parameters
    ----------
    sizes, aspect_ratios : tuple of tuples
        As torchvision's (one tuple per feature map).
    strides : sequence of int
        Each feature map's stride (GluonCV's are fixed; torchvision divides image by map size).
    """

    def __init__(self, sizes, aspect_ratios, strides: Sequence[int]) -> None:
        super().__init__(sizes, aspect_ratios)
        if len(strides) != len(self.sizes):
            raise ValueError(f"{len(strides)} strides for {len(self.sizes)} anchor levels")
        self.strides = [int(s) for s in strides]
        self.cell_anchors = [gluoncv_cell_anchors(st, s, r)
                             for st, s, r in zip(self.strides, self.sizes, self.aspect_ratios)]

    def forward(self, image_list: ImageList, feature_maps: list[torch.Tensor]) -> list[torch.Tensor]:
        if len(feature_maps) != len(self.strides):
            raise ValueError(f"{len(feature_maps)} feature maps for {len(self.strides)} anchor levels")
        device = feature_maps[0].device
        grid_sizes = [list(f.shape[-2:]) for f in feature_maps]
        strides = [[torch.tensor(s, dtype=torch.int64, device=device)] * 2 for s in self.strides]
        self.set_cell_anchors(feature_maps[0].dtype, device)
        anchors = torch.cat(self.grid_anchors(grid_sizes, strides))
        return [anchors for _ in image_list.image_sizes]


class GluonCVFPN(FeaturePyramidNetwork):
    """GluonCV's ``FPNFeatureExpander`` (``use_p6``, ``p6_conv``) on torchvision's FPN modules.

    The same ``inner_blocks`` (1x1 laterals) and ``layer_blocks`` (3x3) as torchvision's, but the
    top-down path upsamples by 2 (nearest) and crops to the lateral's size, as GluonCV's
    ``UpSampling`` + ``slice_like`` (torchvision resizes to the size: other pixels for odd sizes),
    and ``"pool"`` (P6) is a 3x3 stride-2 convolution of the *lateral* of the last map, not a max-pool.
    """

    def __init__(self, in_channels_list: Sequence[int], out_channels: int) -> None:
        super().__init__(list(in_channels_list), out_channels)
        self.p6 = nn.Conv2d(out_channels, out_channels, 3, 2, 1)

    def forward(self, x: "OrderedDict[str, torch.Tensor]") -> "OrderedDict[str, torch.Tensor]":
        names, feats = list(x.keys()), list(x.values())
        last = self.get_result_from_inner_blocks(feats[-1], -1)
        p6 = self.p6(last)
        results = [self.get_result_from_layer_blocks(last, -1)]
        for i in range(len(feats) - 2, -1, -1):
            lateral = self.get_result_from_inner_blocks(feats[i], i)
            up = last.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
            last = lateral + up[..., :lateral.shape[-2], :lateral.shape[-1]]
            results.insert(0, self.get_result_from_layer_blocks(last, i))
        return OrderedDict([*zip(names, results), ("pool", p6)])


class GluonCVRPNHead(nn.Module):
    """GluonCV's FPN ``RPNHead``: torchvision's ``RPNHead`` layout with a ``channels``-wide 3x3 conv
    (GluonCV's ``rpn_channel``; torchvision's keeps the input width)."""

    def __init__(self, in_channels: int, channels: int, num_anchors: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Sequential(nn.Conv2d(in_channels, channels, 3, 1, 1), nn.ReLU(inplace=True)))
        self.cls_logits = nn.Conv2d(channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(channels, num_anchors * 4, 1)

    def forward(self, x: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        logits, boxes = [], []
        for f in x:
            t = self.conv(f)
            logits.append(self.cls_logits(t))
            boxes.append(self.bbox_pred(t))
        return logits, boxes


class FasterRCNN(Detector):
    """Faster R-CNN with the toolkit's output contract.

    Parameters
    ----------
    backbone : BackboneFeatures
        Feature maps (one for C4 models, several for FPN).
    fpn : FeaturePyramidNetwork, optional
        Applied to the backbone maps (its output keys ``"0", "1", ..., "pool"``).
    rpn : RegionProposalNetwork
    roi_heads : RoIHeads
    classes : sequence of str
    data_shape : int or (int, int)
        Typical input size (metadata).
    postprocess : {"torchvision", "gluoncv"}
        Whose proposal and detection semantics the eval path follows (module docstring); the
        builders set up the anchors and box coders to match. Recorded in ``metadata["postprocess"]``.
    nms_topk : int
        ``"gluoncv"``: best candidates per class kept before the final NMS (``-1``: all).
    """

    def __init__(self, backbone: BackboneFeatures, fpn: nn.Module | None, rpn: RegionProposalNetwork,
                 roi_heads: RoIHeads, classes: Sequence[str], data_shape=(600, 600), in_channels: int = 3,
                 postprocess: str = "torchvision", nms_topk: int = -1) -> None:
        super().__init__(classes, in_channels, data_shape)
        if postprocess not in POSTPROCESS:
            raise ValueError(f"postprocess must be one of {POSTPROCESS}, got {postprocess!r}")
        self.backbone, self.fpn, self.rpn, self.roi_heads = backbone, fpn, rpn, roi_heads
        self.postprocess, self.nms_topk = postprocess, int(nms_topk)
        self.metadata["postprocess"] = postprocess

    def _class_layers(self) -> list[ClassLayer]:
        return [ClassLayer("roi_heads.box_predictor.cls_score", extra=1),
                ClassLayer("roi_heads.box_predictor.bbox_pred", extra=4, width=4)]

    def _build_class_layers(self, num_classes: int) -> None:
        self.roi_heads.box_predictor = FastRCNNPredictor(self.roi_heads.box_predictor.cls_score.in_features,
                                                         num_classes + 1)

    def feature_maps(self, data: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        feats = self.backbone(data)
        maps = OrderedDict((str(i), f) for i, f in enumerate(feats))
        return self.fpn(maps) if self.fpn is not None else maps

    def forward(self, data: torch.Tensor, labels: torch.Tensor | None = None,
                image_sizes: torch.Tensor | None = None):
        """Eval: ``(ids, scores, bboxes)``. Training: the loss dict; needs ``labels``.

        Parameters
        ----------
        data : Tensor
            (B, C, H, W) normalised images (a padded batch).
        labels : Tensor, optional
            (B, M, 5 or 6) ``[x1, y1, x2, y2, class, difficult]`` padded with -1 (training).
        image_sizes : Tensor, optional
            (B, 2) true ``(h, w)`` of each image inside a padded batch (default: the batch's size).
        """
        self._check(data)
        if not self.training:
            return self._detect(data, image_sizes)
        h, w = int(data.shape[-2]), int(data.shape[-1])
        sizes = [(h, w)] * data.shape[0] if image_sizes is None else [(int(a), int(b)) for a, b in image_sizes]
        if labels is None:
            raise ValueError("Faster R-CNN in training mode needs labels (B, M, 6) padded with -1")
        targets = [{"boxes": t["boxes"], "labels": t["labels"] + 1} for t in labels_to_targets(labels)]
        for t in targets:
            keep = (t["boxes"][:, 2] > t["boxes"][:, 0]) & (t["boxes"][:, 3] > t["boxes"][:, 1])
            t["boxes"], t["labels"] = t["boxes"][keep], t["labels"][keep]
        images = ImageList(data, sizes)
        feats = self.feature_maps(data)
        proposals, rpn_losses = self.rpn(images, feats, targets)
        _, det_losses = self.roi_heads(feats, proposals, images.image_sizes, targets)
        return {**rpn_losses, **det_losses}

    def torchvision_eval(self, data: torch.Tensor, image_sizes: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, ...]:
        """The eval output through torchvision's own per-image RPN/``RoIHeads`` (eager only): the reference
        the batched path is tested against."""
        if self.training:
            raise RuntimeError("torchvision_eval needs eval mode")
        h, w = int(data.shape[-2]), int(data.shape[-1])
        sizes = [(h, w)] * data.shape[0] if image_sizes is None else [(int(a), int(b)) for a, b in image_sizes]
        images = ImageList(data, sizes)
        feats = self.feature_maps(data)
        proposals, _ = self.rpn(images, feats)
        detections, _ = self.roi_heads(feats, proposals, images.image_sizes)
        return _pad(detections, self.roi_heads.detections_per_img, data.device)

    # ---------------------------------------------------------------- eval: batched, fixed shapes
    # SSD/YOLO keep these as attributes; here they live in torchvision's RoIHeads (settable alike)
    @property
    def nms_thresh(self) -> float:
        """IoU of the final per-class NMS (export metadata)."""
        return float(self.roi_heads.nms_thresh)

    @nms_thresh.setter
    def nms_thresh(self, value: float) -> None:
        self.roi_heads.nms_thresh = float(value)

    @property
    def score_thresh(self) -> float:
        """Detections scoring at most this are dropped."""
        return float(self.roi_heads.score_thresh)

    @score_thresh.setter
    def score_thresh(self, value: float) -> None:
        self.roi_heads.score_thresh = float(value)

    @property
    def post_nms(self) -> int:
        """``K``: detections per image."""
        return int(self.roi_heads.detections_per_img)

    @post_nms.setter
    def post_nms(self, value: int) -> None:
        self.roi_heads.detections_per_img = int(value)

    def _eager_only(self, args: tuple, kwargs: dict) -> bool:
        # each image's true size inside a padded batch sets the RoI pooling's bounds from tensor values, which
        # torch.export cannot capture: such calls run eagerly (the backbone's graph still runs)
        image_sizes = kwargs.get("image_sizes", args[2] if len(args) > 2 else None)
        return image_sizes is not None

    def _detect(self, data: torch.Tensor, image_sizes: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        h, w = int(data.shape[-2]), int(data.shape[-1])
        if image_sizes is None:
            upper = data.new_tensor([w, h, w, h]).view(1, 1, 4)
            pool_hw = (h, w)
        else:  # eager only: a padded batch with each image's true (h, w)
            sizes = image_sizes.to(data.dtype)
            upper = torch.stack([sizes[:, 1], sizes[:, 0], sizes[:, 1], sizes[:, 0]], 1).unsqueeze(1)
            pool_hw = (int(image_sizes[:, 0].max()), int(image_sizes[:, 1].max()))
        feats = self.feature_maps(data)
        if self.postprocess == "gluoncv":
            proposals, valid = self._gluoncv_proposals(data, feats, upper)
            return self._gluoncv_box_detections(feats, proposals, valid)
        proposals, valid = self._proposals(data, feats, upper)
        return self._box_detections(feats, proposals, valid, upper, pool_hw)

    def _proposals(self, data: torch.Tensor, feats: "OrderedDict[str, torch.Tensor]",
                   upper: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """torchvision's ``RegionProposalNetwork`` (eval) for the batch: ``(B, P, 4)`` proposals, ``(B, P)`` valid."""
        rpn = self.rpn
        maps = list(feats.values())
        objectness, deltas = rpn.head(maps)
        anchors = rpn.anchor_generator(ImageList(data[:1], [tuple(data.shape[-2:])]), maps)[0]  # same for all
        counts = [o.shape[1] * o.shape[2] * o.shape[3] for o in objectness]
        objectness, deltas = concat_box_prediction_layers(objectness, deltas)
        batch, m = data.shape[0], anchors.shape[0]
        boxes = rpn.box_coder.decode_single(deltas.detach(), anchors.repeat(batch, 1)).reshape(batch, m, 4)
        objectness = objectness.detach().reshape(batch, m)
        top, levels, offset = [], [], 0
        for level, (o, n) in enumerate(zip(objectness.split(counts, 1), counts)):
            k = min(int(rpn.pre_nms_top_n()), n)
            top.append(o.topk(k, dim=1).indices + offset)
            levels.append(torch.full((k,), level, dtype=torch.int64, device=data.device))
            offset += n
        idx = torch.cat(top, 1)
        scores = torch.sigmoid(torch.gather(objectness, 1, idx))
        boxes = _clip(torch.gather(boxes, 1, idx.unsqueeze(-1).expand(-1, -1, 4)), upper)
        size = boxes[..., 2:] - boxes[..., :2]
        valid = (size >= rpn.min_size).all(-1) & (scores >= rpn.score_thresh)
        return _padded_nms(boxes, scores, torch.cat(levels), len(counts), valid, float(rpn.nms_thresh),
                           int(rpn.post_nms_top_n()))

    def _roi_align(self, feats: "OrderedDict[str, torch.Tensor]", rois: torch.Tensor,
                   hw: tuple[int, int]) -> torch.Tensor:
        """torchvision's ``MultiScaleRoIAlign`` on ``(N, 5)`` rois ``[image, x1, y1, x2, y2]``."""
        pool = self.roi_heads.box_roi_pool
        maps = [feats[n] for n in pool.featmap_names if n in feats]  # as torchvision filters them
        # torchvision's _infer_scale: the power of two nearest to feature height / image height
        scales = [2.0 ** round(math.log2(m.shape[-2] / hw[0])) for m in maps]
        size, ratio = tuple(pool.output_size), int(pool.sampling_ratio)
        if len(maps) == 1:
            return roi_align(maps[0], rois, size, scales[0], ratio)
        mapper = LevelMapper(int(-math.log2(scales[0])), int(-math.log2(scales[-1])),
                             canonical_scale=pool.canonical_scale, canonical_level=pool.canonical_level)
        levels = mapper([rois[:, 1:]])
        out = rois.new_zeros((rois.shape[0], maps[0].shape[1], *size))
        for level, (m, scale) in enumerate(zip(maps, scales)):
            idx = torch.nonzero(levels == level).squeeze(1)
            # in place, as torchvision's MultiScaleRoIAlign: out-of-place copied the (N, C, 7, 7) map per level
            out.index_put_((idx,), roi_align(m, rois[idx], size, scale, ratio))
        return out

    def _box_detections(self, feats: "OrderedDict[str, torch.Tensor]", proposals: torch.Tensor,
                        valid: torch.Tensor, upper: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, ...]:
        """torchvision's ``RoIHeads`` (eval) on padded proposals, GluonCV's fixed-shape output."""
        heads = self.roi_heads
        batch, p = valid.shape
        image = torch.arange(batch, device=proposals.device).repeat_interleave(p).to(proposals.dtype)
        flat = proposals.reshape(-1, 4)
        x = heads.box_head(self._roi_align(feats, torch.cat([image[:, None], flat], 1), hw))
        logits, deltas = heads.box_predictor(x)
        n = logits.shape[-1]
        boxes = _clip(heads.box_coder.decode_single(deltas, flat).reshape(batch, p, n, 4), upper.unsqueeze(2))
        scores = F.softmax(logits, -1).reshape(batch, p, n)
        boxes, scores = boxes[:, :, 1:], scores[:, :, 1:]  # drop the background column
        size = boxes[..., 2:] - boxes[..., :2]
        keep = valid.unsqueeze(-1) & (size >= 1e-2).all(-1)  # torchvision's remove_small_boxes(1e-2)
        scores = torch.where(keep, scores, torch.full_like(scores, -1.0))
        return fixed_detections(boxes, scores, score_thresh=float(heads.score_thresh),
                                nms_thresh=float(heads.nms_thresh), nms_topk=-1,
                                post_nms=int(heads.detections_per_img))


    # ---------------------------------------------------------------- eval: GluonCV's semantics
    def _gluoncv_proposals(self, data: torch.Tensor, feats: "OrderedDict[str, torch.Tensor]",
                           upper: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """GluonCV's ``RPN`` (eval) for the batch: ``(B, P, 4)`` proposals, ``(B, P)`` valid.

        ``upper``: (B or 1, 1, 4) ``[W, H, W, H]``, the clipping bounds (GluonCV's ``BBoxClipToImage``).
        """
        rpn = self.rpn
        maps = list(feats.values())
        objectness, deltas = rpn.head(maps)
        anchors = rpn.anchor_generator(ImageList(data[:1], [tuple(data.shape[-2:])]), maps)[0]
        objectness, deltas = concat_box_prediction_layers(objectness, deltas)
        batch, m = data.shape[0], anchors.shape[0]
        boxes = rpn.box_coder.decode_single(deltas.detach(), anchors.repeat(batch, 1)).reshape(batch, m, 4)
        boxes = _clip(boxes, upper)
        scores = torch.sigmoid(objectness.detach().reshape(batch, m))
        size = boxes[..., 2:] - boxes[..., :2] + 1  # GluonCV's inclusive pixel sizes
        scores = torch.where((size >= rpn.min_size).all(-1), scores, torch.full_like(scores, -1.0))
        # the best pre_nms of all levels together (the invalid ones last), one NMS across levels
        top = scores.topk(min(int(rpn.pre_nms_top_n()), m), dim=1)
        boxes = torch.gather(boxes, 1, top.indices.unsqueeze(-1).expand(-1, -1, 4))
        groups = torch.zeros(top.indices.shape[1], dtype=torch.int64, device=data.device)
        return _padded_nms(boxes, top.values, groups, 1, top.values > 0, float(rpn.nms_thresh),
                           int(rpn.post_nms_top_n()))

    def _gluoncv_roi_align(self, feats: "OrderedDict[str, torch.Tensor]", rois: torch.Tensor) -> torch.Tensor:
        """RoIAlign at GluonCV's fixed strides; FPN levels by GluonCV's rule (module docstring)."""
        pool = self.roi_heads.box_roi_pool
        names = [n for n in pool.featmap_names if n in feats]
        strides = self.rpn.anchor_generator.strides[:len(names)]
        size, ratio = tuple(pool.output_size), int(pool.sampling_ratio)
        if len(names) == 1:
            return roi_align(feats[names[0]], rois, size, 1.0 / strides[0], ratio)
        wh = rois[:, 3:5] - rois[:, 1:3] + 1
        first = int(round(math.log2(strides[0])))
        level = torch.floor(4 + torch.log2(torch.sqrt(wh[:, 0] * wh[:, 1]) / 224.0 + 1e-6))
        level = level.clamp(first, first + len(names) - 1).to(torch.int64) - first
        out = rois.new_zeros((rois.shape[0], feats[names[0]].shape[1], *size))
        for i, (name, stride) in enumerate(zip(names, strides)):
            idx = torch.nonzero(level == i).squeeze(1)
            out.index_put_((idx,), roi_align(feats[name], rois[idx], size, 1.0 / stride, ratio))
        return out

    def _gluoncv_box_detections(self, feats: "OrderedDict[str, torch.Tensor]", proposals: torch.Tensor,
                                valid: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """GluonCV's R-CNN head (eval): unclipped boxes, per-class NMS, the contract's fixed shape."""
        heads = self.roi_heads
        batch, p = valid.shape
        image = torch.arange(batch, device=proposals.device).repeat_interleave(p).to(proposals.dtype)
        flat = proposals.reshape(-1, 4)
        x = heads.box_head(self._gluoncv_roi_align(feats, torch.cat([image[:, None], flat], 1)))
        logits, deltas = heads.box_predictor(x)
        n = logits.shape[-1]
        boxes = heads.box_coder.decode_single(deltas, flat).reshape(batch, p, n, 4)[:, :, 1:]
        scores = F.softmax(logits, -1).reshape(batch, p, n)[:, :, 1:]
        scores = torch.where(valid.unsqueeze(-1), scores, torch.full_like(scores, -1.0))
        topk = self.nms_topk if 0 < self.nms_topk < p else None
        return fixed_detections(boxes, scores, score_thresh=float(heads.score_thresh),
                                nms_thresh=float(heads.nms_thresh), nms_topk=-1,
                                post_nms=int(heads.detections_per_img), per_class_topk=topk)


def _pad(detections: list[dict[str, torch.Tensor]], k: int, device) -> tuple[torch.Tensor, ...]:
    b = len(detections)
    ids = torch.full((b, k, 1), -1.0, device=device)
    scores = torch.full((b, k, 1), -1.0, device=device)
    boxes = torch.full((b, k, 4), -1.0, device=device)
    for i, d in enumerate(detections):
        n = min(k, d["boxes"].shape[0])
        ids[i, :n, 0] = d["labels"][:n].float() - 1
        scores[i, :n, 0] = d["scores"][:n]
        boxes[i, :n] = d["boxes"][:n]
    return ids, scores, boxes


def _clip(boxes: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """torchvision's ``clip_boxes_to_image``: ``[x1, y1, x2, y2]`` into ``[0, upper]`` (broadcast)."""
    return torch.minimum(boxes.clamp(min=0), upper)


def _padded_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, num_groups: int,
                valid: torch.Tensor, iou: float, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """NMS within each (image, group) over the valid boxes; the ``k`` best per image, zero-padded.

    ``boxes`` (B, T, 4), ``scores`` and ``valid`` (B, T), ``groups`` (T,) in ``[0, num_groups)``;
    ``scores`` of valid boxes are probabilities (at least 0). Returns ``(B, k, 4)`` boxes best first
    and the ``(B, k)`` mask of real rows.

    One :func:`~.detection._nms.grouped_nms` call (``batched_nms`` eagerly, as torchvision's RPN
    calls it per image; one ONNX ``NonMaxSuppression`` exported) with the groups as its classes:
    each box scores in its own group's row only, so every (image, group) is suppressed on its own
    instead of all of them in one quadratic NMS over boxes shifted apart.
    """
    batch, t = scores.shape
    masked = torch.where(valid, scores, torch.full_like(scores, -1.0))
    if num_groups == 1:
        grid = masked.unsqueeze(1).float()
    else:  # (B, G, T): box j's score in row groups[j], -1 in the others
        own = (groups.unsqueeze(0) == torch.arange(num_groups, device=groups.device).unsqueeze(1)).unsqueeze(0)
        grid = torch.where(own, masked.unsqueeze(1), torch.full_like(masked, -1.0).unsqueeze(1)).float()
    # at most k per (image, group) can be among an image's k best; -1 (invalid) is below the threshold
    sel = grouped_nms(boxes.float(), grid, iou, -0.5, k)  # by image, group, then best first
    img, idx = sel[:, 0], sel[:, 2]
    if num_groups > 1:  # the groups merged by score within each image (unique keys: ONNX has no stable sort)
        order = torch.argsort(masked[img, idx], descending=True)
        position = torch.arange(order.shape[0], device=scores.device)
        order = order[torch.argsort(img[order] * order.shape[0] + position)]
        img, idx = img[order], idx[order]
    rank = rank_within_image(img, batch)
    keep = torch.nonzero(rank < k).squeeze(1)
    img, idx, rank = img[keep], idx[keep], rank[keep]
    out = boxes.new_zeros((batch, k, 4)).index_put((img, rank), boxes[img, idx])
    mask = torch.zeros((batch, k), dtype=torch.bool, device=scores.device).index_put(
        (img, rank), torch.ones_like(rank, dtype=torch.bool))
    return out, mask


def _rpn(anchors: AnchorGenerator, channels: int, pre_train: int, pre_test: int, post_train: int, post_test: int,
         nms: float = 0.7, score_thresh: float = 0.0, head: nn.Module | None = None) -> RegionProposalNetwork:
    head = head if head is not None else RPNHead(channels, anchors.num_anchors_per_location()[0])
    return RegionProposalNetwork(
        anchors, head, fg_iou_thresh=0.7, bg_iou_thresh=0.3,
        batch_size_per_image=256, positive_fraction=0.5,
        pre_nms_top_n={"training": pre_train, "testing": pre_test},
        post_nms_top_n={"training": post_train, "testing": post_test}, nms_thresh=nms, score_thresh=score_thresh)


def _gluoncv_semantics(net: FasterRCNN, rpn_min_size: float, clip: float) -> FasterRCNN:
    """The parts of ``postprocess="gluoncv"`` that live in torchvision's modules: the RPN's minimum
    proposal size and both box coders' ``exp`` clamp (GluonCV's ``clip``; ``inf``: none)."""
    net.rpn.min_size = float(rpn_min_size)
    net.rpn.box_coder.bbox_xform_clip = float(clip)
    net.roi_heads.box_coder.bbox_xform_clip = float(clip)
    return net


def _check_postprocess(postprocess: str) -> bool:
    if postprocess not in POSTPROCESS:
        raise ValueError(f"postprocess must be one of {POSTPROCESS}, got {postprocess!r}")
    return postprocess == "gluoncv"


def _anchor_sizes(sizes: Sequence[Sequence[float]]) -> tuple[tuple[float, ...], ...]:
    """Anchor sizes per level as tuples (JSON gives lists: ``build_kwargs`` round-trip through metrics.json)."""
    out = tuple(tuple(float(s) if float(s) != int(s) else int(s) for s in level) for level in sizes)
    if not out or not all(out) or min(min(level) for level in out) <= 0:
        raise ValueError(f"anchor_sizes must be non-empty positive sizes per level, got {sizes!r}")
    return out


def _pair(value: Sequence[int], name: str) -> tuple[int, int]:
    pre, post = (int(v) for v in value)
    if pre <= 0 or post <= 0:
        raise ValueError(f"{name} must be two positive counts (pre-NMS, post-NMS), got {value!r}")
    return pre, post


def faster_rcnn_c4(backbone: str | nn.Module, classes: Sequence[str], pretrained_base: bool | str = False,
                   norm_layer=None, in_channels: int = 3, rpn_test: tuple[int, int] = (6000, 300),
                   postprocess: str = "torchvision", anchor_sizes=((32, 64, 128, 256, 512),),
                   rpn_train: tuple[int, int] = (12000, 2000), rcnn_num_samples: int = 128,
                   rcnn_pos_ratio: float = 0.25, **kwargs: Any) -> FasterRCNN:
    """GluonCV's Faster R-CNN: features to stride 16, the rest of the backbone as the box head.

    ``rpn_test`` / ``rpn_train``: proposals per image kept before and after the RPN's NMS in eval /
    training mode. ``anchor_sizes``: one tuple of sizes (pixels) for the one stride-16 level
    (GluonCV: ``16 x (2, 4, 8, 16, 32)``; small images want smaller ones). ``rcnn_num_samples`` /
    ``rcnn_pos_ratio``: RoIs sampled per image for the R-CNN losses and their positive fraction
    (GluonCV's ``num_sample`` 128, ``pos_ratio`` 0.25).
    ``postprocess="gluoncv"``: GluonCV's anchors, proposals and detections (module docstring;
    score threshold 0.01, ``nms_topk`` 400, ``rpn_min_size`` 16, no box clamp).
    """
    gluoncv = _check_postprocess(postprocess)
    base_kw = {} if norm_layer is None else {"norm_layer": norm_layer}
    feats = BackboneFeatures(build_backbone(backbone, pretrained_base, **base_kw), strides=(16,),
                             in_channels=in_channels)
    rest = feats.rest
    head = nn.Sequential(*rest, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with torch.no_grad():
        head_out = head.eval()(torch.zeros(1, feats.channels[0], 14, 14)).shape[1]
    head.train()
    sizes, ratios = _anchor_sizes(anchor_sizes), ((0.5, 1.0, 2.0),)
    if len(sizes) != 1:
        raise ValueError(f"the C4 model has one anchor level, got {len(sizes)} in anchor_sizes={anchor_sizes!r}")
    anchors = GluonCVAnchorGenerator(sizes, ratios, (16,)) if gluoncv else AnchorGenerator(sizes, ratios)
    rpn_train, rpn_test = _pair(rpn_train, "rpn_train"), _pair(rpn_test, "rpn_test")
    rpn = _rpn(anchors, feats.channels[0], rpn_train[0], rpn_test[0], rpn_train[1], rpn_test[1],
               kwargs.pop("rpn_nms_thresh", 0.7))
    roi = RoIHeads(MultiScaleRoIAlign(["0"], 14, 2), head, FastRCNNPredictor(head_out, len(classes) + 1),
                   0.5, 0.5, int(rcnn_num_samples), float(rcnn_pos_ratio), None, kwargs.pop("score_thresh", 0.01 if gluoncv else 0.05),
                   kwargs.pop("nms_thresh", 0.3), kwargs.pop("post_nms", 100))
    rpn_min_size = kwargs.pop("rpn_min_size", 16)
    net = FasterRCNN(feats, None, rpn, roi, classes, in_channels=in_channels, postprocess=postprocess,
                     nms_topk=kwargs.pop("nms_topk", 400 if gluoncv else -1), **kwargs)
    return _gluoncv_semantics(net, rpn_min_size, math.inf) if gluoncv else net


def faster_rcnn_fpn(backbone: str | nn.Module, classes: Sequence[str], pretrained_base: bool | str = False,
                    norm_layer=None, in_channels: int = 3, cuts: Sequence[int] | None = None,
                    anchor_sizes=((32,), (64,), (128,), (256,), (512,)), rpn_score_thresh: float = 0.0,
                    rpn_test: tuple[int, int] | None = None, postprocess: str = "torchvision",
                    fpn_channels: int = 256, box_channels: int = 1024, rpn_channels: int | None = None,
                    rpn_train: tuple[int, int] = (2000, 2000), rcnn_num_samples: int = 512,
                    rcnn_pos_ratio: float = 0.25, **kwargs: Any) -> FasterRCNN:
    """Faster R-CNN with FPN (256 channels, max-pool extra level) and torchvision's box head.

    ``anchor_sizes``: one tuple of sizes per level (P2..P6), or one tuple used at every level.
    ``rpn_train`` / ``rpn_test``: proposals kept before and after the RPN's NMS (per level before it,
    as torchvision). ``rcnn_num_samples`` / ``rcnn_pos_ratio``: RoIs sampled per image for the R-CNN
    losses (GluonCV: 512, 0.25).

    ``postprocess="gluoncv"``: GluonCV's ``faster_rcnn_fpn_*`` instead (:class:`GluonCVFPN` with a
    convolutional P6, :class:`GluonCVRPNHead` ``rpn_channels`` wide (1024), GluonCV's anchors,
    proposals (6000 / 1000, ``rpn_min_size`` 1) and detections (score 0.01, box clamp 4.14); module
    docstring). ``fpn_channels`` / ``box_channels``: FPN and box-head widths (small test models).
    """
    gluoncv = _check_postprocess(postprocess)
    base_kw = {} if norm_layer is None else {"norm_layer": norm_layer}
    model = build_backbone(backbone, pretrained_base, **base_kw)
    feats = (BackboneFeatures(model, cuts=cuts, in_channels=in_channels) if cuts is not None
             else BackboneFeatures(model, strides=(4, 8, 16, 32), in_channels=in_channels))
    levels = len(feats.channels) + 1
    anchor_sizes = _anchor_sizes(anchor_sizes)
    if len(anchor_sizes) not in (1, levels):
        raise ValueError(f"{len(anchor_sizes)} anchor levels for {levels} feature levels")
    if len(anchor_sizes) == 1:
        anchor_sizes = tuple(anchor_sizes) * levels
    ratios = ((0.5, 1.0, 2.0),) * levels
    if rpn_test is None:
        rpn_test = (6000, 1000) if gluoncv else (1000, 1000)
    if gluoncv:
        if cuts is not None:
            raise ValueError("postprocess='gluoncv' builds GluonCV's FPN at strides 4..32, not cuts")
        fpn = GluonCVFPN(feats.channels, fpn_channels)
        anchors = GluonCVAnchorGenerator(tuple(anchor_sizes), ratios, (*feats.strides, feats.strides[-1] * 2))
        head = GluonCVRPNHead(fpn_channels, rpn_channels or 1024, anchors.num_anchors_per_location()[0])
    else:
        fpn = FeaturePyramidNetwork(feats.channels, fpn_channels, extra_blocks=LastLevelMaxPool())
        anchors = AnchorGenerator(tuple(anchor_sizes), ratios)
        head = RPNHead(fpn_channels, anchors.num_anchors_per_location()[0])
    rpn_train, rpn_test = _pair(rpn_train, "rpn_train"), _pair(rpn_test, "rpn_test")
    rpn = _rpn(anchors, fpn_channels, rpn_train[0], rpn_test[0], rpn_train[1], rpn_test[1],
               score_thresh=rpn_score_thresh, head=head)
    roi = RoIHeads(MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2), TwoMLPHead(fpn_channels * 49, box_channels),
                   FastRCNNPredictor(box_channels, len(classes) + 1), 0.5, 0.5, int(rcnn_num_samples),
                   float(rcnn_pos_ratio), None,
                   kwargs.pop("score_thresh", 0.01 if gluoncv else 0.05), kwargs.pop("nms_thresh", 0.5),
                   kwargs.pop("post_nms", 100))
    rpn_min_size = kwargs.pop("rpn_min_size", 1)
    net = FasterRCNN(feats, fpn, rpn, roi, classes, in_channels=in_channels, postprocess=postprocess,
                     nms_topk=kwargs.pop("nms_topk", -1), **kwargs)
    return _gluoncv_semantics(net, rpn_min_size, 4.14) if gluoncv else net


_META = {"family": "faster_rcnn", "paper": "https://arxiv.org/abs/1506.01497"}


@register_model(name="faster_rcnn_resnet50_v1b_voc", task="detection", metadata=_META)
def faster_rcnn_resnet50_v1b_voc(classes: Sequence[str] | None = None, backbone: str | nn.Module = "resnet50_v1b",
                                 **kwargs: Any) -> FasterRCNN:
    """GluonCV's Faster R-CNN (C4) on ResNet-50 v1b (any zoo backbone through ``backbone=``), 20 VOC classes."""
    kwargs.setdefault("data_shape", (600, 1000))
    return faster_rcnn_c4(backbone, VOC_CLASSES if classes is None else classes, **kwargs)


@register_model(name="faster_rcnn_resnet50_v1b_coco", task="detection", metadata=_META)
def faster_rcnn_resnet50_v1b_coco(classes: Sequence[str] | None = None, backbone: str | nn.Module = "resnet50_v1b",
                                  **kwargs: Any) -> FasterRCNN:
    """Faster R-CNN (C4) on ResNet-50 v1b, 80 COCO classes."""
    kwargs.setdefault("data_shape", (800, 1333))
    return faster_rcnn_c4(backbone, COCO_CLASSES if classes is None else classes, **kwargs)


@register_model(
    name="faster_rcnn_mobilenet0.25_voc", task="detection", metadata=_META,
    # Numbers as the run in model_zoo_logs/<log>/ wrote them (tests/core/test_zoo.py compares them); the kwargs
    # are the ones its metrics.json records (input size, anchors, test-time proposal counts).
    weights=[fashion_scenes_weights(
        "detection/faster_rcnn_mobilenet0.25_256-fashion-scenes",
        sha256="54a3445485ede501f0b0abd0046ed2bca358fbe8c5e84e837def6e675d81d660",
        metrics={'voc07_map': 43.78, 'coco_map': 24.48}, size=(256, 320),
        data_shape=[256, 320], anchor_sizes=[[32, 64, 128]], rpn_test=[1000, 100])],
)
def faster_rcnn_mobilenet0_25_voc(classes: Sequence[str] | None = None, backbone: str | nn.Module = "mobilenet0.25",
                                  **kwargs: Any) -> FasterRCNN:
    """Faster R-CNN (C4) on MobileNet 0.25, 20 VOC classes: a small model for CPU training from random
    weights (not a GluonCV model; ``train_faster_rcnn.py --network mobilenet0.25`` builds it)."""
    kwargs.setdefault("data_shape", (600, 1000))
    return faster_rcnn_c4(backbone, VOC_CLASSES if classes is None else classes, **kwargs)


@register_model(name="faster_rcnn_mobilenet0.25_coco", task="detection", metadata=_META)
def faster_rcnn_mobilenet0_25_coco(classes: Sequence[str] | None = None, backbone: str | nn.Module = "mobilenet0.25",
                                   **kwargs: Any) -> FasterRCNN:
    """Faster R-CNN (C4) on MobileNet 0.25, 80 COCO classes (not a GluonCV model)."""
    kwargs.setdefault("data_shape", (800, 1333))
    return faster_rcnn_c4(backbone, COCO_CLASSES if classes is None else classes, **kwargs)


@register_model(name="faster_rcnn_fpn_resnet50_v1b_coco", task="detection", metadata=_META)
def faster_rcnn_fpn_resnet50_v1b_coco(classes: Sequence[str] | None = None,
                                      backbone: str | nn.Module = "resnet50_v1b", **kwargs: Any) -> FasterRCNN:
    """Faster R-CNN with FPN on ResNet-50 v1b, 80 COCO classes."""
    kwargs.setdefault("data_shape", (800, 1333))
    return faster_rcnn_fpn(backbone, COCO_CLASSES if classes is None else classes, **kwargs)


@register_model(name="faster_rcnn_fpn_resnet50_v1b_voc", task="detection", metadata=_META)
def faster_rcnn_fpn_resnet50_v1b_voc(classes: Sequence[str] | None = None,
                                     backbone: str | nn.Module = "resnet50_v1b", **kwargs: Any) -> FasterRCNN:
    """Faster R-CNN with FPN on ResNet-50 v1b, 20 VOC classes."""
    kwargs.setdefault("data_shape", (600, 1000))
    return faster_rcnn_fpn(backbone, VOC_CLASSES if classes is None else classes, **kwargs)


def torchvision_coco_names() -> tuple[str, ...]:
    """torchvision's 90 COCO category slots (its label ``k`` is our id ``k - 1``); unused slots named ``N/A_k``."""
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights

    cats = FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]
    return tuple(c if c != "N/A" else f"N/A_{i}" for i, c in enumerate(cats))[1:]


def _mobilenet_v3_fpn(classes, size: int, rpn_test: tuple[int, int], backbone: str | nn.Module = "mobilenetv3_large",
                      **kwargs: Any) -> FasterRCNN:
    from .mobilenetv3 import MobileNetV3Unit

    model = build_backbone(backbone, kwargs.pop("pretrained_base", False))
    from .detection._backbone import classifier_stages

    stages = classifier_stages(model)
    c4 = max(i for i, m in enumerate(stages) if isinstance(m, MobileNetV3Unit) and m.conv1.conv.stride[0] == 2)
    kwargs.setdefault("data_shape", (size, size))
    kwargs.setdefault("anchor_sizes", ((32, 64, 128, 256, 512),))
    kwargs.setdefault("rpn_test", rpn_test)
    return faster_rcnn_fpn(model, torchvision_coco_names() if classes is None else classes, cuts=(c4, -1),
                           rpn_score_thresh=0.05, **kwargs)


@register_model(name="fasterrcnn_mobilenet_v3_large_fpn", task="detection", metadata=_META)
def fasterrcnn_mobilenet_v3_large_fpn(classes: Sequence[str] | None = None, **kwargs: Any) -> FasterRCNN:
    """torchvision's Faster R-CNN MobileNetV3-Large FPN (800-pixel images), its 90 COCO slots by default."""
    return _mobilenet_v3_fpn(classes, 800, (1000, 1000), **kwargs)


@register_model(name="fasterrcnn_mobilenet_v3_large_320_fpn", task="detection", metadata=_META)
def fasterrcnn_mobilenet_v3_large_320_fpn(classes: Sequence[str] | None = None, **kwargs: Any) -> FasterRCNN:
    """torchvision's Faster R-CNN MobileNetV3-Large 320 FPN (320-pixel images, 150 test proposals)."""
    return _mobilenet_v3_fpn(classes, 320, (150, 150), **kwargs)
