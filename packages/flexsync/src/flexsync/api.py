"""The Python entry point: train a configuration, locally or under torchrun."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

import torch.distributed as dist

from flexsync.config import Config, build_config
from flexsync.launch import init_from_env, run_local, under_torchrun
from flexsync.preflight import check_fits
from flexsync.train import checkpoint
from flexsync.train.assemble import UserParts, prepare_dataset, run_worker


def train(config: Config | dict[str, Any] | None = None, *, dataset=None, model_fn=None,
          out: str | Path | None = None, resume: str | Path | None = None
          ) -> dict[str, Any] | None:
    """Train ``config`` and return rank 0's summary (None on other torchrun ranks).

    Locally this forks ``config.workers`` processes; under torchrun it runs this process's
    rank. ``dataset`` (a :class:`flexsync.data.Dataset`) and ``model_fn`` (Dataset → Module)
    replace the built-ins. ``resume`` is a checkpoint directory (or a run directory: its
    latest checkpoint) to continue from; under ``torchrun --max-restarts`` a restarted job
    resumes from the run's latest checkpoint by itself when ``checkpoint.every`` is set.
    """
    cfg = config if isinstance(config, Config) else build_config(config or {})
    out_dir = Path(out or cfg.out)
    user = UserParts(dataset, model_fn) if (dataset is not None or model_fn is not None) else None
    restarted = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0
    if resume is None and restarted and cfg.checkpoint.every:
        resume = checkpoint.latest(out_dir)
    elif resume is not None and not (Path(resume) / "meta.json").is_file():
        found = checkpoint.latest(Path(resume))
        if found is None:
            raise checkpoint.CheckpointError(f"no complete checkpoint under {resume}")
        resume = found
    # built here once (cached): data-dependent checks before any worker; forked workers share it
    check_fits(cfg, prepare_dataset(cfg, user))
    if under_torchrun():
        if cfg.network.kind == "emulated":
            raise ValueError("network kind 'emulated' works with the local launcher only; under "
                             "torchrun the links are whatever connects your machines")
        device = init_from_env(cfg.backend, cfg.timeout_s)
        try:
            summary = run_worker(cfg, out_dir, user, device=device, resume=resume)
            # objects still referring to the process group (a DDP wrapper in a reference
            # cycle) must go before it is destroyed: one alive at interpreter exit can abort
            # the process ("terminate called without an active exception")
            gc.collect()
            dist.barrier()     # leave together: a rank tearing down early can abort its peers
            return summary
        finally:
            dist.destroy_process_group()
    if cfg.network.kind == "emulated":
        from flexsync.net.emulate import EmulatedNetwork

        with EmulatedNetwork(cfg.workers, cfg.network.bandwidth) as net:
            return run_local(run_worker, cfg.workers, (cfg, out_dir, user, resume),
                             backend="gloo", timeout_s=cfg.timeout_s, emulation=net)[0]
    return run_local(run_worker, cfg.workers, (cfg, out_dir, user, resume),
                     backend=cfg.backend, timeout_s=cfg.timeout_s)[0]
