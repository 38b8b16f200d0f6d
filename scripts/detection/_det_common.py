"""The training loop shared by ``train_ssd.py``, ``train_yolo3.py`` and ``train_faster_rcnn.py``.

Flags follow GluonCV's detection scripts (``--network``, ``--data-shape``, ``--dataset``, ``--lr``,
``--lr-decay-epoch``, ``--warmup-epochs``, ``--mixup``, ``--no-wd``, ``--label-smooth``, ``--syncbn``,
``--resume``, ``--epochs``, ``--batch-size``, ``--save-prefix``). The run folder (``--save-prefix``) is laid
out as the classification script's: ``config.json``, ``log.jsonl``, ``train.log``, ``checkpoint-epochN.pt`` /
``checkpoint-last.pt`` (exact resume with ``--resume``), and at the end ``<model>.safetensors``,
``weights.sha256`` and ``metrics.json`` (``voc07_map`` = VOC07 mAP@0.5 and ``coco_map`` = COCO
mAP@[.5:.95] from pycocotools, in percent).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
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

DATASETS = ("voc", "coco", "fashion-scenes")


def build_parser(family: str, defaults: dict[str, Any]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=f"Train a {family} detector of the model zoo (GluonCV's flags).",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a = p.add_argument
    a("--network", default=defaults["network"], help="backbone part of the zoo name (e.g. mobilenet1.0); a zoo "
      "classifier without a preset name is used through backbone=")
    a("--data-shape", type=int, default=defaults.get("data_shape", 512), help="input side (SSD, YOLOv3)")
    a("--short", type=int, default=600, help="Faster R-CNN: shorter image side")
    a("--max-size", type=int, default=1000, help="Faster R-CNN: cap on the longer side")
    a("--use-fpn", action="store_true", help="Faster R-CNN: the FPN variant")
    a("--anchor-base-size", type=int, default=16, help="Faster R-CNN: anchor sizes are this x --anchor-scales")
    a("--anchor-scales", default=None, help="Faster R-CNN: comma-separated anchor scales (GluonCV: 2,4,8,16,32, "
      "all at the stride-16 level; FPN: one per level P2..P6); default: the model's")
    a("--rpn-train-pre-nms", type=int, default=None, help="Faster R-CNN: RPN proposals kept before NMS in training")
    a("--rpn-train-post-nms", type=int, default=None, help="Faster R-CNN: RPN proposals kept after NMS in training")
    a("--rpn-test-pre-nms", type=int, default=None, help="Faster R-CNN: RPN proposals kept before NMS in testing")
    a("--rpn-test-post-nms", type=int, default=None, help="Faster R-CNN: RPN proposals kept after NMS in testing")
    a("--rcnn-num-samples", type=int, default=None, help="Faster R-CNN: RoIs sampled per image for the R-CNN "
      "losses (C4: 128, FPN: 512)")
    a("--rcnn-pos-ratio", type=float, default=None, help="Faster R-CNN: positive fraction of those RoIs (0.25)")
    a("--dataset", default="voc", choices=DATASETS)
    a("--dataset-root", default=None, help="dataset folder (default: $TOOLKIT_DATA/<dataset>)")
    a("--batch-size", type=int, default=defaults.get("batch_size", 32), help="per process")
    a("--num-workers", "-j", type=int, default=0, help="data loader processes")
    a("--epochs", type=int, default=defaults.get("epochs", 240))
    a("--stop-after-epoch", type=int, default=None, help="stop (with a checkpoint) after this many epochs")
    a("--resume", default="", help="checkpoint to continue from (exactly)")
    a("--lr", type=float, default=defaults.get("lr", 0.001), help="learning rate for --batch-size x processes")
    a("--lr-mode", default="step", choices=["step", "cosine", "poly", "linear"])
    a("--lr-decay", type=float, default=0.1)
    a("--lr-decay-epoch", default=defaults.get("lr_decay_epoch", "160,200"))
    a("--warmup-epochs", type=float, default=0.0)
    a("--momentum", type=float, default=0.9)
    a("--wd", type=float, default=5e-4)
    a("--no-wd", action="store_true", help="no weight decay on biases and normalisation parameters")
    a("--expand-ratio", type=float, default=4.0, help="SSD, YOLOv3: largest side of the random expand (zoom-out) "
      "canvas relative to the image (GluonCV: 4; 1 turns it off); small inputs with small objects want less")
    a("--no-color-distort", action="store_true", help="SSD, YOLOv3: leave out the photometric distortion")
    a("--no-iou-crop", action="store_true", help="SSD, YOLOv3: leave out the IoU-constrained random crop")
    a("--filters", default="", help="YOLOv3: detection block widths, deepest first, e.g. 128,64,32 (default: "
      "GluonCV's 512,256,128); the head costs most of a small-input step")
    a("--mixup", action="store_true", help="YOLOv3: mix pairs of images (GluonCV's detection mixup)")
    a("--no-mixup-epochs", type=int, default=20, help="no mixup in the last N epochs")
    a("--label-smooth", action="store_true", help="YOLOv3: label smoothing of the class targets")
    a("--syncbn", action="store_true", help="synchronised batch norm across processes (torchrun)")
    a("--pretrained-base", default="false", help="'true', 'false' or a weights tag/path for the backbone")
    a("--save-prefix", default="", help="output folder (default params/<family>_<network>_<dataset>)")
    a("--save-interval", type=int, default=10, help="keep a numbered checkpoint every N epochs (0: only the last)")
    a("--val-interval", type=int, default=1, help="validate every N epochs (and after the last)")
    a("--log-interval", type=int, default=100)
    a("--seed", type=int, default=233)
    a("--num-threads", type=int, default=None)
    a("--max-train-samples", type=int, default=None, help="first N training images (tests)")
    a("--max-val-samples", type=int, default=None, help="first N validation images (tests)")
    a("--no-progress", action="store_true")
    return p


# --------------------------------------------------------------------------- data
def augmentation_kwargs(args) -> dict[str, Any]:
    """``expand_ratio``/``color_distort``/``iou_crop`` of the SSD and YOLOv3 training presets from the flags.

    ``getattr`` defaults (GluonCV's augmentation) keep namespaces built without these flags working.
    """
    return {"expand_ratio": getattr(args, "expand_ratio", 4.0),
            "color_distort": not getattr(args, "no_color_distort", False),
            "iou_crop": not getattr(args, "no_iou_crop", False)}


class _Subset(torch.utils.data.Dataset):
    def __init__(self, data, n):
        self.data, self.n = data, min(n, len(data))

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i >= self.n:
            raise IndexError(i)
        return self.data[i]

    def __getattr__(self, name):  # classes, coco, image_ids ... of the wrapped dataset
        if name in ("data", "n"):
            raise AttributeError(name)
        return getattr(self.data, name)


class _Transformed(torch.utils.data.Dataset):
    def __init__(self, data, transform):
        self.data, self.transform = data, transform

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        image, target = self.data[i]
        return self.transform(image, target)


def load_datasets(args) -> tuple[Any, Any]:
    """Untransformed ``(train, val)`` detection datasets."""
    from toolkit.cv import data as cvdata

    root = args.dataset_root
    if args.dataset == "voc":
        train = cvdata.VOCDetection(root, splits=((2007, "trainval"), (2012, "trainval")))
        val = cvdata.VOCDetection(root, splits=((2007, "test"),))
    elif args.dataset == "coco":
        train = cvdata.COCODetection(root, splits="instances_train2017")
        val = cvdata.COCODetection(root, splits="instances_val2017", skip_empty=False)
    else:
        train = cvdata.FashionScenes("train", root)
        val = cvdata.FashionScenes("val", root)
    if args.max_train_samples:
        train = _Subset(train, args.max_train_samples)
    if args.max_val_samples:
        val = _Subset(val, args.max_val_samples)
    return train, val


# --------------------------------------------------------------------------- model
def _pretrained(value: str) -> bool | str:
    low = value.lower()
    return True if low == "true" else False if low in ("false", "") else value


def _rcnn_kwargs(args) -> dict[str, Any]:
    """Builder arguments of the Faster R-CNN flags that change the architecture or the eval path (recorded in
    ``metrics.json``'s ``kwargs`` so that ``eval.py`` and the zoo rebuild the same model)."""
    out: dict[str, Any] = {}
    if getattr(args, "anchor_scales", None):
        sizes = [args.anchor_base_size * float(s) for s in args.anchor_scales.split(",") if s.strip()]
        sizes = [int(s) if s == int(s) else s for s in sizes]
        out["anchor_sizes"] = [[s] for s in sizes] if args.use_fpn else [sizes]
    return out


def _apply_rcnn_flags(model, args) -> None:
    """Proposal counts and R-CNN sampling of the Faster R-CNN flags, set on the built model (None: the model's)."""
    rpn, sampler = model.rpn, model.roi_heads.fg_bg_sampler
    for flag, table, mode in (("rpn_train_pre_nms", rpn._pre_nms_top_n, "training"),
                              ("rpn_train_post_nms", rpn._post_nms_top_n, "training"),
                              ("rpn_test_pre_nms", rpn._pre_nms_top_n, "testing"),
                              ("rpn_test_post_nms", rpn._post_nms_top_n, "testing")):
        value = getattr(args, flag, None)
        if value is not None:
            if value <= 0:
                raise SystemExit(f"--{flag.replace('_', '-')} must be positive, got {value}")
            table[mode] = int(value)
    if getattr(args, "rcnn_num_samples", None) is not None:
        if args.rcnn_num_samples <= 0:
            raise SystemExit(f"--rcnn-num-samples must be positive, got {args.rcnn_num_samples}")
        sampler.batch_size_per_image = int(args.rcnn_num_samples)
    if getattr(args, "rcnn_pos_ratio", None) is not None:
        if not 0.0 < args.rcnn_pos_ratio <= 1.0:
            raise SystemExit(f"--rcnn-pos-ratio must be in (0, 1], got {args.rcnn_pos_ratio}")
        sampler.positive_fraction = float(args.rcnn_pos_ratio)


def build_model(args, family: str, classes: list[str], extra: dict[str, Any] | None = None):
    """The zoo detector for ``--network``/``--data-shape`` re-headed for the dataset's classes.

    ``extra``: further builder arguments (``eval.py`` passes those a training run recorded).
    """
    from toolkit.zoo import list_models

    from toolkit.zoo import get_model

    suffix = "coco" if args.dataset == "coco" else "voc"
    if family == "ssd":
        name, fallback = f"ssd_{args.data_shape}_{args.network}_{suffix}", f"ssd_512_mobilenet1.0_{suffix}"
    elif family == "yolo3":
        name, fallback = f"yolo3_{args.network}_{suffix}", f"yolo3_darknet53_{suffix}"
    else:
        fpn = "fpn_" if args.use_fpn else ""
        name, fallback = f"faster_rcnn_{fpn}{args.network}_{suffix}", f"faster_rcnn_{fpn}resnet50_v1b_{suffix}"
    kwargs: dict[str, Any] = {"classes": list(classes), "pretrained_base": _pretrained(args.pretrained_base)}
    if family == "ssd":
        kwargs["data_shape"] = args.data_shape  # anchor sizes follow the input size
    filters = getattr(args, "filters", "")
    if filters:
        if family != "yolo3":
            raise SystemExit("--filters sets the YOLOv3 detection block widths; it means nothing for " + family)
        try:
            widths = [int(f) for f in filters.split(",")]
        except ValueError:
            widths = []
        if len(widths) != 3 or min(widths) < 1:
            raise SystemExit(f"--filters {filters!r}: three positive widths, deepest level first (e.g. 128,64,32)")
        kwargs["filters"] = widths
    if family == "faster_rcnn":
        # the builders' data_shape is (short side, longer-side cap), GluonCV's (600, 1000) by default: the
        # run's own sizes make the metadata (input_shape, preprocessing) what the weights were trained on
        kwargs["data_shape"] = [args.short, args.max_size]
        kwargs.update(_rcnn_kwargs(args))
    kwargs.update(extra or {})
    if name not in list_models(task="detection"):
        if args.network not in list_models(task="classification"):
            raise SystemExit(f"--network {args.network!r}: neither {name!r} nor a zoo classifier named so exists")
        kwargs["backbone"] = args.network
        name = fallback
    model = get_model(name, **kwargs)
    if args.syncbn:
        if not torch.cuda.is_available():
            raise SystemExit("--syncbn: torch's SyncBatchNorm runs on GPUs only, and this run is on CPU")
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if family == "faster_rcnn":
        _apply_rcnn_flags(model, args)
        if getattr(args, "rpn_test_pre_nms", None) or getattr(args, "rpn_test_post_nms", None):
            kwargs["rpn_test"] = [model.rpn._pre_nms_top_n["testing"], model.rpn._post_nms_top_n["testing"]]
    if family != "faster_rcnn":
        model.metadata["input_shape"] = [3, args.data_shape, args.data_shape]
        model.metadata["preprocessing"]["resize"] = [args.data_shape, args.data_shape]
    model.metadata["dataset"] = args.dataset
    model.build_kwargs = {k: v for k, v in kwargs.items()
                          if k in ("classes", "backbone", "data_shape", "filters", "anchor_sizes", "rpn_test")}
    return model, name


def param_groups(model: torch.nn.Module, wd: float, no_wd: bool) -> list[dict[str, Any]]:
    params = [p for p in model.parameters() if p.requires_grad]
    if not no_wd:
        return [{"params": params, "weight_decay": wd}]
    return [{"params": [p for p in params if p.ndim > 1], "weight_decay": wd},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]


# --------------------------------------------------------------------------- evaluation
def evaluate(model, loader, classes, val_set, family: str, args) -> dict[str, float]:
    """VOC07 mAP@0.5 (in the network's input coordinates) and, for COCO-format sets, COCO mAP@[.5:.95]."""
    from toolkit.cv.metrics.detection import COCODetectionMetric, VOC07MApMetric

    voc = VOC07MApMetric(iou_thresh=0.5, class_names=list(classes))
    coco = None
    if hasattr(val_set, "coco") or hasattr(getattr(val_set, "data", None), "coco"):
        shape = None if family == "faster_rcnn" else (args.data_shape, args.data_shape)
        coco = COCODetectionMetric(val_set.data if isinstance(val_set, _Subset) else val_set, data_shape=shape)
    model.eval()
    seen = 0
    with torch.inference_mode():
        for batch in loader:
            x, labels = batch[0], batch[1]
            if family == "faster_rcnn":
                ids, scores, boxes = model(x, image_sizes=batch[2])
            else:
                ids, scores, boxes = model(x)
            voc.update(boxes, ids, scores, labels[..., :4], labels[..., 4], labels[..., 5])
            if coco is not None:
                if family == "faster_rcnn":  # back to each original image's pixels
                    boxes = boxes.clone()
                    for i, (h, w) in enumerate(batch[2].tolist()):
                        info = coco.coco.imgs[coco._order[seen + i]]
                        valid = ids[i, :, 0] >= 0
                        boxes[i, valid, 0::2] *= info["width"] / w
                        boxes[i, valid, 1::2] *= info["height"] / h
                coco.update(boxes, ids, scores)
            seen += x.shape[0]
    out = {"voc07_map": 100.0 * float(voc.get()[1][-1])}
    if coco is not None:
        names, values = coco.get()
        out["coco_map"] = 100.0 * float(values[names.index("mAP")])
    return out


def _nan_to_none(v: float) -> float | None:
    return None if v != v else round(v, 2)


# --------------------------------------------------------------------------- loop
def main(family: str, defaults: dict[str, Any], presets: Callable, loss_fn: Callable,
         argv: list[str] | None = None) -> dict[str, Any]:
    """Train ``family``; ``presets(args) -> (train_tf, val_tf, batchify)``; ``loss_fn(model, x, labels, batch,
    args, epoch) -> (loss, {name: value})``."""
    args = build_parser(family, defaults).parse_args(argv)
    args.save_dir = args.save_prefix or f"params/{family}_{args.network}_{args.dataset}"
    run = start_run(args)
    dist_info, logger, start_wall = run.dist, run.logger, run.start_time
    train_set, val_set = load_datasets(args)
    classes = list(train_set.classes)
    model, name = build_model(args, family, classes)
    save_dir = run.save_dir
    num_params = sum(p.numel() for p in model.parameters())
    if args.mixup and family != "yolo3":
        raise SystemExit("--mixup is implemented for YOLOv3 only (as in GluonCV's scripts)")

    train_tf, val_tf, batchify = presets(args)
    sampler = DistributedSampler(train_set, num_replicas=dist_info.world_size, rank=dist_info.rank, shuffle=True,
                                 seed=args.seed, drop_last=False)
    common = dict(num_workers=args.num_workers, collate_fn=batchify)
    train_loader = DataLoader(_Transformed(train_set, train_tf), batch_size=args.batch_size, sampler=sampler,
                              drop_last=True, **common)
    val_loader = DataLoader(_Transformed(val_set, val_tf), batch_size=args.batch_size, shuffle=False,
                            generator=eval_generator(), **common)
    steps = len(train_loader)
    if steps == 0:
        raise SystemExit(f"no full batch of {args.batch_size} in {len(train_set)} training images per process")

    optimizer = torch.optim.SGD(param_groups(model, args.wd, args.no_wd), lr=args.lr, momentum=args.momentum,
                                **fused_options(model))
    decay = [int(e) for e in args.lr_decay_epoch.split(",") if e.strip()]

    def make_schedule() -> LRSchedule:
        return LRSchedule(args.lr_mode, args.epochs * steps, int(args.warmup_epochs * steps), decay=args.lr_decay,
                          step_iters=[e * steps for e in decay])

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, make_schedule())
    start_epoch, global_step, history = 0, 0, []
    if args.resume:
        ckpt = load_checkpoint(args.resume, model, optimizer, scheduler, restore_rng=False)
        start_epoch, global_step = int(ckpt["epoch"]), int(ckpt["step"])
        schedule = make_schedule()
        scheduler.lr_lambdas = [schedule] * len(optimizer.param_groups)
        for group, base_lr in zip(optimizer.param_groups, scheduler.base_lrs):
            group["lr"] = base_lr * schedule(scheduler.last_epoch)
        history = json.loads(ckpt.get("history", "[]"))
        start_wall -= float(ckpt.get("wall_time_s", 0.0))
        restore_rng_state(ckpt["rng_per_rank"].get(str(dist_info.rank), ckpt["rng"]))
        logger.info(f"resumed from {args.resume} at epoch {start_epoch} (step {global_step})")
    else:
        torch.manual_seed(args.seed + 1000 * dist_info.rank)
        random.seed(args.seed + 1000 * dist_info.rank)
        np.random.seed(args.seed + 1000 * dist_info.rank)

    train_model: torch.nn.Module = model
    if dist_info.distributed:
        train_model = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=family == "faster_rcnn")
    if dist_info.is_main:
        if start_epoch > 0 and (save_dir / "config.json").is_file():
            (save_dir / "config.json").replace(save_dir / f"config-before-resume-epoch{start_epoch}.json")
        dump_config(args, save_dir / "config.json", {
            "model": name, "resumed_from": args.resume or None, "start_epoch": start_epoch, "num_params": num_params,
            "classes": classes, "train_samples": len(train_set), "val_samples": len(val_set), "steps_per_epoch": steps,
            "world_size": dist_info.world_size, "global_batch_size": args.batch_size * dist_info.world_size,
            "metadata": model.metadata,
        })
    logger.info(f"model {name}: {num_params:,} parameters; {len(train_set)} training / {len(val_set)} validation "
                f"images; {steps} steps per epoch; {dist_info.world_size} process(es)")

    from tqdm import tqdm

    last_epoch = args.epochs if args.stop_after_epoch is None else min(args.epochs, args.stop_after_epoch)
    val = {"voc07_map": float("nan")}
    for epoch in range(start_epoch, last_epoch):
        sampler.set_epoch(epoch)
        train_model.train()
        sums: dict[str, float] = {}
        seen, tic = 0, time.time()
        bar = tqdm(train_loader, total=steps, desc=f"epoch {epoch + 1}/{args.epochs}", file=sys.stderr,
                   disable=args.no_progress or not dist_info.is_main, leave=False, dynamic_ncols=True)
        for i, batch in enumerate(bar):
            x, labels = batch[0], batch[1]
            loss, parts = loss_fn(train_model, x, labels, batch, args, epoch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch}, step {i}: lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            global_step += 1
            n = x.shape[0]
            seen += n
            for k, v in {"loss": float(loss.detach()), **parts}.items():
                sums[k] = sums.get(k, 0.0) + v * n
            if (i + 1) % args.log_interval == 0 or i + 1 == steps:
                rec = logger.log(kind="train", epoch=epoch, step=global_step, batch=i + 1,
                                 lr=optimizer.param_groups[0]["lr"], **{k: v / seen for k, v in sums.items()},
                                 throughput=seen * dist_info.world_size / max(time.time() - tic, 1e-9))
                bar.set_postfix(loss=f"{rec['loss']:.4f}")
        epoch_time = time.time() - tic
        if (epoch + 1) % max(1, args.val_interval) == 0 or epoch + 1 == args.epochs:
            val = evaluate(model, val_loader, classes, val_set, family, args)
        else:
            val = {"voc07_map": float("nan")}
        rec = logger.log(kind="epoch", epoch=epoch, step=global_step, lr=optimizer.param_groups[0]["lr"],
                         **{k: v / max(seen, 1) for k, v in sums.items()},
                         **{f"val_{k}": v for k, v in val.items()}, epoch_time_s=epoch_time,
                         throughput=seen * dist_info.world_size / max(epoch_time, 1e-9))
        history.append({k: rec[k] for k in rec if k.startswith(("val_", "loss", "epoch"))})
        logger.info(f"[epoch {epoch + 1}/{args.epochs}] loss {rec['loss']:.4f} "
                    + " ".join(f"{k} {v:.2f}" for k, v in val.items()) + f" ({epoch_time:.1f}s)")
        rng_all = gather_rng_states(capture_rng_state(), dist_info)
        if dist_info.is_main:
            state = dict(epoch=epoch + 1, step=global_step, history=json.dumps(history),
                         wall_time_s=time.time() - start_wall, rng_per_rank=rng_all, args=json.dumps(vars(args)))
            save_checkpoint(save_dir / "checkpoint-last.pt", model, optimizer, scheduler, **state)
            if args.save_interval and (epoch + 1) % args.save_interval == 0:
                save_checkpoint(save_dir / f"checkpoint-epoch{epoch + 1}.pt", model, optimizer, scheduler, **state)

    result: dict[str, Any] = {}
    if last_epoch == args.epochs and dist_info.is_main:
        from toolkit.zoo import save_weights

        if start_epoch >= last_epoch:
            val = evaluate(model, val_loader, classes, val_set, family, args)
        weights = save_dir / f"{name}.safetensors"
        meta = {"toolkit": json.dumps({"model": name, "dataset": args.dataset, "metadata": model.metadata},
                                      sort_keys=True, default=str)}
        sha = save_weights(model, weights, metadata=meta)
        (save_dir / "weights.sha256").write_text(f"{sha}  {weights.name}\n")
        result = {"model": name, "dataset": args.dataset, **{k: _nan_to_none(v) for k, v in val.items()},
                  "num_params": num_params, "epochs": args.epochs, "wall_time_s": round(time.time() - start_wall, 1),
                  "hardware": hardware_info(world_size=dist_info.world_size), "sha256": sha, "weights": weights.name,
                  "kwargs": model.build_kwargs}
        (save_dir / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        logger.info(f"final: {val}; weights {weights} (sha256 {sha[:12]}...)")
    logger.close()
    cleanup_distributed()
    return result
