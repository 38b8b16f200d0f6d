"""Process-group setup for ``torchrun`` (gloo on CPU, nccl on GPU)."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "init_distributed", "cleanup_distributed", "barrier"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(backend: str | None = None) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment.

    Without ``torchrun`` (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``) nothing is
    initialised and a single-process :class:`DistInfo` is returned.

    Parameters
    ----------
    backend : str, optional
        Default: ``nccl`` when CUDA is available, else ``gloo``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank, world, local)


def barrier() -> None:
    """Wait for every process (no-op without a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def gather_rng_states(state: dict, dist_info: DistInfo) -> dict[str, dict]:
    """Every rank's RNG state (from ``capture_rng_state``) keyed by rank, so rank 0 can write
    them all into the checkpoint and each rank resumes its own stream exactly."""
    if not dist_info.distributed:
        return {"0": state}
    out: list = [None] * dist_info.world_size
    dist.all_gather_object(out, state)
    return {str(r): s for r, s in enumerate(out)}


def cleanup_distributed() -> None:
    """Leave the process group, if any."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
