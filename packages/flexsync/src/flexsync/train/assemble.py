"""Assemble a run from its configuration: data, model, optimizer, strategy, network conditions,
clock, samplers; then run it on this rank and write the run directory.

:func:`build_run` is the only place that turns a :class:`~flexsync.config.Config` into live
objects; :mod:`flexsync.train.loop` only steps them. Every stateful part has
``state_dict``/``load_state_dict``, so a checkpoint is ``{name: part.state_dict()}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import yaml

from flexsync.comm import Communicator
from flexsync.config import Config, dump_config
from flexsync.data import Dataset, load_dataset
from flexsync.data.partition import (
    SelDPSampler,
    ShardSampler,
    label_shards,
    make_sampler,
    random_equal_split,
)
from flexsync.data.streams import CyclicSource, StreamBuffer, StreamSampler, clamp_batch, draw_rates
from flexsync.models import build_model
from flexsync.net.clock import VirtualClock
from flexsync.net.conditions import (
    ConditionsSource,
    FixedConditions,
    NetworkConditions,
    Phase,
    ScheduleConditions,
    preset,
)
from flexsync.net.estimate import AlphaBetaEstimator, MeasuredConditions
from flexsync.report.plots import plot_run
from flexsync.report.tensorboard import Tee, TensorBoardWriter
from flexsync.strategies import ContextBuilder, build_strategy
from flexsync.train import checkpoint
from flexsync.train.injection import DataInjector, own_batch_size, share_size
from flexsync.train.loop import Run, RunState, train_loop
from flexsync.train.metrics import MetricsWriter, write_json


@dataclass
class UserParts:
    """A user's own dataset and/or model factory, replacing the configured built-ins."""

    dataset: Dataset | None = None
    model_fn: Any = None     # callable(Dataset) -> nn.Module


class TorchRNG:
    """The process's global torch RNG as a checkpointable part."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"cpu": torch.get_rng_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        torch.set_rng_state(state["cpu"])


def conditions_from(cfg: Config) -> ConditionsSource | None:
    """The network every strategy and the clock see (None on loopback: nothing modeled)."""
    net = cfg.network
    if net.kind == "loopback":
        return None
    if net.kind == "emulated":
        start = NetworkConditions(net.delay or 1e-4, net.bandwidth)
        return MeasuredConditions(start) if net.estimate else FixedConditions(start)
    if net.kind == "modeled":
        return FixedConditions(NetworkConditions(net.alpha, net.bandwidth))
    if net.preset is not None:
        return preset(net.preset, net.stretch)
    return ScheduleConditions([Phase(p.start, NetworkConditions(p.alpha, p.bandwidth))
                               for p in net.phases], net.unit)


def build_optimizer(cfg: Config, params) -> torch.optim.Optimizer:
    o = cfg.optimizer
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    if o.name == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
    return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)


def lr_factor(step: int, total: int, schedule: str, warmup: int) -> float:
    """The learning-rate multiplier at ``step`` (0-based) of ``total``: a linear warm-up over
    ``warmup`` steps, then constant or cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def build_scheduler(cfg: Config, optimizer: torch.optim.Optimizer, total_steps: int
                    ) -> torch.optim.lr_scheduler.LambdaLR | None:
    """The run's learning-rate schedule (None for a constant rate without warm-up)."""
    o = cfg.optimizer
    if o.schedule == "constant" and o.warmup_steps == 0:
        return None
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total_steps, o.schedule, o.warmup_steps))


def prepare_dataset(cfg: Config, user: UserParts | None = None) -> Dataset:
    if user is not None and user.dataset is not None:
        return user.dataset
    return load_dataset(cfg.dataset, cfg.seed, **cfg.data.options_for(cfg.dataset))


def own_batch(cfg: Config, world: int) -> int:
    """This rank's batch: ``batch_size``, shrunk to b′ with data injection (§ SelSync)."""
    inj = cfg.data.injection
    if inj is not None and inj.shrink_batch:
        return own_batch_size(cfg.batch_size, inj.alpha, inj.beta, world)
    return cfg.batch_size


def build_sampler(cfg: Config, data: Dataset, world: int, rank: int
                  ) -> ShardSampler | SelDPSampler | StreamSampler:
    """Rank ``rank``'s batch sampler: ``data.partition``, or a stream over this rank's
    partition when ``stream`` is configured. Pure (no communication), so the preflight check
    builds exactly what a worker will."""
    d = cfg.data
    if d.partition == "noniid" and data.task != "classification":
        raise ValueError("data.partition 'noniid' needs a classification dataset")
    if cfg.stream is None:
        return make_sampler(d.partition, data.train_y, world, rank, own_batch(cfg, world),
                            cfg.seed, d.seldp_mode, d.labels_per_worker)
    sc = cfg.stream
    if d.partition == "noniid":
        shard = label_shards(data.train_y, world, cfg.seed, d.labels_per_worker)[rank]
    else:
        shard = random_equal_split(len(data.train_x), world, cfg.seed)[rank]
    rates = draw_rates(sc.rates, world, cfg.seed if sc.seed is None else sc.seed)
    by_rate = sc.batch == "rate" or (sc.batch == "auto"
                                     and cfg.strategy.name in ("scadles", "auto"))
    batches = ([clamp_batch(r, sc.tau, sc.b_min, sc.b_max) for r in rates] if by_rate
               else [cfg.batch_size] * world)
    buffer = StreamBuffer(rates[rank], CyclicSource(shard, cfg.seed * 31 + rank), sc.policy,
                          sc.sleep)
    return StreamSampler(buffer, batches[rank], len(data.train_x), rates, batches,
                         sc.drift, sc.drift_every, cfg.seed, rank)


