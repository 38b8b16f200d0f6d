#!/bin/bash
# Resumable LR-ASPP zoo-row run (issue 13). Resumes from checkpoint-last.pt when present.
cd /work/wt/segrun
D=model_zoo_logs/segmentation/lraspp_mobilenetv3_large-fashion-scenes
R=""
[ -f $D/checkpoint-last.pt ] && R="--resume $D/checkpoint-last.pt"
OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE PYTHONPATH=. exec python scripts/segmentation/train.py --model lraspp --backbone mobilenetv3_large --model-kwargs '{"norm_momentum":0.1}' --dataset fashion-scenes --base-size 128 --crop-size 96 --batch-size 8 --test-batch-size 16 --epochs 30 --lr 0.05 --warmup-epochs 1 --weight-decay 1e-4 --val-interval 5 --final-eval --num-threads 1 --seed 0 --no-progress --log-interval 100 --save-dir $D $R
