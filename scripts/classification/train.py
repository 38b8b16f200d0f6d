#!/usr/bin/env python
"""Reference training script for image classification.

Flags follow GluonCV's ``train_imagenet.py`` / ``train_cifar10.py`` where they
existed. One process::

    python scripts/classification/train.py --model cifar_resnet20_v1 --dataset fashion-mnist \\
        --num-epochs 20 --lr 0.1 --lr-mode cosine --save-dir runs/r20

Several processes (data parallel; ``--batch-size`` is per process)::

    torchrun --nproc_per_node 2 scripts/classification/train.py ...

Writes into ``--save-dir``: ``config.json`` (resolved flags and environment),
``log.jsonl`` (one JSON object per logged step and per epoch), ``train.log``
(text), ``checkpoint-epochN.pt`` / ``checkpoint-last.pt`` (exact resume with
``--resume-from``), and at the end ``<model>.safetensors``, ``weights.sha256``
and ``metrics.json`` (``top1``/``top5`` in percent, ``num_params``,
``wall_time_s``, ``hardware``, ``dataset``).
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.common import (  # noqa: E402
    fused_options,
    LRSchedule,
    cleanup_distributed,
    dump_config,
    eval_generator,
    finish_run,
    hardware_info,
    load_checkpoint,
    parse_args,
    save_checkpoint,
    start_run,
)
from toolkit.cv import presets  # noqa: E402
from toolkit.cv.metrics import TopKAccuracy  # noqa: E402

DATASETS = ("imagenet", "cifar10", "cifar100", "mnist", "fashion-mnist", "folder")


# --------------------------------------------------------------------------- flags
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train an image classifier of the model zoo.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a = p.add_argument
    a("--model", required=True, help="zoo name (toolkit.zoo.list_models('classification'))")
    a("--use-pretrained", nargs="?", const="DEFAULT", default=None, metavar="WEIGHTS",
      help="start from pretrained weights (GluonCV's flag): the model's DEFAULT, or a tag, 'torchvision[:NAME]' or a "
           "path; a classifier for other classes is newly initialised")
    a("--model-kwargs", default="{}", help="JSON dict of extra builder arguments, e.g. '{\"norm_layer\": \"group\"}'")
    a("--norm-layer", default="batch", choices=["batch", "group"],
      help="normalisation injected into the model (group: GroupNorm with --num-groups)")
    a("--num-groups", type=int, default=8, help="groups of --norm-layer group")
    a("--dataset", default="fashion-mnist", choices=DATASETS)
    a("--data-dir", default=None, help="dataset folder (default: $TOOLKIT_DATA/<dataset>; for 'folder': "
      "a folder with train/ and val/ sub-folders of class folders)")
    a("--input-size", type=int, default=None, help="crop size (default: the dataset's native size)")
    a("--batch-size", type=int, default=128, help="per process")
    a("--num-epochs", type=int, default=20)
    a("--stop-after-epoch", type=int, default=None,
      help="stop (with a checkpoint) after this many epochs of the --num-epochs schedule; resume later")
    a("--optimizer", default="nag", choices=["sgd", "nag", "adamw"])
    a("--lr", type=float, default=0.1, help="learning rate for --batch-size x processes")
    a("--lr-mode", default="cosine", choices=["cosine", "step", "poly", "linear"])
    a("--lr-decay", type=float, default=0.1, help="factor of --lr-mode step")
    a("--lr-decay-epoch", default="40,60", help="epochs at which --lr-mode step decays, comma separated")
    a("--warmup-epochs", type=float, default=0.0)
    a("--wd", type=float, default=1e-4, help="weight decay")
    a("--momentum", type=float, default=0.9)
    a("--no-wd", action="store_true", help="no weight decay on biases and normalisation parameters")
    a("--last-gamma", action="store_true", help="zero-init the last norm of each residual branch")
    a("--label-smoothing", type=float, default=0.0, help="epsilon (GluonCV's flag is a switch for 0.1)")
    a("--mixup", action="store_true", help="mixup training")
    a("--mixup-alpha", type=float, default=0.2)
    a("--mixup-off-epoch", type=int, default=0, help="no mixup in the last N epochs")
    a("--no-augment", action="store_true", help="train on the evaluation transform (debugging, exactness tests)")
    a("--teacher", default=None, help="zoo name of a distillation teacher")
    a("--teacher-weights", default=None, help="path or tag of the teacher's weights (default: its published ones)")
    a("--temperature", type=float, default=20.0, help="distillation temperature")
    a("--hard-weight", type=float, default=0.5, help="weight of the hard-label loss in distillation")
    a("--sampler", default="random", choices=["random", "multiscale", "multiscale-vbs"],
      help="multiscale(-vbs): CVNets multi-scale sampler with fixed (variable) batch size")
    a("--min-crop-size", type=int, default=None, help="smallest multi-scale crop (default: 0.75 x input size)")
    a("--max-crop-size", type=int, default=None, help="largest multi-scale crop (default: 1.25 x input size)")
    a("--num-scales", type=int, default=3)
    a("--scale-divisor", type=int, default=4, help="multi-scale crops are multiples of this")
    a("--dtype", default="float32", choices=["float32", "bfloat16"], help="bfloat16: autocast mixed precision")
    a("--hybridize", action="store_true", help="run the model as a captured graph (HybridBlock.hybridize)")
    a("--compile", action="store_true", help="with --hybridize: also torch.compile the graph")
    a("--no-autotune", action="store_true",
      help="with --hybridize: keep PyTorch's own convolution kernels instead of timing the candidates per layer "
           "(the timed choice may differ between runs, and with it the float rounding; a resumed run is "
           "bit-identical only with this flag)")
    a("--channels-last", action="store_true", help="NHWC memory format (about 2x faster convs on CPU)")
    a("--num-threads", type=int, default=None, help="torch intra-op threads per process")
    a("--num-workers", "-j", type=int, default=0, help="data loader processes")
    a("--resume-from", default=None, help="checkpoint to continue from (exactly)")
    a("--save-dir", default="params", help="output folder")
    a("--save-frequency", type=int, default=1, help="keep a numbered checkpoint every N epochs (0: only the last)")
    a("--log-interval", type=int, default=50, help="log every N steps")
    a("--eval-batch-size", type=int, default=256)
    a("--val-interval", type=int, default=1, help="validate every N epochs (and always after the last)")
    a("--max-train-samples", type=int, default=None, help="use only the first N training samples (tests)")
    a("--max-val-samples", type=int, default=None, help="use only the first N validation samples (tests)")
    a("--seed", type=int, default=0)
    a("--no-progress", action="store_true", help="no tqdm progress bars")
    return p


# --------------------------------------------------------------------------- data
class _Resize:
    """Picklable: resize a sample to ``(h, w)`` after the transform (multi-scale training)."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, sample, size):
        from torchvision.transforms.v2 import functional as TF

        image, label = sample
        x = self.transform(image)
        if tuple(x.shape[-2:]) != tuple(size):
            x = TF.resize(x, list(size), antialias=False)
        return x, label


