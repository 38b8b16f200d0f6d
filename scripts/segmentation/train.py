#!/usr/bin/env python
"""Reference training script for semantic segmentation (GluonCV's ``scripts/segmentation/train.py``).

Flags follow GluonCV's where they exist (``--model fcn|psp|deeplab|lraspp``,
``--backbone``, ``--dataset``, ``--aux``, ``--aux-weight``, ``--base-size``,
``--crop-size``, ``--lr`` with the poly schedule (power 0.9), ``--syncbn``,
``--resume``, ``--eval``). One process::

    python scripts/segmentation/train.py --model fcn --backbone resnet18_v1s --dataset fashion-scenes \\
        --aux --base-size 128 --crop-size 112 --epochs 30 --lr 0.01 --save-dir runs/fcn18

Several processes (data parallel; ``--batch-size`` per process; ``--syncbn`` syncs BatchNorm statistics)::

    torchrun --nproc_per_node 2 scripts/segmentation/train.py ...

Writes into ``--save-dir``: ``config.json``, ``log.jsonl`` (``val_pixAcc``/``val_mIoU``
in percent per epoch, single-scale ``val`` mode: centre crops), ``train.log``,
``checkpoint-last.pt`` (exact resume with ``--resume``), and at the end
``<model>.safetensors``, ``weights.sha256`` and ``metrics.json`` (``pixAcc``,
``mIoU``; with ``--final-eval`` also ``ss_*`` (whole images, one scale) and
``ms_*`` (whole images, GluonCV's scales with flips, :class:`MultiEvalModel`)).
``--eval`` evaluates ``--resume``'s weights (or ``--weights``) instead of training.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.common import (  # noqa: E402
    fused_options,
    LRSchedule,
    capture_rng_state,
    cleanup_distributed,
    dump_config,
    eval_generator,
    gather_rng_states,
    hardware_info,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
    start_run,
)
from scripts.segmentation.common import (  # noqa: E402
    DATASETS,
    MS_SCALES,
    Mapped,
    Subset,
    build_dataset,
    build_model,
    evaluate_batches,
    evaluate_multiscale,
    model_name,
    presets,
)
from toolkit.cv.models.segmentation import MixSoftmaxCrossEntropyLoss  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train a semantic segmentation model of the zoo.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a = p.add_argument
    a("--model", default="fcn", choices=["fcn", "psp", "deeplab", "lraspp"])
    a("--backbone", default="resnet50", help="resnet50 (GluonCV's v1s), any zoo ResNet v1b-family name "
      "(resnet18_v1s), or mobilenetv3_large (deeplab, lraspp)")
    a("--model-kwargs", default="{}", help="JSON dict of extra model arguments")
    a("--dataset", default="pascal_voc", choices=DATASETS)
    a("--data-dir", default=None, help="dataset folder (default: $TOOLKIT_DATA/<dataset's folder>)")
    a("--scenes-kwargs", default="{}", help="JSON arguments of build_fashion_scenes for --dataset fashion-scenes")
    a("--train-split", default="train")
    a("--aux", action="store_true", help="auxiliary FCN head (loss weight --aux-weight)")
    a("--aux-weight", type=float, default=0.5)
    a("--base-size", type=int, default=520)
    a("--crop-size", type=int, default=480)
    a("--batch-size", type=int, default=16, help="per process")
    a("--test-batch-size", type=int, default=16)
    a("--epochs", type=int, default=50)
    a("--stop-after-epoch", type=int, default=None, help="stop (with a checkpoint) after this many epochs; resume later")
    a("--lr", type=float, default=1e-3, help="base learning rate (poly schedule, power 0.9)")
    a("--lr-mode", default="poly", choices=["poly", "cosine", "step", "linear"])
    a("--power", type=float, default=0.9, help="exponent of the poly schedule")
    a("--warmup-epochs", type=float, default=0.0)
    a("--momentum", type=float, default=0.9)
    a("--weight-decay", type=float, default=1e-4)
    a("--no-wd", action="store_true", help="no weight decay on biases and norm parameters")
    a("--syncbn", action="store_true", help="synchronised BatchNorm across processes (torchrun)")
    a("--resume", default=None, help="checkpoint to continue from exactly (or to evaluate with --eval)")
    a("--eval", action="store_true", help="evaluate only (weights of --resume or --weights)")
    a("--weights", default=None, help="safetensors weights to evaluate with --eval")
    a("--no-val", action="store_true", help="skip validation during training")
    a("--val-interval", type=int, default=1)
    a("--final-eval", action="store_true", help="after training: whole-image single-scale and multi-scale+flip "
      "evaluation (ss_*/ms_* in metrics.json)")
    a("--test-scales", default=",".join(str(s) for s in MS_SCALES), help="scales of the multi-scale evaluation")
    a("--num-threads", type=int, default=None)
    a("--num-workers", "-j", type=int, default=0)
    a("--save-dir", default="runs/segmentation")
    a("--log-interval", type=int, default=20)
    a("--max-train-samples", type=int, default=None)
    a("--max-val-samples", type=int, default=None)
    a("--seed", type=int, default=0)
    a("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    a("--no-progress", action="store_true")
    return p


def _progress(disable: bool, desc: str):
    from tqdm import tqdm

    return lambda it: tqdm(it, desc=desc, file=sys.stderr, disable=disable, leave=False, dynamic_ncols=True)


def _param_groups(model, wd: float, no_wd: bool) -> list[dict[str, Any]]:
    params = [p for p in model.parameters() if p.requires_grad]
    if not no_wd:
        return [{"params": params, "weight_decay": wd}]
    return [{"params": [p for p in params if p.ndim > 1], "weight_decay": wd},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    run = start_run(args)
    dist_info, save_dir, logger, start_wall = run.dist, run.save_dir, run.logger, run.start_time
    if args.device == "auto":
        device = torch.device("cuda", dist_info.local_rank) if torch.cuda.is_available() else torch.device("cpu")
    else:
        device = torch.device(args.device)
    scenes_kwargs = json.loads(args.scenes_kwargs)

    train_raw = build_dataset(args.dataset, args.train_split, args.data_dir, scenes_kwargs)
    val_raw = build_dataset(args.dataset, "val", args.data_dir, scenes_kwargs)
    classes, num_class = train_raw.classes, train_raw.num_class
    train_raw, val_raw = Subset(train_raw, args.max_train_samples), Subset(val_raw, args.max_val_samples)
    train_tf, val_tf, testval_tf = presets(args, num_class)

    model = build_model(args, num_class, classes)
    if args.syncbn:
        if dist_info.distributed and device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        else:
            # SyncBatchNorm runs only on CUDA with several processes; say so rather than fail inside DDP.
            logger.info("--syncbn: needs several CUDA processes (torchrun on GPUs); plain BatchNorm kept")
    model = model.to(device)
    num_params = sum(p.numel() for p in model.parameters())
    name = model_name(args)
    progress = _progress(args.no_progress or not dist_info.is_main, "eval")

    if args.eval:
        if args.weights:
            from toolkit.zoo import load_weights

            load_weights(model, args.weights)
        elif args.resume:
            load_checkpoint(args.resume, model, restore_rng=False)
        else:
            raise SystemExit("--eval needs --resume CHECKPOINT or --weights FILE")
        val_loader = DataLoader(Mapped(val_raw, val_tf), batch_size=args.test_batch_size, shuffle=False)
        pix, miou = evaluate_batches(model, val_loader, num_class, device, progress)
        logger.info(f"eval ({len(val_raw)} images, val mode): pixAcc {pix:.2f} mIoU {miou:.2f}")
        logger.close()
        cleanup_distributed()
        return {"pixAcc": pix, "mIoU": miou}

    criterion = MixSoftmaxCrossEntropyLoss(aux=args.aux, aux_weight=args.aux_weight)
    optimizer = torch.optim.SGD(_param_groups(model, args.weight_decay, args.no_wd), lr=args.lr,
                                momentum=args.momentum, **fused_options(model))
    sampler = DistributedSampler(train_raw, num_replicas=dist_info.world_size, rank=dist_info.rank, shuffle=True,
                                 seed=args.seed, drop_last=False)
    train_loader = DataLoader(Mapped(train_raw, train_tf), batch_size=args.batch_size, sampler=sampler,
                              drop_last=True, num_workers=args.num_workers)
    val_loader = DataLoader(Mapped(val_raw, val_tf), batch_size=args.test_batch_size, shuffle=False,
                            num_workers=args.num_workers, generator=eval_generator())
    steps = len(train_loader)
    if steps == 0:
        raise SystemExit(f"no full batch of {args.batch_size} in {len(train_raw)} training images per process")

    def make_schedule() -> LRSchedule:
        return LRSchedule(args.lr_mode, args.epochs * steps, int(args.warmup_epochs * steps), power=args.power)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, make_schedule())
    start_epoch, global_step, history = 0, 0, []
    if args.resume:
        ckpt = load_checkpoint(args.resume, model, optimizer, scheduler, restore_rng=False)
        start_epoch, global_step = int(ckpt["epoch"]), int(ckpt["step"])
        schedule = make_schedule()  # a function of this run's flags (--epochs may change)
        scheduler.lr_lambdas = [schedule] * len(optimizer.param_groups)
        for group, base in zip(optimizer.param_groups, scheduler.base_lrs):
            group["lr"] = base * schedule(scheduler.last_epoch)
        history = json.loads(ckpt.get("history", "[]"))
        start_wall -= float(ckpt.get("wall_time_s", 0.0))
        rng = ckpt.get("rng_per_rank", {}).get(str(dist_info.rank))
        restore_rng_state(rng if rng is not None else ckpt["rng"])
        logger.info(f"resumed from {args.resume} at epoch {start_epoch} (step {global_step})")
    else:
        torch.manual_seed(args.seed + 1000 * dist_info.rank)  # augmentation streams differ per rank

    train_model: torch.nn.Module = model
    if dist_info.distributed:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    if dist_info.is_main:
        if start_epoch > 0 and (save_dir / "config.json").is_file():
            (save_dir / "config.json").replace(save_dir / f"config-before-resume-epoch{start_epoch}.json")
        dump_config(args, save_dir / "config.json", {
            "resumed_from": args.resume, "start_epoch": start_epoch, "num_params": num_params,
            "num_class": num_class, "num_classes": num_class, "classes": list(classes), "train_samples": len(train_raw),
            "val_samples": len(val_raw), "steps_per_epoch": steps, "world_size": dist_info.world_size,
            "global_batch_size": args.batch_size * dist_info.world_size, "device": str(device),
            "metadata": model.metadata,
        })
    logger.info(f"{name}: {num_params:,} parameters; {len(train_raw)} training / {len(val_raw)} validation "
                f"images; {steps} steps per epoch; {dist_info.world_size} process(es) on {device}")

    last_epoch = args.epochs if args.stop_after_epoch is None else min(args.epochs, args.stop_after_epoch)
    pix = miou = float("nan")
    for epoch in range(start_epoch, last_epoch):
        sampler.set_epoch(epoch)
        train_model.train()
        loss_sum, seen, tic = 0.0, 0, time.time()
        bar = _progress(args.no_progress or not dist_info.is_main, f"epoch {epoch + 1}/{args.epochs}")(train_loader)
        for i, (x, y) in enumerate(bar):
            x, y = x.to(device), y.to(device)
            loss = criterion(train_model(x), y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch}, step {i}: lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            global_step += 1
            loss_sum += float(loss.detach()) * len(y)
            seen += len(y)
            if (i + 1) % args.log_interval == 0 or i + 1 == steps:
                logger.log(kind="train", epoch=epoch, step=global_step, batch=i + 1, loss=loss_sum / seen,
                           lr=optimizer.param_groups[0]["lr"],
                           throughput=seen * dist_info.world_size / max(time.time() - tic, 1e-9))
        epoch_time = time.time() - tic
        if not args.no_val and ((epoch + 1) % max(1, args.val_interval) == 0 or epoch + 1 == args.epochs):
            pix, miou = evaluate_batches(model, val_loader, num_class, device)
        else:
            pix = miou = float("nan")
        rec = logger.log(kind="epoch", epoch=epoch, step=global_step, loss=loss_sum / max(seen, 1),
                         lr=optimizer.param_groups[0]["lr"], val_pixAcc=pix, val_mIoU=miou, epoch_time_s=epoch_time)
        history.append({k: rec[k] for k in ("epoch", "loss", "val_pixAcc", "val_mIoU")})
        val_text = "no val" if math.isnan(pix) else f"val pixAcc {pix:.2f} mIoU {miou:.2f}"
        logger.info(f"[epoch {epoch + 1}/{args.epochs}] loss {rec['loss']:.4f} {val_text} ({epoch_time:.1f}s)")
        rng_all = gather_rng_states(capture_rng_state(), dist_info)
        if dist_info.is_main:
            save_checkpoint(save_dir / "checkpoint-last.pt", model, optimizer, scheduler, epoch=epoch + 1,
                            step=global_step, history=json.dumps(history), wall_time_s=time.time() - start_wall,
                            rng_per_rank=rng_all, args=json.dumps(vars(args)))

    result: dict[str, Any] = {}
    if last_epoch == args.epochs and dist_info.is_main:
        from toolkit.zoo import save_weights

        if start_epoch >= last_epoch or args.no_val:
            pix, miou = evaluate_batches(model, val_loader, num_class, device)
        result = {"model": name, "dataset": args.dataset, "pixAcc": round(pix, 2), "mIoU": round(miou, 2)}
        if args.final_eval:
            testval = Mapped(val_raw, testval_tf)
            scales = [float(s) for s in args.test_scales.split(",") if s.strip()]
            ss = evaluate_multiscale(model, testval, num_class, device, [1.0], flip=False, progress=progress)
            ms = evaluate_multiscale(model, testval, num_class, device, scales, flip=True, progress=progress)
            result.update(ss_pixAcc=round(ss[0], 2), ss_mIoU=round(ss[1], 2), ms_pixAcc=round(ms[0], 2),
                          ms_mIoU=round(ms[1], 2))
            logger.log(kind="final_eval", ss_pixAcc=ss[0], ss_mIoU=ss[1], ms_pixAcc=ms[0], ms_mIoU=ms[1],
                       scales=scales)
        model = model.cpu()
        weights = save_dir / f"{name}.safetensors"
        meta = {"toolkit": json.dumps({"model": name, "dataset": args.dataset, "metadata": model.metadata},
                                      sort_keys=True, default=str)}
        sha = save_weights(model, weights, metadata=meta)
        (save_dir / "weights.sha256").write_text(f"{sha}  {weights.name}\n")
        result.update(num_params=num_params, epochs=args.epochs, wall_time_s=round(time.time() - start_wall, 1),
                      hardware=hardware_info(world_size=dist_info.world_size), sha256=sha, weights=weights.name,
                      kwargs={"backbone": args.backbone, "aux": bool(args.aux), "base_size": args.base_size,
                              "crop_size": args.crop_size, **json.loads(args.model_kwargs)})
        # The run's summary record backs every number of metrics.json (scripts/zoo_table.py --check).
        logger.log(kind="final", **{k: v for k, v in result.items() if isinstance(v, (int, float))})
        (save_dir / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        logger.info("final: " + ", ".join(f"{k} {v:.2f}" for k, v in result.items()
                                          if k.endswith(("pixAcc", "mIoU"))) + f"; weights {weights} (sha256 {sha[:12]}...)")
    logger.close()
    cleanup_distributed()
    return result


if __name__ == "__main__":
    main()
