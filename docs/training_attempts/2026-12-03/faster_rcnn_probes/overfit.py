"""Can the Faster R-CNN path (preset, batchify, RPN/R-CNN targets, losses, eval decoding, VOC07 mAP) learn
16 training canvases by heart? A pipeline check, not a probe of generalisation."""
import sys, json, time, torch
sys.path.insert(0, "scripts/detection")
torch.set_num_threads(1)
torch.manual_seed(0)
import _det_common as c
from train_faster_rcnn import presets, DEFAULTS
from toolkit.cv.metrics.detection import VOC07MApMetric
args = c.build_parser("faster_rcnn", DEFAULTS).parse_args(sys.argv[2:] + ["--dataset", "fashion-scenes", "--max-train-samples", "16", "--max-val-samples", "1"])
steps = int(sys.argv[1])
train, _ = c.load_datasets(args)
model, _ = c.build_model(args, "faster_rcnn", list(train.classes))
_, vtf, bf = presets(args)  # no flip: the same 16 canvases every step
batches = [bf([vtf(*train[i]) for i in range(j, j + 8)]) for j in (0, 8)]
opt = torch.optim.Adam(model.parameters(), 1e-3)
log = []
t0 = time.time()
for s in range(steps):
    model.train()
    x, labels, sizes = batches[s % 2]
    losses = model(x, labels, image_sizes=sizes)
    loss = sum(losses.values())
    opt.zero_grad(); loss.backward(); opt.step()
    if s % 25 == 0 or s == steps - 1:
        log.append({"step": s, **{k: round(float(v), 4) for k, v in losses.items()}})
        print(log[-1], flush=True)
model.eval()
metric = VOC07MApMetric(iou_thresh=0.5, class_names=list(train.classes))
with torch.inference_mode():
    for x, labels, sizes in batches:
        ids, scores, boxes = model(x, image_sizes=sizes)
        metric.update(boxes, ids, scores, labels[..., :4], labels[..., 4], labels[..., 5])
print(json.dumps({"steps": steps, "train16_voc07_map": round(100 * float(metric.get()[1][-1]), 2), "seconds": round(time.time() - t0)}))