class _Subset(torch.utils.data.Dataset):
    def __init__(self, data, n):
        self.data, self.n = data, min(n, len(data))

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i >= self.n:
            raise IndexError(i)
        return self.data[i]


def load_datasets(args) -> tuple[Any, Any, list[str] | None, int, int]:
    """Return ``(train, val, class_names, num_classes, in_channels)`` (untransformed)."""
    from toolkit.cv import data as cvdata

    root = args.data_dir
    if args.dataset == "imagenet":
        train, val = cvdata.ImageNet(root, train=True), cvdata.ImageNet(root, train=False)
    elif args.dataset == "folder":
        if root is None:
            raise SystemExit("--dataset folder needs --data-dir with train/ and val/ folders of class folders")
        train = cvdata.ImageFolderDataset(Path(root) / "train")
        val = cvdata.ImageFolderDataset(Path(root) / "val")
        if train.classes != val.classes:
            raise SystemExit(f"{root}: train/ and val/ have different class folders")
    else:
        cls = {"cifar10": cvdata.CIFAR10, "cifar100": cvdata.CIFAR100, "mnist": cvdata.MNIST,
               "fashion-mnist": cvdata.FashionMNIST}[args.dataset]
        train, val = cls(root, train=True), cls(root, train=False)
    classes = list(train.classes) if getattr(train, "classes", None) else None
    num_classes = len(classes) if classes else int(max(train.targets)) + 1
    in_channels = 1 if args.dataset in ("mnist", "fashion-mnist") else 3
    if args.max_train_samples:
        train = _Subset(train, args.max_train_samples)
    if args.max_val_samples:
        val = _Subset(val, args.max_val_samples)
    return train, val, classes, num_classes, in_channels