def build_injector(cfg: Config, sampler: Any, comm: Communicator) -> DataInjector | None:
    inj = cfg.data.injection
    if inj is None:
        return None
    share_of = min(sampler.batches) if isinstance(sampler, StreamSampler) \
        else own_batch(cfg, comm.world_size)
    return DataInjector(comm, inj.alpha, inj.beta, share_size(share_of, inj.beta), inj.mode,
                        cfg.seed)


def _build_model(cfg: Config, data: Dataset, user: UserParts | None) -> nn.Module:
    with torch.random.fork_rng(devices=[]):     # same init on every rank, global RNG untouched
        torch.manual_seed(cfg.seed)
        if user is not None and user.model_fn is not None:
            return user.model_fn(data)
        return build_model(cfg.model, data.input_shape, data.num_classes, data.task,
                           **cfg.model_options())


def build_run(cfg: Config, comm: Communicator, user: UserParts | None = None) -> Run:
    """Every live part of the run on this rank, from ``cfg``."""
    if cfg.network.kind == "emulated":
        comm.added_latency = cfg.network.delay
    data = prepare_dataset(cfg, user)
    model = _build_model(cfg, data, user).to(comm.device)
    for t in list(model.parameters()) + list(model.buffers()):
        comm.broadcast(t.data, 0, accounted=False)      # guard against user-side divergence
    optimizer = build_optimizer(cfg, model.parameters())
    strategy = build_strategy(cfg.strategy.name, model.parameters(), optimizer, comm,
                              buffers=[b for b in model.buffers() if b.is_floating_point()],
                              **cfg.strategy.model_dump(exclude={"name"}))
    priced = cfg.network.model_params
    source = conditions_from(cfg)
    sampler = build_sampler(cfg, data, comm.world_size, comm.rank)
    spe = sampler.steps_per_epoch
    total = cfg.steps if cfg.steps is not None else max(1, math.ceil(cfg.epochs * spe))
    return Run(
        cfg=cfg, comm=comm, data=data, model=model, net=strategy.wrap_model(model),
        optimizer=optimizer, strategy=strategy, sampler=sampler,
        injector=build_injector(cfg, sampler, comm), source=source,
        clock=VirtualClock(comm.world_size, source,
                           priced / strategy.num_params if priced else 1.0),
        estimator=(AlphaBetaEstimator(comm.world_size)
                   if isinstance(source, MeasuredConditions) else None),
        contexts=ContextBuilder(source, spe, int(priced) if priced else None, total,
                                streaming=cfg.stream is not None),
        total_steps=total, scheduler=build_scheduler(cfg, optimizer, total),
    )


def checkpoint_parts(run: Run, st: RunState) -> dict[str, Any]:
    """Every part whose state a resumed run needs, by name."""
    parts: dict[str, Any] = {"model": run.model, "optimizer": run.optimizer,
                             "strategy": run.strategy, "sampler": run.sampler,
                             "clock": run.clock, "loop": st, "comm": run.comm, "rng": TorchRNG()}
    if run.source is not None:
        parts["conditions"] = run.source
    if run.scheduler is not None:
        parts["scheduler"] = run.scheduler
    return parts


def agree_text(comm: Communicator, text: str, width: int = 64) -> list[str]:
    """Every rank's short ASCII ``text`` (at most ``width`` bytes), in rank order, through one
    unaccounted allgather (bookkeeping: checksums, the run id)."""
    raw = text.encode()[:width].ljust(width, b"\0")
    mine = torch.tensor(list(raw), dtype=torch.uint8, device=comm.device)
    rows = comm.allgather(mine, accounted=False, scalable=False, tag="bookkeeping").cpu()
    return [bytes(r.tolist()).rstrip(b"\0").decode() for r in rows]


class Checkpointer:
    """Saves every part of the run each ``checkpoint.every`` steps (all ranks, then rank 0
    marks the checkpoint complete, listing every rank's file and checksum)."""

    def __init__(self, run: Run, st: RunState, out_dir: Path, run_id: str) -> None:
        self.run, self.st, self.out_dir, self.run_id = run, st, out_dir, run_id
        self.meta = {"strategy": run.cfg.strategy.name, "run_id": run_id,
                     "fingerprint": checkpoint.fingerprint(run.cfg.to_dict())}

    def restore(self, path: Path) -> None:
        comm = self.run.comm
        saved = checkpoint.load(path, comm.rank, comm.world_size, self.meta)
        for name, part in checkpoint_parts(self.run, self.st).items():
            part.load_state_dict(saved[name])

    def __call__(self) -> None:
        every, step = self.run.cfg.checkpoint.every, self.st.step
        if not every or (step % every and step != self.run.total_steps):
            return
        comm = self.run.comm
        state = {name: part.state_dict()
                 for name, part in checkpoint_parts(self.run, self.st).items()}
        sha = checkpoint.save(self.out_dir, step, comm.rank, comm.world_size, state,
                              self.run_id)
        sums = agree_text(comm, sha)   # every rank's file is written ...
        if comm.rank == 0:             # ... before the checkpoint is marked complete
            checkpoint.commit(self.out_dir, step, comm.world_size, self.meta,
                              {f"rank{r}.pt": h for r, h in enumerate(sums)},
                              self.run.cfg.checkpoint.keep)
        comm.barrier()


