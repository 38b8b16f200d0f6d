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
for the batch (``torchvision.ops.nms`` -> ONNX ``NonMaxSuppression``), the best
``post_nms_top_n`` per image padded to a fixed count, RoIAlign (``torchvision.ops.roi_align`` ->
ONNX ``RoiAlign``; FPN levels by torchvision's ``LevelMapper``), the box head on every padded
proposal, torchvision's box decoding and :func:`fixed_detections` with the padding masked out.
It computes what torchvision's eval path computes (tests compare both).
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
from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign, nms, roi_align
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
from torchvision.ops.poolers import LevelMapper

from ...zoo import register_model
from .detection._backbone import BackboneFeatures, build_backbone
from .detection._base import ClassLayer, Detector, labels_to_targets
from .detection._boxes import fixed_detections
from .detection._classes import COCO_CLASSES, VOC_CLASSES

__all__ = ["FasterRCNN"]


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
    """

    def __init__(self, backbone: BackboneFeatures, fpn: nn.Module | None, rpn: RegionProposalNetwork,
                 roi_heads: RoIHeads, classes: Sequence[str], data_shape=(600, 600), in_channels: int = 3) -> None:
        super().__init__(classes, in_channels, data_shape)
        self.backbone, self.fpn, self.rpn, self.roi_heads = backbone, fpn, rpn, roi_heads

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
            out = out.index_put((idx,), roi_align(m, rois[idx], size, scale, ratio))
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

    ``boxes`` (B, T, 4), ``scores`` and ``valid`` (B, T), ``groups`` (T,) in ``[0, num_groups)``.
    Returns ``(B, k, 4)`` boxes best first and the ``(B, k)`` mask of real rows. One NMS call for the
    batch, each (image, group) shifted to a region of its own (torchvision's batched_nms offset trick,
    without its data-dependent choice of strategy).
    """
    batch, t = scores.shape
    flat_boxes, flat_scores = boxes.reshape(-1, 4), scores.reshape(-1)
    image = torch.arange(batch, device=scores.device).repeat_interleave(t)
    group = (image * num_groups + groups.repeat(batch)).to(flat_boxes.dtype)
    low = flat_boxes.min()
    shifted = flat_boxes - low + (group * (flat_boxes.max() - low + 1))[:, None]
    cand = torch.nonzero(valid.reshape(-1)).squeeze(1)
    keep = cand[nms(shifted[cand], flat_scores[cand], iou)]  # best first
    # group by image keeping the score order (unique keys: ONNX has no stable sort), rank within the image
    position = torch.arange(keep.shape[0], device=scores.device)
    keep = keep[torch.argsort(image[keep] * keep.shape[0] + position)]
    img = image[keep]
    counts = (img.unsqueeze(1) == torch.arange(batch, device=scores.device)).sum(0)
    rank = torch.arange(keep.shape[0], device=scores.device) - (torch.cumsum(counts, 0) - counts)[img]
    sel = torch.nonzero(rank < k).squeeze(1)
    keep, img, rank = keep[sel], img[sel], rank[sel]
    out = boxes.new_zeros((batch, k, 4)).index_put((img, rank), flat_boxes[keep])
    mask = torch.zeros((batch, k), dtype=torch.bool, device=scores.device).index_put(
        (img, rank), torch.ones_like(rank, dtype=torch.bool))
    return out, mask


def _rpn(anchors: AnchorGenerator, channels: int, pre_train: int, pre_test: int, post_train: int, post_test: int,
         nms: float = 0.7, score_thresh: float = 0.0) -> RegionProposalNetwork:
    return RegionProposalNetwork(
        anchors, RPNHead(channels, anchors.num_anchors_per_location()[0]), fg_iou_thresh=0.7, bg_iou_thresh=0.3,
        batch_size_per_image=256, positive_fraction=0.5,
        pre_nms_top_n={"training": pre_train, "testing": pre_test},
        post_nms_top_n={"training": post_train, "testing": post_test}, nms_thresh=nms, score_thresh=score_thresh)


def faster_rcnn_c4(backbone: str | nn.Module, classes: Sequence[str], pretrained_base: bool | str = False,
                   norm_layer=None, in_channels: int = 3, rpn_test: tuple[int, int] = (6000, 300),
                   **kwargs: Any) -> FasterRCNN:
    """GluonCV's Faster R-CNN: features to stride 16, the rest of the backbone as the box head.

    ``rpn_test``: proposals per image kept before and after the RPN's NMS in eval mode.
    """
    base_kw = {} if norm_layer is None else {"norm_layer": norm_layer}
    feats = BackboneFeatures(build_backbone(backbone, pretrained_base, **base_kw), strides=(16,),
                             in_channels=in_channels)
    rest = feats.rest
    head = nn.Sequential(*rest, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with torch.no_grad():
        head_out = head.eval()(torch.zeros(1, feats.channels[0], 14, 14)).shape[1]
    head.train()
    anchors = AnchorGenerator(((32, 64, 128, 256, 512),), ((0.5, 1.0, 2.0),))
    rpn = _rpn(anchors, feats.channels[0], 12000, rpn_test[0], 2000, rpn_test[1], kwargs.pop("rpn_nms_thresh", 0.7))
    roi = RoIHeads(MultiScaleRoIAlign(["0"], 14, 2), head, FastRCNNPredictor(head_out, len(classes) + 1),
                   0.5, 0.5, 128, 0.25, None, kwargs.pop("score_thresh", 0.05), kwargs.pop("nms_thresh", 0.3),
                   kwargs.pop("post_nms", 100))
    return FasterRCNN(feats, None, rpn, roi, classes, in_channels=in_channels, **kwargs)


def faster_rcnn_fpn(backbone: str | nn.Module, classes: Sequence[str], pretrained_base: bool | str = False,
                    norm_layer=None, in_channels: int = 3, cuts: Sequence[int] | None = None,
                    anchor_sizes=((32,), (64,), (128,), (256,), (512,)), rpn_score_thresh: float = 0.0,
                    rpn_test: tuple[int, int] = (1000, 1000), **kwargs: Any) -> FasterRCNN:
    """Faster R-CNN with FPN (256 channels, max-pool extra level) and torchvision's box head."""
    base_kw = {} if norm_layer is None else {"norm_layer": norm_layer}
    model = build_backbone(backbone, pretrained_base, **base_kw)
    feats = (BackboneFeatures(model, cuts=cuts, in_channels=in_channels) if cuts is not None
             else BackboneFeatures(model, strides=(4, 8, 16, 32), in_channels=in_channels))
    fpn = FeaturePyramidNetwork(feats.channels, 256, extra_blocks=LastLevelMaxPool())
    levels = len(feats.channels) + 1
    if len(anchor_sizes) == 1:
        anchor_sizes = tuple(anchor_sizes) * levels
    anchors = AnchorGenerator(tuple(anchor_sizes), ((0.5, 1.0, 2.0),) * levels)
    rpn = _rpn(anchors, 256, 2000, rpn_test[0], 2000, rpn_test[1], score_thresh=rpn_score_thresh)
    roi = RoIHeads(MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2), TwoMLPHead(256 * 49, 1024),
                   FastRCNNPredictor(1024, len(classes) + 1), 0.5, 0.5, 512, 0.25, None,
                   kwargs.pop("score_thresh", 0.05), kwargs.pop("nms_thresh", 0.5), kwargs.pop("post_nms", 100))
    return FasterRCNN(feats, fpn, rpn, roi, classes, in_channels=in_channels, **kwargs)


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
    return faster_rcnn_fpn(model, torchvision_coco_names() if classes is None else classes, cuts=(c4, -1),
                           anchor_sizes=((32, 64, 128, 256, 512),), rpn_score_thresh=0.05, rpn_test=rpn_test, **kwargs)


@register_model(name="fasterrcnn_mobilenet_v3_large_fpn", task="detection", metadata=_META)
def fasterrcnn_mobilenet_v3_large_fpn(classes: Sequence[str] | None = None, **kwargs: Any) -> FasterRCNN:
    """torchvision's Faster R-CNN MobileNetV3-Large FPN (800-pixel images), its 90 COCO slots by default."""
    return _mobilenet_v3_fpn(classes, 800, (1000, 1000), **kwargs)


@register_model(name="fasterrcnn_mobilenet_v3_large_320_fpn", task="detection", metadata=_META)
def fasterrcnn_mobilenet_v3_large_320_fpn(classes: Sequence[str] | None = None, **kwargs: Any) -> FasterRCNN:
    """torchvision's Faster R-CNN MobileNetV3-Large 320 FPN (320-pixel images, 150 test proposals)."""
    return _mobilenet_v3_fpn(classes, 320, (150, 150), **kwargs)