class _Pair:
    """Picklable ``(image, label) -> (transform(image), label)``."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, sample):
        return self.transform(sample[0]), sample[1]


class _Mapped(torch.utils.data.Dataset):
    def __init__(self, data, fn):
        self.data, self.fn = data, fn

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        return self.fn(self.data[i])


def build_loaders(args, train, val, dist_info):
    size = args.input_size or presets.DATASET_STATS[args.dataset]["size"]
    train_tf = presets.eval_preset(args.dataset, crop=size) if args.no_augment else presets.train_preset(args.dataset, crop=size)
    val_tf = presets.eval_preset(args.dataset, crop=size)
    common = dict(num_workers=args.num_workers, persistent_workers=False)
    if args.sampler == "random":
        # DistributedSampler: one global permutation per (seed, epoch), strided over ranks, so N
        # processes of batch B see exactly the samples one process of batch N*B sees.
        sampler = DistributedSampler(train, num_replicas=dist_info.world_size, rank=dist_info.rank,
                                     shuffle=True, seed=args.seed, drop_last=False)
        train_loader = DataLoader(_Mapped(train, _Pair(train_tf)), batch_size=args.batch_size, sampler=sampler,
                                  drop_last=True, **common)
    else:
        from toolkit.data import (
            MultiScaleDataset,
            MultiScaleSampler,
            VariableBatchSampler,
        )

        cls = VariableBatchSampler if args.sampler == "multiscale-vbs" else MultiScaleSampler
        sampler = cls(len(train), args.batch_size, crop_size=size,
                      min_crop_size=args.min_crop_size or int(round(size * 0.75)),
                      max_crop_size=args.max_crop_size or int(round(size * 1.25)),
                      num_scales=args.num_scales, divisor=args.scale_divisor, shuffle=True, drop_last=True,
                      seed=args.seed, num_parts=dist_info.world_size, part_index=dist_info.rank)
        ds = MultiScaleDataset(train, _Resize(train_tf), (size, size))
        train_loader = DataLoader(ds, batch_sampler=sampler, **common)
    val_loader = DataLoader(_Mapped(val, _Pair(val_tf)), batch_size=args.eval_batch_size, shuffle=False,
                            generator=eval_generator(), **common)
    return train_loader, val_loader, sampler


# --------------------------------------------------------------------------- model
def _norm_layer(args):
    if args.norm_layer == "batch":
        return None
    groups = args.num_groups

    def group_norm(channels: int) -> torch.nn.Module:
        return torch.nn.GroupNorm(math.gcd(groups, channels), channels)

    return group_norm


def build_model(args, num_classes: int, in_channels: int, classes: list[str] | None):
    from toolkit.zoo import WeightsError, get_model

    kwargs = json.loads(args.model_kwargs)
    kwargs.update(classes=num_classes, in_channels=in_channels)
    if args.last_gamma:
        kwargs["last_gamma"] = True
    norm = _norm_layer(args)
    if norm is not None:
        kwargs["norm_layer"] = norm
    try:
        # --use-pretrained: everything but the classifier (and grey input's first conv) from the weights
        model = get_model(args.model, pretrained=args.use_pretrained or False, **kwargs)
    except TypeError as err:  # a builder without last_gamma / norm_layer / a --model-kwargs key
        raise SystemExit(f"model {args.model!r} does not take the arguments {sorted(kwargs)}: {err}") from err
    except WeightsError as err:
        raise SystemExit(f"--use-pretrained {args.use_pretrained}: {err}") from err
    size = args.input_size or presets.DATASET_STATS[args.dataset]["size"]
    if isinstance(getattr(model, "metadata", None), dict):
        model.metadata.update({
            "task": "classification",
            "input_shape": [in_channels, size, size],
            "classes": classes,
            "preprocessing": presets.preprocessing_metadata(args.dataset, crop=size),
            "dataset": args.dataset,
        })
    return model


def param_groups(model: torch.nn.Module, wd: float, no_wd: bool) -> list[dict[str, Any]]:
    """With ``no_wd``, biases and normalisation weights (all 1-d tensors) get no weight decay (GluonCV)."""
    if not no_wd:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": wd}]
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(args, model) -> torch.optim.Optimizer:
    groups = param_groups(model, args.wd, args.no_wd)
    if args.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=args.lr, **fused_options(model))
    return torch.optim.SGD(groups, lr=args.lr, momentum=args.momentum, nesterov=args.optimizer == "nag",
                           **fused_options(model))


# --------------------------------------------------------------------------- losses
def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """Cross-entropy with integer or probability targets (mixup), with label smoothing."""
    return F.cross_entropy(logits, target, label_smoothing=label_smoothing)


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, target: torch.Tensor, temperature: float,
                      hard_weight: float, label_smoothing: float) -> torch.Tensor:
    """GluonCV's ``DistillationSoftmaxCrossEntropyLoss``: hard CE * w + soft CE(T) * T^2 * (1 - w)."""
    hard = soft_cross_entropy(student, target, label_smoothing)
    soft_t = F.softmax(teacher / temperature, dim=1)
    soft = -(soft_t * F.log_softmax(student / temperature, dim=1)).sum(dim=1).mean()
    return hard_weight * hard + (1.0 - hard_weight) * soft * temperature ** 2


