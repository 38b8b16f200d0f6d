#!/bin/bash
# usage: run_probe.sh NAME [extra flags]: a YOLOv3-128 fashion-scenes probe (resize + flip, one thread, 200 val
# canvases), run from anywhere; writes runs/yolo_probes/NAME/ (ignored), NAME.out and NAME.uptime there.
name=$1; shift
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)" || exit 1
mkdir -p runs/yolo_probes
uptime > runs/yolo_probes/$name.uptime
OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE PYTHONPATH=$PWD nice -n 10 python scripts/detection/train_yolo3.py \
  --data-shape 128 --dataset fashion-scenes --batch-size 16 --lr-mode cosine --wd 5e-4 --no-wd \
  --expand-ratio 1 --no-color-distort --no-iou-crop --num-workers 1 --num-threads 1 \
  --max-val-samples 200 --log-interval 50 --no-progress --save-interval 0 \
  --save-prefix runs/yolo_probes/$name "$@" > runs/yolo_probes/$name.out 2>&1
uptime >> runs/yolo_probes/$name.uptime
# P1: run_probe.sh P1 --network mobilenet0.25 --filters 128,64,32 --epochs 3 --lr 0.01 --warmup-epochs 0.5
# P2: run_probe.sh P2 --network mobilenet0.25 --filters 128,64,32 --epochs 3 --lr 0.05 --warmup-epochs 0.5
# P3: run_probe.sh P3 --network mobilenet0.25 --filters 128,64,32 --epochs 3 --lr 0.003 --warmup-epochs 0.5
# P4: run_probe.sh P4 --network mobilenet0.25 --filters 256,128,64 --epochs 3 --stop-after-epoch 2 --lr 0.003 --warmup-epochs 0.5
# P5: run_probe.sh P5 --network mobilenet0.25 --filters 128,64,32 --epochs 3 --lr 0.001 --warmup-epochs 0.5
