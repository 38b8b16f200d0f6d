#!/usr/bin/env bash
# The main job's path for a detector, end to end on real data that installs offline:
#   set up -> train a small SSD on the fashion-scenes set (Fashion-MNIST items on textured canvases, built
#   from Debian's dataset-fashion-mnist) -> evaluate (VOC07 mAP) -> export to ONNX with the NMS in the graph ->
#   int8-quantize (fp32 vs int8 mAP) -> run fp32 and int8 graphs from Python (onnxruntime, OpenVINO), C++ and
#   Java and check that they agree.
# A runtime that refuses a graph is reported with its own error and skipped where that is allowed (OpenVINO
# on an int8 detector graph); fp32 C++ and Java must agree with Python (OpenVINO), and so must int8 C++ and
# Java wherever Python's OpenVINO runs the int8 graph.
# The default is a small schedule that exercises the whole path on 2 CPU cores (SSD MobileNet 0.25, 128x128,
# the first 1,000 training canvases for 2 epochs, 200 validation canvases): it proves the path, it does not
# train a useful detector (docs/training_attempts: 3 full epochs of the same SSD, 65 min, VOC07 mAP 1.9 %).
# Environment: EPOCHS (default 2), NETWORK (default mobilenet0.25, any zoo classifier), DATA_SHAPE (default 128),
#   MAX_TRAIN (first N training images, default 1000; 0 = all 8,000), MAX_VAL (first N validation images,
#   default 200; 0 = all 1,000), THRESHOLD (default 0.1: the small schedule's detector scores about 0.1-0.15),
#   OUT (default runs/main-detection), SKIP_SETUP=1 (skip tools/setup.sh on a machine already set up).
# Duration at the defaults with SKIP_SETUP=1: 25 and 36 min (1,521 s and 2,148 s) in two runs on a 2-core AMD
# EPYC shared with other jobs (load average 9-17), of which training 12-13 min; an idle machine takes less.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ "${SKIP_SETUP:-0}" == 1 ]] || bash tools/setup.sh
export OMP_WAIT_POLICY=PASSIVE
EPOCHS=${EPOCHS:-2}
NETWORK=${NETWORK:-mobilenet0.25}
DATA_SHAPE=${DATA_SHAPE:-128}
THRESHOLD=${THRESHOLD:-0.1}
MAX_TRAIN=${MAX_TRAIN:-1000}
MAX_VAL=${MAX_VAL:-200}
OUT=${OUT:-runs/main-detection}
SUBSET=()
[[ "$MAX_TRAIN" != 0 ]] && SUBSET+=(--max-train-samples "$MAX_TRAIN")
VAL=()
[[ "$MAX_VAL" != 0 ]] && VAL+=(--max-val-samples "$MAX_VAL")
NUM_VAL=()
[[ "$MAX_VAL" != 0 ]] && NUM_VAL+=(--num-val "$MAX_VAL")
mkdir -p "$OUT"
step() { printf '\n==== %s ====\n' "$*"; }

step "0/6 build the fashion-scenes set once (offline, from Debian's Fashion-MNIST)"
python3 -c "from toolkit.cv.data import build_fashion_scenes, FashionScenes; build_fashion_scenes(); print(FashionScenes('train'), FashionScenes('val'), sep='\n')"

step "1/6 train SSD ($NETWORK, ${DATA_SHAPE}x${DATA_SHAPE}) on fashion-scenes for $EPOCHS epochs"
python3 scripts/detection/train_ssd.py --network "$NETWORK" --data-shape "$DATA_SHAPE" --dataset fashion-scenes \
  --epochs "$EPOCHS" --batch-size 16 --lr 0.01 --lr-mode cosine --warmup-epochs 1 --seed 0 --no-progress \
  --log-interval 50 --save-interval 0 --save-prefix "$OUT/train" "${SUBSET[@]}" "${VAL[@]}"
WEIGHTS="$OUT/train/$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['weights'])" "$OUT/train/metrics.json")"

step "2/6 evaluate the trained weights on the validation set (VOC07 mAP@0.5, COCO mAP)"
python3 scripts/detection/eval.py --algorithm ssd --network "$NETWORK" --data-shape "$DATA_SHAPE" \
  --dataset fashion-scenes --pretrained "$WEIGHTS" "${VAL[@]}"

step "3/6 export to ONNX + metadata (NMS inside the graph)"
python3 -m toolkit export "$WEIGHTS" --out "$OUT/export/ssd"

step "4/6 int8 post-training quantization, fp32 vs int8 VOC07 mAP and latency"
python3 -m toolkit quantize "$OUT/export/ssd" --calib fashion-scenes --num-calib-batches 8 --batch-size 8 \
  --calib-mode naive --val fashion-scenes "${NUM_VAL[@]}"