# --------------------------------------------------------------------------- loops
def evaluate(model, loader, channels_last: bool, autocast_dtype, dist_info) -> dict[str, float]:
    metric = TopKAccuracy((1, 5))
    model.eval()
    with torch.inference_mode(), torch.autocast("cpu", dtype=autocast_dtype, enabled=autocast_dtype is not None):
        for x, y in loader:
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            metric.update(model(x).float(), y)
    # Every rank evaluates the whole validation set (small next to training): no reduction needed.
    return metric.get()


def _progress(iterable, total: int, desc: str, disable: bool):
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, disable=disable, leave=False, dynamic_ncols=True)


class EpochResult(NamedTuple):
    """What :func:`train_one_epoch` measured."""

    loss: float
    train_acc: float
    seen: int
    time_s: float
    global_step: int


def train_one_epoch(args, epoch: int, train_model, loader, steps_per_epoch: int, optimizer, scheduler, logger,
                    dist_info, global_step: int, mixup=None, teacher=None, autocast_dtype=None) -> EpochResult:
    """One pass over ``loader``: forward, loss (distillation with ``teacher``), step, and step logging.

    Raises
    ------
    FloatingPointError
        If the loss becomes NaN or infinite (the message suggests a lower ``--lr``).
    """
    train_model.train()
    metric = TopKAccuracy((1,))
    loss_sum, seen, tic = 0.0, 0, time.time()
    use_mixup = mixup is not None and epoch < args.num_epochs - args.mixup_off_epoch
    bar = _progress(loader, steps_per_epoch, f"epoch {epoch + 1}/{args.num_epochs}",
                    args.no_progress or not dist_info.is_main)
    for i, (x, y) in enumerate(bar):
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        target = y
        if use_mixup:
            x, target = mixup(x, y)
        with torch.autocast("cpu", dtype=autocast_dtype, enabled=autocast_dtype is not None):
            out = train_model(x)
            if teacher is not None:
                with torch.no_grad():
                    t_out = teacher(x)
                loss = distillation_loss(out.float(), t_out.float(), target, args.temperature, args.hard_weight,
                                         args.label_smoothing)
            else:
                loss = soft_cross_entropy(out.float(), target, args.label_smoothing)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch}, step {i}: lower --lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        global_step += 1
        metric.update(out.float(), y)
        loss_sum += float(loss.detach()) * len(y)
        seen += len(y)
        if (i + 1) % args.log_interval == 0 or i + 1 == steps_per_epoch:
            elapsed = time.time() - tic
            rec = logger.log(kind="train", epoch=epoch, step=global_step, batch=i + 1, loss=loss_sum / seen,
                             lr=optimizer.param_groups[0]["lr"], train_acc=metric.get()["top1"],
                             throughput=seen * dist_info.world_size / max(elapsed, 1e-9))
            bar.set_postfix(loss=f"{rec['loss']:.4f}", acc=f"{rec['train_acc']:.2f}")
    epoch_time = time.time() - tic
    metric.all_reduce()
    return EpochResult(loss=loss_sum / max(seen, 1), train_acc=metric.get()["top1"], seen=seen, time_s=epoch_time,
                       global_step=global_step)


