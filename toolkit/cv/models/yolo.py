"""YOLOv3 (Redmon & Farhadi 2018) as GluonCV builds it.

* Features at strides 8, 16, 32 from any classification-zoo backbone (Darknet-53, MobileNet ...).
* From the deepest map up: a detection block (1x1/3x3 x 2 + 1x1, then a 3x3 "tip"), a 1x1 output
  layer with ``anchors * (4 + 1 + classes)`` channels per position (``tx, ty, tw, th, objectness,
  classes``), a 1x1 transition + 2x nearest upsampling concatenated with the next shallower map.
* Decoding: centers ``(sigmoid(t) + cell) * stride``, sizes ``exp(t) * anchor``, score
  ``sigmoid(class) * sigmoid(objectness)``; per-class NMS 0.45 over the 400 best, 100 kept.
* Training mode returns the raw outputs :class:`YOLOV3Loss` takes (see :meth:`YOLOV3.forward`);
  :class:`YOLOV3TargetGenerator` builds targets from padded labels, batched on tensors.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import box_iou

from ...zoo import register_model
from .darknet import darknet_conv
from .detection._backbone import BackboneFeatures, build_backbone
from .detection._base import ClassLayer, Detector, fashion_scenes_weights
from .detection._boxes import fixed_detections
from .detection._classes import COCO_CLASSES, VOC_CLASSES

__all__ = ["YOLOV3", "YOLOV3Loss", "YOLOV3Outputs", "YOLOV3TargetGenerator"]

#: GluonCV's anchors (w, h pixels) for strides 8, 16, 32.
YOLO_ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]
YOLO_STRIDES = [8, 16, 32]


class YOLOV3Outputs(NamedTuple):
    """What YOLOv3 returns in training mode; every tensor has N = all positions x anchors, deepest level first.

    ``objness`` (B, N, 1), ``centers`` (B, N, 2), ``scales`` (B, N, 2), ``cls_preds`` (B, N, C): raw logits;
    ``bboxes`` (B, N, 4): decoded corner boxes; ``anchors`` (1, N, 5): ``cell x, cell y, stride, anchor w, h``.
    """

    objness: torch.Tensor
    centers: torch.Tensor
    scales: torch.Tensor
    cls_preds: torch.Tensor
    bboxes: torch.Tensor
    anchors: torch.Tensor


class YOLODetectionBlockV3(nn.Module):
    """Five alternating 1x1/3x3 convolutions (``channel``/``2*channel``), then the 3x3 tip."""

    def __init__(self, cin: int, channel: int, norm_layer=nn.BatchNorm2d) -> None:
        super().__init__()
        layers, c = [], cin
        for i in range(5):
            out = channel if i % 2 == 0 else channel * 2
            layers.append(darknet_conv(c, out, 1 if i % 2 == 0 else 3, norm_layer=norm_layer))
            c = out
        self.body = nn.Sequential(*layers)
        self.tip = darknet_conv(channel, channel * 2, 3, norm_layer=norm_layer)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        route = self.body(x)
        return route, self.tip(route)


class YOLOV3(Detector):
    """YOLOv3.

    Parameters
    ----------
    features : BackboneFeatures
        Returns the stride 8, 16, 32 maps.
    channels : sequence of int
        Detection block widths, deepest first (GluonCV: 512, 256, 128).
    anchors : sequence of sequence of int
        ``[w0, h0, w1, h1, ...]`` per level, shallowest first.
    strides : sequence of int
        Strides of the levels, shallowest first.
    classes : sequence of str
        Class names.
    data_shape : int
        Training input side (metadata).
    nms_thresh, nms_topk, post_nms, score_thresh : float, int, int, float
        Post-processing (GluonCV: 0.45, 400, 100, 0.01).
    """

    def __init__(self, features: BackboneFeatures, channels: Sequence[int], anchors: Sequence[Sequence[int]],
                 strides: Sequence[int], classes: Sequence[str], data_shape: int = 416, nms_thresh: float = 0.45,
                 nms_topk: int = 400, post_nms: int = 100, score_thresh: float = 0.01, in_channels: int = 3,
                 norm_layer=nn.BatchNorm2d) -> None:
        super().__init__(classes, in_channels, data_shape)
        if not (len(features.channels) == len(channels) == len(anchors) == len(strides)):
            raise ValueError("features, channels, anchors and strides must have one entry per level")
        self.features = features
        self.strides = list(strides)[::-1]
        self.anchor_sizes = [list(a) for a in anchors][::-1]  # deepest first, as the outputs
        self.num_anchors = [len(a) // 2 for a in self.anchor_sizes]
        self.nms_thresh, self.nms_topk, self.post_nms, self.score_thresh = nms_thresh, nms_topk, post_nms, score_thresh
        routes = list(features.channels)[::-1]
        self.yolo_blocks = nn.ModuleList()
        self.transitions = nn.ModuleList()
        cin = routes[0]
        for i, ch in enumerate(channels):
            self.yolo_blocks.append(YOLODetectionBlockV3(cin, ch, norm_layer))
            if i + 1 < len(channels):
                self.transitions.append(darknet_conv(ch, channels[i + 1], 1, norm_layer=norm_layer))
                cin = channels[i + 1] + routes[i + 1]
        self.tip_channels = [2 * c for c in channels]
        self._build_class_layers(self.num_class)

    def _build_class_layers(self, num_classes: int) -> None:
        self.yolo_outputs = nn.ModuleList(
            nn.Conv2d(c, a * (5 + num_classes), 1) for c, a in zip(self.tip_channels, self.num_anchors))

    def _class_layers(self) -> list[ClassLayer]:
        return [ClassLayer(f"yolo_outputs.{i}", groups=a, extra=5) for i, a in enumerate(self.num_anchors)]

    def _anchor_table(self, sizes: Sequence[tuple[int, int]], device) -> torch.Tensor:
        rows = []
        for (h, w), stride, anc in zip(sizes, self.strides, self.anchor_sizes):
            a = torch.tensor(anc, dtype=torch.float32, device=device).reshape(-1, 2)
            gy, gx = torch.meshgrid(torch.arange(h, dtype=torch.float32, device=device),
                                    torch.arange(w, dtype=torch.float32, device=device), indexing="ij")
            cells = torch.stack([gx, gy], -1).reshape(-1, 1, 2).expand(-1, a.shape[0], 2)
            st = torch.full((cells.shape[0], a.shape[0], 1), float(stride), device=device)
            rows.append(torch.cat([cells, st, a.expand(cells.shape[0], -1, 2)], -1).reshape(-1, 5))
        return torch.cat(rows, 0).unsqueeze(0)

    def forward(self, data: torch.Tensor):
        """Eval: ``(ids, scores, bboxes)``; training: :class:`YOLOV3Outputs`."""
        self._check(data)
        routes = self.features(data)[::-1]
        x = routes[0]
        preds, sizes = [], []
        for i, block in enumerate(self.yolo_blocks):
            x, tip = block(x)
            p = self.yolo_outputs[i](tip)
            b, _, h, w = p.shape
            preds.append(p.reshape(b, self.num_anchors[i], -1, h * w).permute(0, 3, 1, 2).reshape(b, h * w * self.num_anchors[i], -1))
            sizes.append((int(h), int(w)))
            if i + 1 < len(self.yolo_blocks):
                up = F.interpolate(self.transitions[i](x), scale_factor=2, mode="nearest")
                route = routes[i + 1]
                x = torch.cat([up[..., :route.shape[-2], :route.shape[-1]], route], 1)
        pred = torch.cat(preds, 1)
        table = self._anchor_table(sizes, data.device)
        centers_raw, scales_raw, obj_raw, cls_raw = pred[..., 0:2], pred[..., 2:4], pred[..., 4:5], pred[..., 5:]
        centers = (torch.sigmoid(centers_raw) + table[..., 0:2]) * table[..., 2:3]
        half = torch.exp(scales_raw) * table[..., 3:5] / 2
        bboxes = torch.cat([centers - half, centers + half], -1)
        if self.training:
            return YOLOV3Outputs(obj_raw, centers_raw, scales_raw, cls_raw, bboxes, table)
        scores = torch.sigmoid(cls_raw) * torch.sigmoid(obj_raw)
        return fixed_detections(bboxes, scores, self.score_thresh, self.nms_thresh, self.nms_topk, self.post_nms)


class YOLOV3TargetGenerator:
    """YOLOv3 training targets (GluonCV's prefetch + dynamic target generators), batched.

    Each ground-truth box goes to the anchor (of all levels) whose shape overlaps it best, at the cell
    holding its center: objectness 1, center offsets within the cell, log size ratios, a weight
    ``2 - w*h / image area`` and its one-hot class (label-smoothed if asked). Other anchors whose decoded
    prediction overlaps a ground truth by more than ``ignore_iou_thresh`` are ignored (objectness -1).
    A 7th label column is a mixup weight: positives get it as objectness target and loss weight.
    """

    def __init__(self, num_class: int, ignore_iou_thresh: float = 0.7, label_smooth: bool = False) -> None:
        self.num_class, self.ignore_iou_thresh, self.label_smooth = num_class, ignore_iou_thresh, label_smooth

    @torch.no_grad()
    def __call__(self, outputs: YOLOV3Outputs, labels: torch.Tensor, image_size: tuple[int, int]):
        """Returns ``obj_t`` (B, N, 1), ``center_t`` (B, N, 2), ``scale_t`` (B, N, 2), ``weight_t`` (B, N, 2),
        ``class_t`` (B, N, C), ``class_mask`` (B, N, C)."""
        if labels.dim() != 3 or labels.shape[-1] < 5:
            raise ValueError(f"labels must be (B, M, 5 or 6), got {tuple(labels.shape)}")
        table = outputs.anchors[0]
        batch, n = outputs.objness.shape[:2]
        dev = outputs.objness.device
        h_img, w_img = image_size
        obj_t = torch.zeros(batch, n, 1, device=dev)
        center_t = torch.zeros(batch, n, 2, device=dev)
        scale_t = torch.zeros(batch, n, 2, device=dev)
        weight_t = torch.zeros(batch, n, 2, device=dev)
        class_t = torch.zeros(batch, n, self.num_class, device=dev)
        # the distinct anchor shapes and, per level, where its rows start and its grid
        strides = table[:, 2]
        level_start = [0] + [i for i in range(1, n) if strides[i] != strides[i - 1]]
        shapes, where = [], []
        for li, start in enumerate(level_start):
            end = level_start[li + 1] if li + 1 < len(level_start) else n
            stride = float(strides[start])
            rows = table[start:end]
            num_a = int((rows[:, 0] == rows[0, 0]).logical_and(rows[:, 1] == rows[0, 1]).sum())
            w_cells = int(rows[:, 0].max()) + 1
            h_cells = int(rows[:, 1].max()) + 1
            for a in range(num_a):
                shapes.append(rows[a, 3:5])
                where.append((start, stride, a, num_a, w_cells, h_cells))
        shapes_t = torch.stack(shapes)
        anchor_boxes = torch.cat([-shapes_t / 2, shapes_t / 2], 1)
        for b in range(batch):
            lab = labels[b].to(dev).float()
            valid = (lab[:, 4] >= 0) & (lab[:, 2] > lab[:, 0]) & (lab[:, 3] > lab[:, 1])
            gt = lab[valid]
            if gt.shape[0] == 0:
                continue
            gwh = gt[:, 2:4] - gt[:, 0:2]
            gc = (gt[:, 0:2] + gt[:, 2:4]) / 2
            best = box_iou(torch.cat([-gwh / 2, gwh / 2], 1), anchor_boxes).argmax(1)
            for g in range(gt.shape[0]):
                start, stride, a, num_a, w_cells, h_cells = where[int(best[g])]
                cx = min(max(int(gc[g, 0] // stride), 0), w_cells - 1)
                cy = min(max(int(gc[g, 1] // stride), 0), h_cells - 1)
                idx = start + (cy * w_cells + cx) * num_a + a
                mix = float(gt[g, 6]) if gt.shape[1] > 6 else 1.0
                obj_t[b, idx] = mix
                center_t[b, idx] = gc[g] / stride - torch.tensor([cx, cy], device=dev, dtype=torch.float32)
                scale_t[b, idx] = torch.log(gwh[g] / shapes_t[int(best[g])])
                weight_t[b, idx] = (2.0 - gwh[g, 0] * gwh[g, 1] / float(w_img * h_img)) * mix
                class_t[b, idx] = 0.0
                class_t[b, idx, int(gt[g, 4])] = 1.0
            ious = box_iou(outputs.bboxes[b].detach().float(), gt[:, :4]).max(1).values
            obj_t[b] = torch.where((obj_t[b] == 0) & (ious[:, None] > self.ignore_iou_thresh), -1.0, obj_t[b])
        if self.label_smooth:
            eps = min(1.0 / self.num_class, 1.0 / 40)
            class_t = torch.where(class_t > 0.5, class_t - eps, torch.full_like(class_t, eps))
        class_mask = obj_t.clamp(min=0).expand_as(class_t).contiguous()
        return obj_t, center_t, scale_t, weight_t, class_t, class_mask


class YOLOV3Loss(nn.Module):
    """GluonCV's ``YOLOV3Loss``: objectness BCE (ignored anchors excluded), center BCE and scale L1 weighted
    by ``weight_t`` on positive anchors (x2), class BCE on positive anchors; each summed over anchors.

    Returns
    -------
    obj_loss, center_loss, scale_loss, cls_loss : Tensor
        Per image, (B,) each.
    """

    def forward(self, outputs: YOLOV3Outputs, obj_t, center_t, scale_t, weight_t, class_t, class_mask):
        pos = (obj_t > 0).float()
        # positives weigh their mixup ratio (1 without mixup), negatives 1, ignored anchors 0
        obj_weight = torch.where(obj_t > 0, obj_t, (obj_t >= 0).float())
        obj_loss = (F.binary_cross_entropy_with_logits(outputs.objness, (obj_t > 0).float(), reduction="none")
                    * obj_weight).sum((1, 2))
        w = weight_t * pos  # weight_t carries the mixup ratio already
        center_loss = (F.binary_cross_entropy_with_logits(outputs.centers, center_t, reduction="none") * w).sum((1, 2))
        scale_loss = ((outputs.scales - scale_t).abs() * w).sum((1, 2))
        cls_loss = (F.binary_cross_entropy_with_logits(outputs.cls_preds, class_t, reduction="none")
                    * class_mask).sum((1, 2))
        return obj_loss, center_loss, scale_loss, cls_loss


def yolo3(backbone: str | nn.Module, classes: Sequence[str], pretrained_base: bool | str = False,
          norm_layer=None, filters: Sequence[int] = (512, 256, 128), **kwargs: Any) -> YOLOV3:
    """YOLOv3 on a classification-zoo backbone cut at strides 8, 16, 32; ``filters``: the detection blocks'
    widths, deepest first (GluonCV's ``get_yolov3`` argument: 512, 256, 128)."""
    base_kw = {} if norm_layer is None else {"norm_layer": norm_layer}
    feats = BackboneFeatures(build_backbone(backbone, pretrained_base, **base_kw), strides=YOLO_STRIDES,
                             in_channels=kwargs.get("in_channels", 3))
    if norm_layer is not None:
        kwargs["norm_layer"] = norm_layer
    return YOLOV3(feats, [int(f) for f in filters], YOLO_ANCHORS, YOLO_STRIDES, classes, **kwargs)


_META = {"family": "yolo3", "paper": "https://arxiv.org/abs/1804.02767"}


@register_model(name="yolo3_darknet53_voc", task="detection", metadata=_META)
def yolo3_darknet53_voc(classes: Sequence[str] | None = None, backbone: str | nn.Module = "darknet53",
                        **kwargs: Any) -> YOLOV3:
    """YOLOv3 on Darknet-53 (any zoo backbone through ``backbone=``), 20 VOC classes."""
    return yolo3(backbone, VOC_CLASSES if classes is None else classes, **kwargs)


@register_model(name="yolo3_darknet53_coco", task="detection", metadata=_META)
def yolo3_darknet53_coco(classes: Sequence[str] | None = None, backbone: str | nn.Module = "darknet53",
                         **kwargs: Any) -> YOLOV3:
    """YOLOv3 on Darknet-53, 80 COCO classes."""
    return yolo3(backbone, COCO_CLASSES if classes is None else classes, **kwargs)


@register_model(name="yolo3_mobilenet1.0_voc", task="detection", metadata=_META)
def yolo3_mobilenet1_0_voc(classes: Sequence[str] | None = None, backbone: str | nn.Module = "mobilenet1.0",
                           **kwargs: Any) -> YOLOV3:
    """YOLOv3 on MobileNet 1.0, 20 VOC classes."""
    return yolo3(backbone, VOC_CLASSES if classes is None else classes, **kwargs)


@register_model(
    name="yolo3_mobilenet0.25_voc", task="detection", metadata=_META,
    # Numbers as the run in model_zoo_logs/<log>/ wrote them (tests/core/test_zoo.py compares them).
    weights=[fashion_scenes_weights(
        "detection/yolo3_mobilenet0.25_128-fashion-scenes", sha256="86840715d508a72bd9ae9c863c0d6c18d204fbeab16ccafb29c1ee3ac3a6fd16",
        metrics={'voc07_map': 53.35, 'coco_map': 32.26}, size=128, filters=[128, 64, 32])],
)
def yolo3_mobilenet0_25_voc(classes: Sequence[str] | None = None, backbone: str | nn.Module = "mobilenet0.25",
                            **kwargs: Any) -> YOLOV3:
    """YOLOv3 on MobileNet 0.25, 20 VOC classes (GluonCV's name; ``filters=`` narrows the detection blocks)."""
    return yolo3(backbone, VOC_CLASSES if classes is None else classes, **kwargs)


@register_model(name="yolo3_mobilenet0.25_coco", task="detection", metadata=_META)
def yolo3_mobilenet0_25_coco(classes: Sequence[str] | None = None, backbone: str | nn.Module = "mobilenet0.25",
                             **kwargs: Any) -> YOLOV3:
    """YOLOv3 on MobileNet 0.25, 80 COCO classes."""
    return yolo3(backbone, COCO_CLASSES if classes is None else classes, **kwargs)


@register_model(name="yolo3_mobilenet1.0_coco", task="detection", metadata=_META)
def yolo3_mobilenet1_0_coco(classes: Sequence[str] | None = None, backbone: str | nn.Module = "mobilenet1.0",
                            **kwargs: Any) -> YOLOV3:
    """YOLOv3 on MobileNet 1.0, 80 COCO classes."""
    return yolo3(backbone, COCO_CLASSES if classes is None else classes, **kwargs)
