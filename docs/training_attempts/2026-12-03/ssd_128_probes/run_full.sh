#!/bin/bash
cd "$(git rev-parse --show-toplevel)"
name=$1; shift
mkdir -p runs/ssd_probes
OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE PYTHONPATH=$PWD python scripts/detection/train_ssd.py --data-shape 128 --dataset fashion-scenes \
  --max-val-samples 200 --val-interval 1 --lr-mode cosine --wd 5e-4 --no-wd --batch-size 16 --num-workers 1 \
  --num-threads 1 --log-interval 50 --no-progress --save-interval 0 --save-prefix runs/ssd_probes/$name "$@" > runs/ssd_probes/$name.out 2>&1