def _resume(args, model, optimizer, scheduler, make_schedule, dist_info, logger) -> tuple[int, int, list, float]:
    """Restore a ``--resume-from`` checkpoint; returns (start epoch, global step, history, wall time so far)."""
    from scripts.common import CheckpointError, restore_rng_state

    try:
        ckpt = load_checkpoint(args.resume_from, model, optimizer, scheduler, restore_rng=False)
    except CheckpointError as err:
        raise SystemExit(f"--resume-from: {err}") from None
    try:
        start_epoch, global_step = int(ckpt["epoch"]), int(ckpt["step"])
        history = json.loads(ckpt.get("history", "[]"))
    except (KeyError, TypeError, ValueError) as err:
        raise SystemExit(f"--resume-from: {args.resume_from} is not a checkpoint of this script ({err!r})") from None
    # LambdaLR.load_state_dict overwrote the schedule object's attributes with the saved run's;
    # the schedule is a function of this run's flags (--num-epochs may extend or shorten a run),
    # so a fresh one replaces it.
    schedule = make_schedule()
    scheduler.lr_lambdas = [schedule] * len(optimizer.param_groups)
    for group, base_lr in zip(optimizer.param_groups, scheduler.base_lrs):
        group["lr"] = base_lr * schedule(scheduler.last_epoch)
    # Each rank restores its own RNG stream (augmentation differs per rank).
    rng = ckpt.get("rng_per_rank", {}).get(str(dist_info.rank)) if "rng_per_rank" in ckpt else ckpt["rng"]
    restore_rng_state(rng if rng is not None else ckpt["rng"])
    logger.info(f"resumed from {args.resume_from} at epoch {start_epoch} (step {global_step})")
    return start_epoch, global_step, history, float(ckpt.get("wall_time_s", 0.0))


def _save_epoch_checkpoint(args, epoch: int, global_step: int, history: list, start_wall: float, model, optimizer,
                           scheduler, save_dir: Path, dist_info) -> None:
    """Checkpoint after the epoch, RNG states included: the next epoch starts from exactly here."""
    from scripts.common import capture_rng_state, gather_rng_states

    rng_all = gather_rng_states(capture_rng_state(), dist_info)
    if dist_info.is_main:
        state = dict(epoch=epoch + 1, step=global_step, history=json.dumps(history),
                     wall_time_s=time.time() - start_wall, rng_per_rank=rng_all, args=json.dumps(vars(args)))
        save_checkpoint(save_dir / "checkpoint-last.pt", model, optimizer, scheduler, **state)
        if args.save_frequency and (epoch + 1) % args.save_frequency == 0:
            save_checkpoint(save_dir / f"checkpoint-epoch{epoch + 1}.pt", model, optimizer, scheduler, **state)


