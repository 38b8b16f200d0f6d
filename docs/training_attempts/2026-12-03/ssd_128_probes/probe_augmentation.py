"""Probe (issue 12): which SSD augmentation step keeps short from-scratch fashion-scenes runs near 0 mAP.

SSD-128 MobileNet 0.25, batch 16, SGD lr LR (100-step warm-up, cosine to 0 over STEPS), one DataLoader
worker, one thread; VOC07 mAP on the first 200 val canvases every 300 steps. VARIANT picks the training
transform: none (resize), flip (resize + flip), photo / zoom / crop (flip plus the photometric
distortion / zoom-out up to 1.5x / IoU crop), full (SSDDefaultTrainTransform, expand_ratio 1.5).

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python docs/training_attempts/2026-12-03/ssd_128_probes/probe_augmentation.py VARIANT LR STEPS
"""
import torch, time, sys, math, json
torch.set_num_threads(1)
from torch.utils.data import DataLoader
from toolkit.cv.data import FashionScenes
from toolkit.cv.presets.ssd import SSDDefaultValTransform, SSDDefaultTrainTransform
from toolkit.cv.data.detection import detection_batchify
from toolkit.cv.models.ssd import SSDMultiBoxLoss, SSDTargetGenerator
from toolkit.cv.metrics.detection import VOC07MApMetric
from toolkit.zoo import get_model
torch.manual_seed(0)
aug = sys.argv[1]; lr = float(sys.argv[2]); steps = int(sys.argv[3])
train = FashionScenes("train"); val = FashionScenes("val")
vtf = SSDDefaultValTransform(128, 128)
from toolkit.cv.presets._detection import DetectionPreset, mean_fill, IMAGENET_MEAN
from toolkit.cv.presets._iou_crop import BatchedRandomIoUCrop
from torchvision.transforms import v2
from torchvision import tv_tensors
R, FL = v2.Resize((128, 128), antialias=True), v2.RandomHorizontalFlip(0.5)
PD = v2.RandomPhotometricDistort(p=0.5)
ZO = v2.RandomZoomOut(fill={tv_tensors.Image: mean_fill(IMAGENET_MEAN), "others": 0}, side_range=(1.0, 1.5), p=0.5)
ttf = {"none": vtf, "full": SSDDefaultTrainTransform(128, 128, expand_ratio=1.5),
       "flip": DetectionPreset([], None, [R, FL]), "photo": DetectionPreset([PD], None, [R, FL]),
       "crop": DetectionPreset([], BatchedRandomIoUCrop(), [R, FL]), "zoom": DetectionPreset([ZO], None, [R, FL])}[aug]
class T(torch.utils.data.Dataset):
    def __init__(s, d, tf, n): s.d, s.tf, s.n = d, tf, n
    def __len__(s): return s.n
    def __getitem__(s, i): return s.tf(*s.d[i])
bf = detection_batchify()
tl = DataLoader(T(train, ttf, 8000), batch_size=16, shuffle=True, drop_last=True, num_workers=1, collate_fn=bf)
vl = DataLoader(T(val, vtf, 200), batch_size=16, collate_fn=bf)
model = get_model("ssd_128_mobilenet0.25_voc", classes=list(train.classes), data_shape=128)
opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * s / steps)))
tg, lf = SSDTargetGenerator(), SSDMultiBoxLoss()
def evaluate():
    model.eval(); m = VOC07MApMetric(iou_thresh=0.5, class_names=list(train.classes))
    with torch.no_grad():
        for x, labels in vl:
            ids, sc, bb = model(x); m.update(bb, ids, sc, labels[..., :4], labels[..., 4], labels[..., 5])
    model.train(); return 100 * m.get()[1][-1]
step, run, t0 = 0, [], time.time()
model.train()
while step < steps:
    for x, labels in tl:
        c, b, a = model(x); tot, cl, bl = lf(c, b, *tg(a, labels))
        opt.zero_grad(); tot.sum().backward(); opt.step(); sched.step(); step += 1
        run.append(float(tot.detach().sum()))
        if step % 100 == 0:
            print(json.dumps({"step": step, "loss100": round(sum(run[-100:]) / 100, 3), "s": round(time.time() - t0)}), flush=True)
        if step % 300 == 0 or step == steps:
            print(json.dumps({"step": step, "val200_voc07_map": round(evaluate(), 2)}), flush=True)
        if step >= steps: break
