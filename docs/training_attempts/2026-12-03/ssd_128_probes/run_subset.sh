#!/bin/bash
# usage: exp.sh NAME extra-args...
cd "$(git rev-parse --show-toplevel)"
name=$1; shift
mkdir -p runs/ssd_probes
OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE PYTHONPATH=$PWD python scripts/detection/train_ssd.py --data-shape 128 --dataset fashion-scenes \
  --max-train-samples 3200 --max-val-samples 200 --val-interval 100 --lr-mode cosine --wd 5e-4 --no-wd \
  --num-threads 1 --log-interval 25 --no-progress --save-interval 0 --save-prefix runs/ssd_probes/$name "$@" > runs/ssd_probes/$name.out 2>&1
