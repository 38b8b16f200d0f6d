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
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from ...zoo import register_model
from .detection._backbone import BackboneFeatures, build_backbone
from .detection._base import ClassLayer, Detector, labels_to_targets
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
        h, w = int(data.shape[-2]), int(data.shape[-1])
        sizes = [(h, w)] * data.shape[0] if image_sizes is None else [(int(a), int(b)) for a, b in image_sizes]
        images = ImageList(data, sizes)
        feats = self.feature_maps(data)
        targets = None
        if self.training:
            if labels is None:
                raise ValueError("Faster R-CNN in training mode needs labels (B, M, 6) padded with -1")
            targets = [{"boxes": t["boxes"], "labels": t["labels"] + 1} for t in labels_to_targets(labels)]
            for t in targets:
                keep = (t["boxes"][:, 2] > t["boxes"][:, 0]) & (t["boxes"][:, 3] > t["boxes"][:, 1])
                t["boxes"], t["labels"] = t["boxes"][keep], t["labels"][keep]
        proposals, rpn_losses = self.rpn(images, feats, targets)
        detections, det_losses = self.roi_heads(feats, proposals, images.image_sizes, targets)
        if self.training:
            return {**rpn_losses, **det_losses}
        return _pad(detections, self.roi_heads.detections_per_img, data.device)


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


def _rpn(anchors: AnchorGenerator, channels: int, pre_train: int, pre_test: int, post_train: int, post_test: int,
         nms: float = 0.7, score_thresh: float = 0.0) -> RegionProposalNetwork:
    return RegionProposalNetwork(
        anchors, RPNHead(channels, anchors.num_anchors_per_location()[0]), fg_iou_thresh=0.7, bg_iou_thresh=0.3,
        batch_size_per_image=256, positive_fraction=0.5,
        pre_nms_top_n={"training": pre_train, "testing": pre_test},
        post_nms_top_n={"training": post_train, "testing": post_test}, nms_thresh=nms, score_thresh=score_thresh)


def faster_rcnn_c4(backbone: str | nn.Module, classes: Sequence[str], pretrained_base: bool | str = False,
                   norm_layer=None, in_channels: int = 3, **kwargs: Any) -> FasterRCNN:
    """GluonCV's Faster R-CNN: features to stride 16, the rest of the backbone as the box head."""
    base_kw = {} if norm_layer is None else {"norm_layer": norm_layer}
    feats = BackboneFeatures(build_backbone(backbone, pretrained_base, **base_kw), strides=(16,),
                             in_channels=in_channels)
    rest = feats.rest
    head = nn.Sequential(*rest, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with torch.no_grad():
        head_out = head.eval()(torch.zeros(1, feats.channels[0], 14, 14)).shape[1]
    head.train()
    anchors = AnchorGenerator(((32, 64, 128, 256, 512),), ((0.5, 1.0, 2.0),))
    rpn = _rpn(anchors, feats.channels[0], 12000, 6000, 2000, 300, kwargs.pop("rpn_nms_thresh", 0.7))
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
