"""Step time (forward, targets, loss, backward; batch 16 at 128 px, one thread) of YOLOv3 with full-width heads on three backbones. Loaded machine: load average 1.6 -> 2.8 during the run."""
import time, torch, statistics
torch.set_num_threads(1)
from toolkit.zoo import get_model
from toolkit.cv.models.yolo import YOLOV3Loss, YOLOV3TargetGenerator
classes=[str(i) for i in range(10)]
ms={'mb0.25':get_model('yolo3_darknet53_voc',classes=classes,pretrained_base=False,backbone='mobilenet0.25'),
    'mb0.5':get_model('yolo3_darknet53_voc',classes=classes,pretrained_base=False,backbone='mobilenet0.5'),
    'mb1.0':get_model('yolo3_mobilenet1.0_voc',classes=classes,pretrained_base=False)}
x=torch.randn(16,3,128,128)
lab=torch.tensor([[10,10,50,60,1,0],[60,60,120,100,3,0]],dtype=torch.float32).expand(16,2,6).clone()
t={k:[] for k in ms}
for r in range(4):
  for k,m in ms.items():
    m.train(); t0=time.time()
    out=m(x); tg=YOLOV3TargetGenerator(m.num_class)(out,lab,(128,128)); l=sum(v.sum() for v in YOLOV3Loss()(out,*tg))/16
    l.backward(); t[k].append(time.time()-t0)
for k in ms: print(k, sum(p.numel() for p in ms[k].parameters()), 'median s/step', round(statistics.median(t[k][1:]),3))
