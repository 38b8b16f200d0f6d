"""Proposal recall and detection quality of a Faster R-CNN checkpoint on the first N val canvases."""
import sys, json, torch
sys.path.insert(0, "scripts/detection")
torch.set_num_threads(1)
import _det_common as c
from train_faster_rcnn import presets, DEFAULTS
from torch.utils.data import DataLoader
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import box_iou
ckpt_path, n = sys.argv[1], int(sys.argv[2])
args = c.build_parser("faster_rcnn", DEFAULTS).parse_args(sys.argv[3:] + ["--dataset", "fashion-scenes", "--max-train-samples", "1", "--max-val-samples", str(n)])
train, val = c.load_datasets(args)
model, _ = c.build_model(args, "faster_rcnn", list(train.classes))
sd = torch.load(ckpt_path, map_location="cpu", weights_only=False)
model.load_state_dict(sd["model"] if "model" in sd else sd)
model.eval()
_, vtf, bf = presets(args)
loader = DataLoader(c._Transformed(val, vtf), batch_size=8, collate_fn=bf)
hit5 = hit7 = tot = 0; props = 0; det_hit = 0; cls_ok = 0
with torch.inference_mode():
    for x, labels, sizes in loader:
        feats = model.feature_maps(x)
        images = ImageList(x, [tuple(s) for s in sizes.tolist()])
        proposals, _ = model.rpn(images, feats)
        ids, scores, boxes = model(x, image_sizes=sizes)
        for i, p in enumerate(proposals):
            gt = labels[i][labels[i][:, 4] >= 0]
            if len(gt) == 0: continue
            iou = box_iou(gt[:, :4], p)
            best = iou.max(1).values
            hit5 += int((best >= 0.5).sum()); hit7 += int((best >= 0.7).sum()); tot += len(gt); props += len(p)
            keep = ids[i, :, 0] >= 0
            if keep.any():
                di = box_iou(gt[:, :4], boxes[i][keep])
                m = di.max(1)
                det_hit += int((m.values >= 0.5).sum())
                cls_ok += int(((m.values >= 0.5) & (ids[i][keep][m.indices, 0] == gt[:, 4])).sum())
print(json.dumps({"gt": tot, "proposals_per_image": props / n, "proposal_recall@0.5": hit5 / tot,
                  "proposal_recall@0.7": hit7 / tot, "detection_recall@0.5 (any class)": det_hit / tot,
                  "detection_recall@0.5 (right class)": cls_ok / tot}))
