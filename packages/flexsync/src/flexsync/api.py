"""The Python entry point: train a configuration, locally or under torchrun."""

from __future__ import annotations

import functools
import gc
import os
import sys
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from flexsync.config import Config, ConfigError, build_config
from flexsync.launch import WorkerFailed, init_from_env, run_local, under_torchrun
from flexsync.preflight import check_fits
from flexsync.train import checkpoint, liveness, rundir
from flexsync.train.assemble import UserParts, new_run_id, prepare_dataset, run_worker


def train(config: Config | dict[str, Any] | None = None, *, dataset=None, model_fn=None,
          out: str | Path | None = None, resume: str | Path | None = None,
          overwrite: bool = False) -> dict[str, Any] | None:
    """Train ``config`` and return rank 0's summary (None on other torchrun ranks).

    Locally this forks ``config.workers`` processes; under torchrun it runs this process's
    rank. ``dataset`` (a :class:`flexsync.data.Dataset`) and ``model_fn`` (Dataset → Module)
    replace the built-ins. ``resume`` is a checkpoint directory (or a run directory: its
    latest checkpoint) to continue from; under ``torchrun --max-restarts`` a restarted job
    resumes from the run's latest checkpoint by itself when ``checkpoint.every`` is set.
    A new run into a directory that holds files is refused unless ``overwrite``, which moves
    the old one aside (:mod:`flexsync.train.rundir`).
    """
    cfg = config if isinstance(config, Config) else build_config(config or {})
    out_dir = Path(out or cfg.out)
    user = UserParts(dataset, model_fn) if (dataset is not None or model_fn is not None) else None
    restarted = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0
    if resume is None and restarted and cfg.checkpoint.every:
        resume = checkpoint.latest(out_dir)
    elif resume is not None and not (Path(resume) / "meta.json").is_file():
        resume = _latest_complete(Path(resume))
    refusal = getattr(cfg.strategy, "resume_refusal", lambda: None)()
    if resume is not None and refusal:
        raise checkpoint.CheckpointError(refusal)
    if cfg.backend == "nccl" and not torch.cuda.is_available():
        raise ConfigError("backend: 'nccl' needs a CUDA device and none is visible; use "
                          "'gloo' (or 'auto') on CPU")
    rundir.prepare(out_dir, resume=resume is not None or restarted, overwrite=overwrite)
    # built here once (cached): data-dependent checks before any worker; forked workers share it
    check_fits(cfg, prepare_dataset(cfg, user))
    if under_torchrun():
        return _torchrun_rank(cfg, out_dir, user, resume)
    run_id = new_run_id()
    if resume is not None:     # every rank file checked before any worker starts
        fits = {"strategy": cfg.strategy.name,
                "fingerprint": checkpoint.fingerprint(cfg.to_dict())}
        run_id = checkpoint.verify(Path(resume), cfg.workers, fits)["run_id"]
    opts = {"timeout_s": cfg.timeout_s, "log_dir": rundir.log_dir(out_dir),
            "stall_s": cfg.stall_timeout_s, "log_header": f"flexsync run {run_id}, "}
    worker = functools.partial(run_worker, run_id=run_id)
    worker_args = (cfg, out_dir, user, resume)
    if cfg.network.kind == "emulated":
        from flexsync.net.emulate import EmulatedNetwork

        with EmulatedNetwork(cfg.workers, cfg.network.bandwidth) as net:
            return run_local(worker, cfg.workers, worker_args, backend="gloo",
                             emulation=net, **opts)[0]
    return run_local(worker, cfg.workers, worker_args, backend=cfg.backend, **opts)[0]


def _latest_complete(run: Path) -> Path:
    found = checkpoint.latest(run)
    if found is None:
        pending = checkpoint.incomplete(run)
        why = (f" ({pending[-1]} has no meta.json: it was interrupted or damaged)"
               if pending else "")
        raise checkpoint.CheckpointError(f"no complete checkpoint under {run}{why}")
    for d in checkpoint.incomplete(run):
        print(f"flexsync: passing over the incomplete checkpoint {d} (no meta.json); "
              f"resuming from {found.name}", file=sys.stderr)
    return found


def _torchrun_rank(cfg: Config, out_dir: Path, user: UserParts | None,
                   resume: Path | None) -> dict[str, Any] | None:
    if cfg.network.kind == "emulated":
        raise ConfigError("network kind 'emulated' works with the local launcher only; under "
                          "torchrun the links are whatever connects your machines")
    device = init_from_env(cfg.backend, cfg.timeout_s)
    try:
        if cfg.stall_timeout_s:
            _watch_peers(cfg.stall_timeout_s)
        try:
            summary = run_worker(cfg, out_dir, user, device=device, resume=resume)
        except (ConfigError, checkpoint.CheckpointError):
            raise
        except Exception as e:   # the traceback to this rank's log, one line to the user
            raise _logged_failure(e, out_dir) from None
        # objects still referring to the process group (a DDP wrapper in a reference
        # cycle) must go before it is destroyed: one alive at interpreter exit can abort
        # the process ("terminate called without an active exception")
        gc.collect()
        dist.barrier()     # leave together: a rank tearing down early can abort its peers
        return summary
    finally:
        dist.destroy_process_group()


def _logged_failure(e: Exception, out_dir: Path) -> WorkerFailed:
    """Under torchrun: write ``e``'s traceback to ``<out>/logs/rank<r>.log`` and return the
    one-line :class:`WorkerFailed` that names the rank, the error and the log."""
    import traceback

    rank = dist.get_rank()
    log = rundir.log_dir(out_dir) / f"rank{rank}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        f.write(f"[rank {rank}] " + "".join(traceback.format_exception(e)))
    why = f"{type(e).__name__}: {e}".strip().split("\n", 1)[0][:300]
    return WorkerFailed(rank, 1, f" ({why})", str(log))


#: Exit code of a torchrun rank that found a peer stalled or wedged (as the CLI's).
EXIT_STALLED = 3


def _watch_peers(bound: float) -> None:
    """Beat into the job's store and watch every rank's beat (:mod:`flexsync.train.liveness`);
    a stalled or wedged rank ends this process with one line and :data:`EXIT_STALLED`."""
    from torch.distributed.distributed_c10d import _get_default_store

    rank, world = dist.get_rank(), dist.get_world_size()

    def stop(culprit: int, what: str) -> None:
        sys.stderr.write(f"flexsync: worker rank {culprit} {what}; rank {rank} stops\n")
        sys.stderr.flush()
        os._exit(EXIT_STALLED)

    liveness.watch_in_thread(_get_default_store(), rank, world, bound, stop)
