"""The epoch/step loop shared by the text classification and BERT fine-tuning scripts.

It adds to ``scripts.common`` what these scripts share: step logging, a
checkpoint after every epoch and at ``--stop-after-steps`` (mid-epoch, with
the batch position, so ``--resume-from`` continues exactly), evaluation on the
dev split after every epoch, and data-parallel wrapping under ``torchrun``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from scripts.common import resume_checkpoint, save_checkpoint

__all__ = ["train_loop"]


def train_loop(
    args,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    batches_for_epoch: Callable[[int], Sequence[Any]],
    step_loss: Callable[[torch.nn.Module, Any], torch.Tensor],
    evaluate: Callable[[], dict[str, float]],
    save_dir: Path,
    logger,
    dist,
) -> dict[str, Any]:
    """Train for ``args.num_epochs``; returns ``{"steps", "stopped", "dev": last dev metrics}``.

    ``batches_for_epoch(epoch)`` must give the same batches for the same epoch
    (seeded shuffling), so that a resumed run skips exactly the batches done.
    Uses ``args.num_epochs``, ``args.stop_after_steps``, ``args.log_interval``,
    ``args.clip``, ``args.resume_from``.
    """
    train_model = torch.nn.parallel.DistributedDataParallel(model) if dist.distributed else model
    start_epoch, skip, step = 0, 0, 0
    if args.resume_from:
        ckpt = resume_checkpoint(args.resume_from, model, optimizer, scheduler)
        start_epoch, skip, step = int(ckpt["epoch"]), int(ckpt["batch_in_epoch"]), int(ckpt["step"])
        logger.info(f"resumed from {args.resume_from} at epoch {start_epoch}, batch {skip} (step {step})")

    def checkpoint(epoch: int, batch: int) -> None:
        if dist.is_main:
            save_checkpoint(save_dir / "checkpoint-last.pt", model, optimizer, scheduler,
                            epoch=epoch, batch_in_epoch=batch, step=step)

    dev: dict[str, float] = {}
    for epoch in range(start_epoch, args.num_epochs):
        model.train()
        batches = batches_for_epoch(epoch)
        window, count, t0 = 0.0, 0, time.time()
        for b, batch in enumerate(batches):
            if epoch == start_epoch and b < skip:
                continue
            loss = step_loss(train_model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if args.clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            step += 1
            window += float(loss.detach())
            count += 1
            if step % args.log_interval == 0:
                rec = logger.log(kind="train", epoch=epoch, step=step, batch=b + 1, num_batches=len(batches),
                                 loss=window / count, lr=optimizer.param_groups[0]["lr"],
                                 batches_per_s=count / max(time.time() - t0, 1e-9))
                logger.info(f"[epoch {epoch} batch {b + 1}/{len(batches)} step {step}] loss {rec['loss']:.4f}")
                window, count, t0 = 0.0, 0, time.time()
            if args.stop_after_steps and step >= args.stop_after_steps:
                checkpoint(epoch, b + 1)
                logger.info(f"stopped after step {step}; resume with --resume-from {save_dir / 'checkpoint-last.pt'}")
                return {"steps": step, "stopped": True, "dev": dev}
        dev = evaluate()
        logger.log(kind="eval", epoch=epoch, step=step, **{f"dev_{k}": v for k, v in dev.items()})
        logger.info(f"[epoch {epoch}] dev " + " ".join(f"{k} {v:.4f}" for k, v in dev.items()))
        checkpoint(epoch + 1, 0)
    if not dev:  # resumed from a finished run
        dev = evaluate()
    return {"steps": step, "stopped": False, "dev": dev}
