import sys, time; sys.path.insert(0,'.')
import torch, types, json
torch.set_num_threads(2); torch.manual_seed(0)
from scripts.segmentation.common import build_dataset, Mapped, presets, build_model
from toolkit.cv.metrics import SegmentationMetric
opt_name=sys.argv[1]; lr=float(sys.argv[2])
a=types.SimpleNamespace(base_size=128,crop_size=96,dataset="fashion-scenes",model="lraspp",backbone="mobilenetv3_large",model_kwargs=json.dumps({"norm_momentum":0.1}),aux=False)
tr,va,te=presets(a,11)
ds=Mapped(build_dataset("fashion-scenes","train",None),tr)
net=build_model(a,11,[str(i) for i in range(11)])
opt=torch.optim.Adam(net.parameters(),lr=lr) if opt_name=="adam" else torch.optim.SGD(net.parameters(),lr=lr,momentum=0.9,weight_decay=1e-4)
t0=time.time()
for step in range(int(sys.argv[3])):
    idx=torch.randint(0,2000,(16,))
    b=[ds[int(i)] for i in idx]; x=torch.stack([p[0] for p in b]); y=torch.stack([p[1] for p in b])
    net.train(); out=net(x); out=out[0] if isinstance(out,(tuple,list)) else out
    loss=torch.nn.functional.cross_entropy(out,y,ignore_index=-1); opt.zero_grad(); loss.backward(); opt.step()
    if step%25==0:
        m=SegmentationMetric(11); m.update(y,out.detach()); print(step, round(loss.item(),3), [round(v,3) for v in m.get()], round(time.time()-t0), flush=True)