step "5/6 build the C++ and Java runners"
cmake -S deploy/cpp -B deploy/cpp/build -DCMAKE_BUILD_TYPE=Release -DTOOLKIT_PYTHON="$(command -v python3)" >/dev/null
cmake --build deploy/cpp/build -j2 >/dev/null
bash deploy/java/build.sh >/dev/null

step "6/6 run fp32 and int8 from Python (onnxruntime, OpenVINO), C++ and Java on validation canvases"
python3 - "$OUT/images" <<'PY'
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from toolkit.cv.data import FashionScenes

out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
val = FashionScenes("val")
for i in range(8):
    image, _ = val[i]  # uint8 (3, H, W)
    Image.fromarray(np.ascontiguousarray(image.numpy().transpose(1, 2, 0))).save(out / f"val{i}.png")
PY
# run NAME CMD...: the JSON goes to $prefix.NAME.json; a refusal (exit 1 or 2) leaves its one-line error in
# $prefix.NAME.err and no JSON (the comparison below reports it)
run() {
  local name=$1; shift
  rm -f "$prefix.$name.json" "$prefix.$name.err"
  if ! "$@" > "$prefix.$name.json.tmp" 2> "$prefix.$name.err"; then
    rm -f "$prefix.$name.json.tmp"  # the comparison below prints the refusal
  else
    mv "$prefix.$name.json.tmp" "$prefix.$name.json"
  fi
}
for prefix in "$OUT/export/ssd" "$OUT/export/ssd-int8"; do
  run onnxruntime python3 -m toolkit predict "$prefix" "$OUT"/images/*.png --json --threshold "$THRESHOLD" \
    --draw "$prefix.drawn"
  run openvino python3 -m toolkit predict "$prefix" "$OUT"/images/*.png --json --threshold "$THRESHOLD" \
    --runtime openvino
  run cpp deploy/cpp/build/toolkit-predict "$prefix" "$OUT"/images/*.png --json --threshold "$THRESHOLD"
  run java deploy/java/predict "$prefix" "$OUT"/images/*.png --json --threshold "$THRESHOLD"
  python3 - "$prefix" <<'PY'
import json
import sys
from pathlib import Path

prefix = sys.argv[1]
int8 = prefix.endswith("-int8")
runs, refused = {}, {}
for name in ("onnxruntime", "openvino", "cpp", "java"):
    path = Path(f"{prefix}.{name}.json")
    if path.is_file():
        runs[name] = json.loads(path.read_text())
    else:
        refused[name] = (Path(f"{prefix}.{name}.err").read_text().strip().splitlines() or ["?"])[-1]
# onnxruntime must run both graphs and OpenVINO the fp32 one; C++ and Java run OpenVINO as Python's
# OpenVINO does, so they must run every graph Python's OpenVINO runs (and may only refuse one it refuses)
assert "onnxruntime" in runs, f"{prefix}: Python onnxruntime failed: {refused['onnxruntime']}"
if not int8:
    assert "openvino" in runs, f"{prefix}: fp32 refused by Python OpenVINO: {refused['openvino']}"
if "openvino" in runs:
    assert "cpp" in runs and "java" in runs, f"{prefix}: a native runner refused what Python OpenVINO runs: {refused}"


def labels(run):
    return [[d["index"] for d in r["detections"]] for r in run]


def worst(a, b):
    return max([0.0] + [max(abs(x["score"] - y["score"]), *(abs(u - v) / 100 for u, v in zip(x["box"], y["box"])))
                        for r, s in zip(a, b) for x, y in zip(r["detections"], s["detections"])])


for name, why in refused.items():
    print(f"{prefix}: {name:11s} skipped: {why}")
if "openvino" in runs:  # C++ and Java run OpenVINO too: they must print what Python prints on it
    ref = runs["openvino"]
    for name in ("cpp", "java"):
        if name in runs:
            w = worst(runs[name], ref)
            assert labels(runs[name]) == labels(ref) and w < 1e-3, (name, w)
            print(f"{prefix}: {name:11s} same {sum(map(len, labels(ref)))} detections as Python (OpenVINO) on "
                  f"{len(ref)} images, max |score| (|box|/100 px) difference {w:.1e}")
    same = sum(a == b for a, b in zip(labels(runs["onnxruntime"]), labels(ref)))
    print(f"{prefix}: Python onnxruntime and OpenVINO give the same labels on {same}/{len(ref)} images, "
          f"max difference {worst(runs['onnxruntime'], ref):.1e}")
for r in runs["onnxruntime"]:
    found = ", ".join(f"{d['label']} {d['score']:.2f}" for d in r["detections"]) or "(nothing)"
    print(f"  {Path(r['input']).name}: {found}")
print(f"  pictures (onnxruntime, plot_bbox): {prefix}.drawn/")
PY
done
step "done: results under $OUT"
