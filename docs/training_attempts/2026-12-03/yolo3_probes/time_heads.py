"""Step time of YOLOv3-MobileNet 0.25 with narrower detection blocks (filters=) and of MobileNet 1.0 with the narrowest; batch 16 at 128 px, one thread. Loaded machine: load average 2.9 -> 4.1 during the run."""
import time, torch, statistics
torch.set_num_threads(1)
from toolkit.zoo import get_model
from toolkit.cv.models.yolo import YOLOV3Loss, YOLOV3TargetGenerator
classes=[str(i) for i in range(10)]
ms={f:get_model('yolo3_darknet53_voc',classes=classes,pretrained_base=False,backbone='mobilenet0.25',filters=f) for f in [(512,256,128),(256,128,64),(128,64,32)]}
ms['mb1.0 f128']=get_model('yolo3_mobilenet1.0_voc',classes=classes,pretrained_base=False,filters=(128,64,32))
x=torch.randn(16,3,128,128)
lab=torch.tensor([[10,10,50,60,1,0],[60,60,120,100,3,0]],dtype=torch.float32).expand(16,2,6).clone()
t={k:[] for k in ms}; tt={k:[] for k in ms}
for r in range(4):
  for k,m in ms.items():
    m.train(); t0=time.time()
    out=m(x); t1=time.time(); tg=YOLOV3TargetGenerator(m.num_class)(out,lab,(128,128)); tt[k].append(time.time()-t1); l=sum(v.sum() for v in YOLOV3Loss()(out,*tg))/16
    l.backward(); t[k].append(time.time()-t0)
for k in ms: print(k, sum(p.numel() for p in ms[k].parameters()), 'median s/step', round(statistics.median(t[k][1:]),3), 'targets', round(statistics.median(tt[k][1:]),3))
