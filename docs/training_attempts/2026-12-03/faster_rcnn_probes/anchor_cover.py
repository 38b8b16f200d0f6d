"""Share of fashion-scenes val boxes whose best anchor (C4, stride 16, 128x128 input) reaches IoU 0.5 / 0.7."""
import json, os, torch
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import box_iou
d = json.load(open(os.path.expanduser("~/.toolkit/datasets/fashion_scenes/annotations/instances_val.json")))
b = torch.tensor([a["bbox"] for a in d["annotations"]], dtype=torch.float32)
b[:, 2:] += b[:, :2]
for sizes in [(32, 64, 128, 256, 512), (16, 32, 64), (16, 32, 64, 128), (12, 24, 48, 96)]:
    gen = AnchorGenerator((sizes,), ((0.5, 1.0, 2.0),))
    a = gen(ImageList(torch.zeros(1, 3, 128, 128), [(128, 128)]), [torch.zeros(1, 1, 8, 8)])[0]
    best = box_iou(b, a).max(1).values
    print(sizes, f"anchors {len(a)}  IoU>=0.5: {(best >= 0.5).float().mean():.3f}  >=0.7: {(best >= 0.7).float().mean():.3f}  median best {best.median():.2f}")
