#!/usr/bin/env bash
# The main job, end to end on a fresh machine, on real data that installs offline:
#   set up -> train a zoo model on Fashion-MNIST -> evaluate -> export to ONNX ->
#   int8-quantize (calibrated on the training images) -> run fp32 and int8 graphs from
#   Python, C++ and Java and check that they agree.
# Environment: EPOCHS (default 3), MODEL (default cifar_resnet20_v1), OUT (default runs/main).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
export OMP_WAIT_POLICY=PASSIVE
EPOCHS=${EPOCHS:-3}
MODEL=${MODEL:-cifar_resnet20_v1}
OUT=${OUT:-runs/main}
mkdir -p "$OUT"
step() { printf '\n==== %s ====\n' "$*"; }

step "1/6 train $MODEL on Fashion-MNIST for $EPOCHS epochs"
python3 scripts/classification/train.py --model "$MODEL" --dataset fashion-mnist \
  --num-epochs "$EPOCHS" --batch-size 128 --lr 0.1 --lr-mode cosine --warmup-epochs 1 --wd 5e-4 \
  --seed 0 --no-progress --log-interval 100 --save-frequency 0 --save-dir "$OUT/train"
WEIGHTS="$OUT/train/$MODEL.safetensors"

step "2/6 evaluate the trained weights on the test set"
python3 scripts/classification/eval.py --model "$MODEL" --weights "$WEIGHTS" --dataset fashion-mnist

step "3/6 export to ONNX + metadata"
python3 -m toolkit export "$WEIGHTS" --out "$OUT/export/$MODEL"

step "4/6 int8 post-training quantization, fp32 vs int8 accuracy and latency"
python3 -m toolkit quantize "$OUT/export/$MODEL" --calib fashion-mnist --num-calib-batches 16 \
  --calib-mode entropy --val fashion-mnist

step "5/6 evaluate the exported fp32 and int8 graphs (onnxruntime)"
python3 scripts/classification/eval.py --exported "$OUT/export/$MODEL" --dataset fashion-mnist
python3 scripts/classification/eval.py --exported "$OUT/export/$MODEL-int8" --dataset fashion-mnist

step "6/6 build the C++ and Java runners and compare them with Python on test images"
cmake -S deploy/cpp -B deploy/cpp/build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build deploy/cpp/build -j2 >/dev/null
bash deploy/java/build.sh >/dev/null
python3 - "$OUT/images" <<'PY'
import sys
from pathlib import Path
from toolkit.cv.data import FashionMNIST
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
test = FashionMNIST(train=False)
from PIL import Image
for i in range(8):
    image, label = test[i]  # uint8 (1, 28, 28)
    Image.fromarray(image[0].numpy()).save(out / f"test{i}_label{label}.png")
PY
# C++ and Java run the graphs with OpenVINO: compare them with Python on the same engine
# (they must agree to 1e-4 in fp32 and int8), and report where onnxruntime's int8 differs.
for prefix in "$OUT/export/$MODEL" "$OUT/export/$MODEL-int8"; do
  python3 -m toolkit predict "$prefix" "$OUT"/images/*.png --json --topk 3 > "$prefix.onnxruntime.json"
  python3 -m toolkit predict "$prefix" "$OUT"/images/*.png --json --topk 3 --runtime openvino > "$prefix.openvino.json"
  deploy/cpp/build/toolkit-predict "$prefix" "$OUT"/images/*.png --json --topk 3 > "$prefix.cpp.json"
  deploy/java/predict "$prefix" "$OUT"/images/*.png --json --topk 3 > "$prefix.java.json"
  python3 - "$prefix" <<'PY'
import json, sys
prefix = sys.argv[1]
runs = {k: json.load(open(f"{prefix}.{k}.json")) for k in ("openvino", "cpp", "java", "onnxruntime")}
ref = runs["openvino"]
top = lambda run: [[t["index"] for t in r["topk"]] for r in run]
for name in ("cpp", "java"):
    worst = max(abs(a["prob"] - b["prob"]) for r, s in zip(runs[name], ref) for a, b in zip(r["topk"], s["topk"]))
    assert top(runs[name]) == top(ref) and worst < 1e-4, (name, worst)
    print(f"{prefix}: {name:4s} top-3 identical to Python (OpenVINO) on {len(ref)} images, max |prob diff| {worst:.1e}")
same = sum(a[0] == b[0] for a, b in zip(top(runs["onnxruntime"]), top(ref)))
print(f"{prefix}: Python onnxruntime and OpenVINO agree on top-1 for {same}/{len(ref)} images")
for r in ref:
    print(f"  {r['input']}: {r['topk'][0]['label']} ({r['topk'][0]['prob']:.3f})")
PY
done
step "done: results under $OUT"
