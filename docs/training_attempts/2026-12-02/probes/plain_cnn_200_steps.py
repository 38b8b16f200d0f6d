import sys, time; sys.path.insert(0,'.')
import torch, types, json, torch.nn as nn
torch.set_num_threads(2); torch.manual_seed(0)
from scripts.segmentation.common import build_dataset, Mapped, presets
from toolkit.cv.metrics import SegmentationMetric
a=types.SimpleNamespace(base_size=128,crop_size=96,dataset="fashion-scenes",model="lraspp")
tr,va,te=presets(a,11)
ds=Mapped(build_dataset("fashion-scenes","train",None),tr)
def cbr(i,o,s=1): return nn.Sequential(nn.Conv2d(i,o,3,s,1,bias=False),nn.BatchNorm2d(o),nn.ReLU())
net=nn.Sequential(cbr(3,32),cbr(32,64,2),cbr(64,64),cbr(64,128,2),cbr(128,128),cbr(128,128),nn.Conv2d(128,11,1),nn.Upsample(scale_factor=4,mode='bilinear'))
opt=torch.optim.Adam(net.parameters(),lr=1e-3)
t0=time.time()
for step in range(200):
    idx=torch.randint(0,2000,(16,))
    b=[ds[int(i)] for i in idx]; x=torch.stack([p[0] for p in b]); y=torch.stack([p[1] for p in b])
    out=net(x); loss=torch.nn.functional.cross_entropy(out,y,ignore_index=-1); opt.zero_grad(); loss.backward(); opt.step()
    if step%25==0:
        m=SegmentationMetric(11); m.update(y,out.detach()); print(step, round(loss.item(),3), [round(v,3) for v in m.get()], round(time.time()-t0), flush=True)