def run_worker(cfg: Config, out_dir: str | Path, user: UserParts | None = None,
               resume: str | Path | None = None, device: torch.device | None = None,
               run_id: str | None = None) -> dict[str, Any] | None:
    """Train on this rank (the process group must be initialised). Rank 0 writes the run
    directory and returns the summary; other ranks return None. ``resume`` is a checkpoint
    directory to continue from (see :mod:`flexsync.train.checkpoint`); ``run_id`` names the
    run in every file it writes (None: rank 0's fresh id, or the resumed checkpoint's)."""
    out_dir = Path(out_dir)
    run = build_run(cfg, Communicator(device=device), user)
    if run_id is None:
        run_id = (checkpoint.read_meta(Path(resume))["run_id"] if resume is not None
                  else agree_text(run.comm, new_run_id())[0])
    st = RunState()
    saver = Checkpointer(run, st, out_dir, run_id)
    if resume is not None:
        saver.restore(Path(resume))
    writer = None
    if run.comm.rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(f"# flexsync run {run_id}\n"
                                             + config_text(cfg, run, user))
        writer = MetricsWriter(out_dir / "metrics.jsonl", run_id,
                               resume_after=st.step if resume is not None else None)
        if cfg.logging.tensorboard:
            writer = Tee(writer, TensorBoardWriter(
                cfg.logging.tensorboard, purge_step=st.step if resume is not None else None))
    try:
        train_loop(run, st, writer, saver)
    finally:
        if writer is not None:
            writer.close()
    if run.comm.rank != 0:
        return None
    summary = {"run_id": run_id, **summarize(run, st, user)}
    write_json(out_dir / "summary.json", summary)
    plot_run(out_dir)
    return summary


def new_run_id() -> str:
    """A fresh run id: UTC time and 6 random hex digits, e.g. ``20261203T142501-3fa9c2``."""
    import datetime
    import secrets

    now = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{now}-{secrets.token_hex(3)}"


def config_text(cfg: Config, run: Run, user: UserParts | None) -> str:
    """The run's ``config.yaml``. A dataset or model passed to :func:`flexsync.train` is
    recorded as ``user:<Dataset.name>`` / ``user:<model class>`` in place of the built-in
    names the config still holds (their options are dropped): what the run trained on, not
    defaults it never used. Such a file does not load back without those parts."""
    if user is None:
        return dump_config(cfg)
    tree = cfg.to_dict()
    if user.dataset is not None:
        tree["dataset"] = f"user:{user.dataset.name}"
        tree.pop("data", None)
    if user.model_fn is not None:
        tree["model"] = f"user:{type(run.model).__name__}"
        tree.pop("model_size", None)
    return yaml.safe_dump(tree, sort_keys=False)


def summarize(run: Run, st: RunState, user: UserParts | None) -> dict[str, Any]:
    """The run's summary.json (rank 0, after the last step)."""
    cfg, data, ev = run.cfg, run.data, st.last_eval
    tail = st.history[-10:]
    summary = {
        "strategy": cfg.strategy.name,
        "dataset": data.name,
        "model": cfg.model if user is None or user.model_fn is None else "user",
        "world_size": run.comm.world_size,
        "steps": st.step,
        "epochs": st.step / run.sampler.steps_per_epoch,
        "params": run.strategy.num_params,
        "final_loss": sum(tail) / len(tail) if tail else None,
        "final_test_loss": ev.loss,
        "final_accuracy": ev.accuracy,
        "wall_time_s": st.wall,
        "modeled_time_s": run.clock.now,
        "bytes_sent": run.comm.total_bytes,
        "collectives": run.comm.total_collectives,
        "target": {k: v for k, v in cfg.target.model_dump().items() if v is not None},
        "time_to_target_modeled_s": st.ttt_modeled,
        "time_to_target_wall_s": st.ttt_wall,
        "network": cfg.network.kind,
        "skipped_steps": st.skipped,
    }
    if not (math.isfinite(ev.loss) and math.isfinite(ev.accuracy)):
        summary["nonfinite_eval"] = True     # the final test loss is NaN/inf: not a result
    summary.update(run.strategy.summary())
    if run.injector is not None:
        summary["injected_bytes"] = run.injector.total_bytes
    if ev.perplexity is not None:
        summary["final_perplexity"] = ev.perplexity
        if "optimal_perplexity" in data.info:
            summary["optimal_perplexity"] = data.info["optimal_perplexity"]
    return summary
