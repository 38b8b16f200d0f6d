#!/bin/bash
# learning probe: one at a time, 1 thread, niced; args: tag, then flags
cd /work/wt/rcnn
tag=$1; shift
uptime > /tmp/frcnn/$tag.uptime
OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE PYTHONPATH=$PWD nice -n 10 python scripts/detection/train_faster_rcnn.py \
  --dataset fashion-scenes --num-threads 1 --num-workers 1 --max-val-samples 200 \
  --log-interval 50 --no-progress --save-interval 0 --save-prefix /tmp/frcnn/$tag "$@" > /tmp/frcnn/$tag.out 2>&1
uptime >> /tmp/frcnn/$tag.uptime