def finish_classification_run(args, model, val: dict[str, float], num_params: int, start_wall: float, save_dir: Path,
                              dist_info) -> dict[str, Any]:
    """Write the weights (header: model, dataset, metadata), ``weights.sha256`` and ``metrics.json``."""
    model = model.to(memory_format=torch.contiguous_format)
    weights = f"{args.model.lower()}.safetensors"
    # One key only: safetensors writes metadata keys in hash order, so several keys would make
    # the file's sha256 differ between identical runs.
    header = {"toolkit": json.dumps({"model": args.model.lower(), "dataset": args.dataset,
                                     "metadata": getattr(model, "metadata", {})}, sort_keys=True, default=str)}
    metrics = {
        "model": args.model.lower(), "dataset": args.dataset, "top1": round(val["top1"], 2),
        "top5": round(val["top5"], 2), "num_params": num_params, "epochs": args.num_epochs,
        "wall_time_s": round(time.time() - start_wall, 1),
        "hardware": hardware_info(world_size=dist_info.world_size), "sha256": None,
        "weights": weights, "kwargs": {k: v for k, v in json.loads(args.model_kwargs).items()},
    }
    return finish_run(save_dir, model, weights, metrics, header=header)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(build_parser(), argv, task="classification")
    # Same seed on every rank for the model initialisation (DDP also broadcasts rank 0's).
    run = start_run(args)
    dist_info, save_dir, logger, start_wall = run.dist, run.save_dir, run.logger, run.start_time

    train_set, val_set, classes, num_classes, in_channels = load_datasets(args)
    model = build_model(args, num_classes, in_channels, classes)
    num_params = sum(p.numel() for p in model.parameters())
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    teacher = None
    if args.teacher:
        from toolkit.zoo import get_model

        teacher = get_model(args.teacher, pretrained=args.teacher_weights or True, classes=num_classes,
                            in_channels=in_channels).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)

    optimizer = build_optimizer(args, model)
    train_loader, val_loader, sampler = build_loaders(args, train_set, val_set, dist_info)
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise SystemExit(f"no full batch of {args.batch_size} in {len(train_set)} training samples per process")
    try:
        decay_epochs = [int(e) for e in args.lr_decay_epoch.split(",") if e.strip()]
    except ValueError:
        raise SystemExit(f"--lr-decay-epoch must be comma-separated epochs, got {args.lr_decay_epoch!r}") from None

    def make_schedule() -> LRSchedule:
        return LRSchedule(args.lr_mode, args.num_epochs * steps_per_epoch, int(args.warmup_epochs * steps_per_epoch),
                          decay=args.lr_decay, step_iters=[e * steps_per_epoch for e in decay_epochs])

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, make_schedule())

    start_epoch, global_step, history = 0, 0, []
    if args.resume_from:
        start_epoch, global_step, history, done_s = _resume(args, model, optimizer, scheduler, make_schedule,
                                                            dist_info, logger)
        start_wall -= done_s
    else:
        # Augmentation streams differ per rank.
        torch.manual_seed(args.seed + 1000 * dist_info.rank)
        random.seed(args.seed + 1000 * dist_info.rank)
        np.random.seed(args.seed + 1000 * dist_info.rank)

    autocast_dtype = torch.bfloat16 if args.dtype == "bfloat16" else None
    train_model: torch.nn.Module = model
    if dist_info.distributed:
        train_model = torch.nn.parallel.DistributedDataParallel(model)
    if args.hybridize or args.compile:
        if not hasattr(model, "hybridize"):
            raise SystemExit(f"model {args.model!r} is not a HybridBlock: --hybridize is not available")
        # Parameters stay shared with the captured graph, so optimizer, DDP and checkpoints are unchanged.
        model.hybridize(compile=args.compile, autotune=not args.no_autotune)

    mixup = None
    if args.mixup:
        from torchvision.transforms import v2

        mixup = v2.MixUp(alpha=args.mixup_alpha, num_classes=num_classes)

    if dist_info.is_main:
        if start_epoch > 0 and (save_dir / "config.json").is_file():
            # Keep the configuration of the run that wrote the checkpoint next to this one's.
            (save_dir / "config.json").replace(save_dir / f"config-before-resume-epoch{start_epoch}.json")
        dump_config(args, save_dir / "config.json", {
            "resumed_from": args.resume_from, "start_epoch": start_epoch,
            "num_params": num_params, "num_classes": num_classes, "classes": classes,
            "train_samples": len(train_set), "val_samples": len(val_set), "steps_per_epoch": steps_per_epoch,
            "world_size": dist_info.world_size, "global_batch_size": args.batch_size * dist_info.world_size,
            "metadata": getattr(model, "metadata", {}),
        })
    logger.info(f"model {args.model}: {num_params:,} parameters; {len(train_set)} training / {len(val_set)} "
                f"validation samples; {steps_per_epoch} steps per epoch; {dist_info.world_size} process(es)")

    last_epoch = args.num_epochs if args.stop_after_epoch is None else min(args.num_epochs, args.stop_after_epoch)
    val = {"top1": float("nan"), "top5": float("nan")}
    for epoch in range(start_epoch, last_epoch):
        sampler.set_epoch(epoch)
        ep = train_one_epoch(args, epoch, train_model, train_loader, steps_per_epoch, optimizer, scheduler, logger,
                             dist_info, global_step, mixup=mixup, teacher=teacher, autocast_dtype=autocast_dtype)
        global_step = ep.global_step
        if (epoch + 1) % max(1, args.val_interval) == 0 or epoch + 1 == args.num_epochs:
            val = evaluate(model, val_loader, args.channels_last, autocast_dtype, dist_info)
        else:
            val = {"top1": float("nan"), "top5": float("nan")}
        rec = logger.log(kind="epoch", epoch=epoch, step=global_step, loss=ep.loss,
                         lr=optimizer.param_groups[0]["lr"], train_acc=ep.train_acc, val_top1=val["top1"],
                         val_top5=val["top5"], epoch_time_s=ep.time_s,
                         throughput=ep.seen * dist_info.world_size / max(ep.time_s, 1e-9))
        history.append({k: rec[k] for k in ("epoch", "loss", "train_acc", "val_top1", "val_top5")})
        logger.info(f"[epoch {epoch + 1}/{args.num_epochs}] loss {rec['loss']:.4f} train-acc {ep.train_acc:.2f} "
                    f"val top1 {val['top1']:.2f} top5 {val['top5']:.2f} ({ep.time_s:.1f}s, "
                    f"{rec['throughput']:.1f} img/s)")
        _save_epoch_checkpoint(args, epoch, global_step, history, start_wall, model, optimizer, scheduler, save_dir,
                               dist_info)

    result: dict[str, Any] = {}
    if last_epoch == args.num_epochs and dist_info.is_main:
        if start_epoch >= last_epoch:  # resumed from a finished run: evaluate once
            val = evaluate(model, val_loader, args.channels_last, autocast_dtype, dist_info)
        result = finish_classification_run(args, model, val, num_params, start_wall, save_dir, dist_info)
        logger.info(f"final: top1 {result['top1']:.2f} top5 {result['top5']:.2f}; weights "
                    f"{save_dir / result['weights']} (sha256 {result['sha256'][:12]}...), {result['wall_time_s']:.0f}s")
    logger.close()
    cleanup_distributed()
    return result


if __name__ == "__main__":
    main()
