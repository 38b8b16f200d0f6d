import time, torch, sys, types, json
sys.path.insert(0, ".")
torch.set_num_threads(2)
from scripts.segmentation.common import build_model
cfgs=[("lraspp","mobilenetv3_large",96,{"norm_momentum":0.1}),("lraspp","mobilenetv3_large",128,{"norm_momentum":0.1}),
      ("fcn","resnet18_v1s",96,{}),("deeplab","resnet18_v1s",96,{}), ("fcn","resnet18_v1s",128,{})]
for m,b,c,kw in cfgs:
    a=types.SimpleNamespace(model=m,backbone=b,model_kwargs=json.dumps(kw),base_size=128,crop_size=c,aux=False,dataset="fashion-scenes")
    net=build_model(a,11,[str(i) for i in range(11)]); net.train()
    opt=torch.optim.SGD(net.parameters(),lr=0.01,momentum=0.9)
    x=torch.randn(16,3,c,c); y=torch.randint(0,11,(16,c,c))
    ts=[]
    for i in range(8):
        t=time.perf_counter(); out=net(x); out=out[0] if isinstance(out,(tuple,list)) else out
        loss=torch.nn.functional.cross_entropy(out,y); opt.zero_grad(); loss.backward(); opt.step(); ts.append(time.perf_counter()-t)
    med=sorted(ts[2:])[3]; print(m,b,c,f"{med:.3f}s/step {16/med:.1f} img/s", flush=True)
