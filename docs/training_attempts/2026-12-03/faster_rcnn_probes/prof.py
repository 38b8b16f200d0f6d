"""Where a Faster R-CNN training step's time goes (loaded machine; 1 thread)."""
import sys, time, torch
sys.path.insert(0, "scripts/detection")
torch.set_num_threads(1)
import _det_common as c
from train_faster_rcnn import presets
from torch.utils.data import DataLoader
argv = sys.argv[1:]
args = c.build_parser("faster_rcnn", {"network": "mobilenet0.25"}).parse_args(
    ["--dataset", "fashion-scenes", "--max-train-samples", "64", "--max-val-samples", "8"] + argv)
train, val = c.load_datasets(args)
model, name = c.build_model(args, "faster_rcnn", list(train.classes))
tf, vtf, bf = presets(args)
loader = DataLoader(c._Transformed(train, tf), batch_size=args.batch_size, collate_fn=bf)
batches = list(loader)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
model.train()
from torch.profiler import profile, ProfilerActivity
def step(b):
    losses = model(b[0], b[1], image_sizes=b[2]); loss = sum(losses.values())
    opt.zero_grad(); loss.backward(); opt.step()
step(batches[0])
ts = []
for b in batches[1:4]:
    t = time.time(); step(b); ts.append(time.time() - t)
print(name, args.batch_size, "step s", [round(t, 3) for t in ts], b[0].shape)
with profile(activities=[ProfilerActivity.CPU]) as p:
    step(batches[4])
print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
