"""Utilities shared by the reference training scripts of every task.

* :mod:`.jsonlog` -- JSON-lines metric logs and a plain text log (rank 0 only);
* :mod:`.config` -- resolved-config dump (flags, environment, hardware, git commit);
* :mod:`.checkpoint` -- checkpoints with model, optimizer, scheduler, RNG and sampler
  state for exact resume, loadable with ``torch.load(weights_only=True)``;
* :mod:`.distributed` -- ``torchrun`` process-group setup (gloo on CPU, nccl on GPU);
* :mod:`.schedule` -- learning-rate schedules with warmup (cosine, step, poly, linear);
* :mod:`.run` -- ``start_run``: the common start of a script (process group, threads,
  seeds, output folder, logs); ``eval_generator`` for validation loaders;
* :mod:`.finish` -- ``finish_run``: the common end (weights, ``weights.sha256``, ``metrics.json``);
* :mod:`.validate` -- ``parse_args``: argparse plus up-front checks that name a bad flag.

Scripts live in ``scripts/<task>/`` and put the repository root on ``sys.path``
before ``import scripts.common``.
"""
from .checkpoint import (
    CheckpointError,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from .config import dump_config, environment_info, hardware_info
from .finish import finish_run
from .distributed import DistInfo, barrier, cleanup_distributed, gather_rng_states, init_distributed
from .jsonlog import JSONLinesLogger, read_jsonl
from .run import RunContext, eval_generator, fused_options, start_run
from .schedule import LRSchedule
from .validate import parse_args, resume_checkpoint, validate_args

__all__ = [
    "JSONLinesLogger", "read_jsonl", "dump_config", "environment_info", "hardware_info",
    "save_checkpoint", "load_checkpoint", "capture_rng_state", "restore_rng_state", "CheckpointError",
    "DistInfo", "init_distributed", "cleanup_distributed", "barrier", "gather_rng_states", "LRSchedule",
    "RunContext", "start_run", "eval_generator", "fused_options", "finish_run", "parse_args", "validate_args",
    "resume_checkpoint",
]
