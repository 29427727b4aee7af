"""The training loop every strategy runs in. One call per worker process.

Per step: forward/backward on this rank's batch, ``strategy.step`` (aggregation + optimizer),
then one small unaccounted allgather of (loss, compute time, communication wall time) so
every rank advances the same virtual clock and rank 0 can log the cluster's mean loss.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from flexsync.comm import Communicator
from flexsync.comm.consensus import agree_any, gather_scalars
from flexsync.config import Config, dump_config
from flexsync.data import Dataset, load_dataset
from flexsync.data.injection import DataInjector, own_batch_size, share_size
from flexsync.data.partition import (
    SelDPSampler,
    ShardSampler,
    label_shards,
    make_sampler,
    random_equal_split,
)
from flexsync.data.streams import (
    CyclicSource,
    StreamBuffer,
    StreamSampler,
    clamp_batch,
    draw_rates,
)
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
from flexsync.net.units import parse_bandwidth, parse_duration
from flexsync.strategies import StepContext, Strategy, build_strategy
from flexsync.train import checkpoint
from flexsync.train.metrics import MetricsWriter, write_json


@dataclass
class UserParts:
    """A user's own dataset and/or model factory, replacing the configured built-ins."""

    dataset: Dataset | None = None
    model_fn: Any = None     # callable(Dataset) -> nn.Module


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    perplexity: float | None = None


@dataclass
class RunState:
    """Everything the loop tracks across steps (also what a checkpoint must carry)."""

    step: int = 0
    wall: float = 0.0
    history: list[float] = field(default_factory=list)
    ttt_modeled: float | None = None
    ttt_wall: float | None = None
    last_eval: Evaluation | None = None
    prev_step_s: float | None = None      # the clock's last step (throughput-aware strategies)
    prev_wall_s: float | None = None
    skipped: int = 0                      # steps skipped for non-finite gradients

    def state_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k != "last_eval"}
        out["last_eval"] = None if self.last_eval is None else vars(self.last_eval)
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        ev = state.pop("last_eval")
        vars(self).update(state)
        self.history = list(self.history)
        self.last_eval = None if ev is None else Evaluation(**ev)


def conditions_from(cfg: Config) -> ConditionsSource | None:
    net = cfg.network
    if net.kind == "loopback":
        return None
    if net.kind == "emulated":
        start = NetworkConditions(parse_duration(net.delay) or 1e-4, parse_bandwidth(net.bandwidth))
        return MeasuredConditions(start) if net.estimate else FixedConditions(start)
    if net.kind == "modeled":
        return FixedConditions(
            NetworkConditions(parse_duration(net.alpha), parse_bandwidth(net.bandwidth))
        )
    if net.preset is not None:
        return preset(net.preset, net.stretch)
    phases = [Phase(p.start, NetworkConditions(parse_duration(p.alpha),
                                               parse_bandwidth(p.bandwidth)))
              for p in net.phases]
    return ScheduleConditions(phases, net.unit)


def build_optimizer(cfg: Config, params) -> torch.optim.Optimizer:
    o = cfg.optimizer
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)


def task_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy; for language models over every token of every window."""
    return F.cross_entropy(out.flatten(0, -2), y.flatten())


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, comm: Communicator, batch_size: int,
             device: torch.device) -> Evaluation:
    """Test loss and accuracy over the whole test set, sharded across ranks (each rank
    evaluates a contiguous slice with its own model); bookkeeping, so not accounted."""
    was_training = model.training
    model.eval()
    n = len(data.test_x)
    lo, hi = n * comm.rank // comm.world_size, n * (comm.rank + 1) // comm.world_size
    loss_sum = correct = count = 0.0
    for i in range(lo, hi, batch_size):
        x = data.test_x[i:min(i + batch_size, hi)].to(device)
        y = data.test_y[i:min(i + batch_size, hi)].to(device)
        out = model(x)
        loss_sum += F.cross_entropy(out.flatten(0, -2), y.flatten(), reduction="sum").item()
        correct += (out.argmax(-1) == y).sum().item()
        count += y.numel()
    model.train(was_training)
    tot = comm.allreduce(torch.tensor([loss_sum, correct, count], dtype=torch.float64,
                                      device=comm.device), accounted=False).tolist()
    loss = tot[0] / tot[2]
    ppl = math.exp(min(loss, 50.0)) if data.task == "language" else None
    return Evaluation(loss, tot[1] / tot[2], ppl)


def _reached(cfg: Config, ev: Evaluation) -> bool:
    t = cfg.target
    if t.accuracy is not None and ev.accuracy >= t.accuracy:
        return True
    return t.perplexity is not None and ev.perplexity is not None and ev.perplexity <= t.perplexity


def _compute_model(cfg: Config, batch: int) -> float:
    return parse_duration(cfg.clock.t0) + parse_duration(cfg.clock.t1) * batch


def prepare_dataset(cfg: Config, user: UserParts | None = None) -> Dataset:
    if user is not None and user.dataset is not None:
        return user.dataset
    return load_dataset(cfg.dataset, cfg.seed, **cfg.data.options_for(cfg.dataset))


def run_worker(cfg: Config, out_dir: str | Path, user: UserParts | None = None,
               resume: str | Path | None = None, device: torch.device | None = None
               ) -> dict[str, Any] | None:
    """Train on this rank (the process group must be initialised). Rank 0 writes the run
    directory and returns the summary; other ranks return None. ``resume`` is a checkpoint
    directory to continue from (see :mod:`flexsync.train.checkpoint`)."""
    out_dir = Path(out_dir)
    comm = Communicator(device=device)
    device = comm.device
    if cfg.network.kind == "emulated":
        comm.added_latency = parse_duration(cfg.network.delay)
    rank, world = comm.rank, comm.world_size
    data = prepare_dataset(cfg, user)

    with torch.random.fork_rng(devices=[]):     # same init on every rank, global RNG untouched
        torch.manual_seed(cfg.seed)
        if user is not None and user.model_fn is not None:
            model = user.model_fn(data)
        else:
            model = build_model(cfg.model, data.input_shape, data.num_classes, data.task)
    model.to(device)
    for t in list(model.parameters()) + list(model.buffers()):
        comm.broadcast(t.data, 0, accounted=False)      # guard against user-side divergence

    optimizer = build_optimizer(cfg, model.parameters())
    options = cfg.strategy.model_dump(exclude={"name"})
    strategy: Strategy = build_strategy(cfg.strategy.name, model.parameters(), optimizer, comm,
                                        buffers=_floating_buffers(model), **options)
    net = strategy.wrap_model(model)       # what forward/backward run through
    num_params = strategy.num_params
    scale = (cfg.network.model_params / num_params
             if getattr(cfg.network, "model_params", None) else 1.0)
    source = conditions_from(cfg)
    clock = VirtualClock(world, source, scale)
    estimator = AlphaBetaEstimator(world) if isinstance(source, MeasuredConditions) else None
    priced = int(cfg.network.model_params) if getattr(cfg.network, "model_params", None) else None

    sampler, injector = build_data_pipeline(cfg, data, comm)
    spe = sampler.steps_per_epoch
    total_steps = cfg.steps if cfg.steps is not None else max(1, math.ceil(cfg.epochs * spe))

    st = RunState()
    meta = {"strategy": cfg.strategy.name, "fingerprint": checkpoint.fingerprint(cfg.to_dict())}
    parts = {"model": model, "optimizer": optimizer, "strategy": strategy,
             "sampler": sampler, "clock": clock, "loop": st}

    if resume is not None:
        saved = checkpoint.load(Path(resume), rank, world, meta)
        for name, obj in parts.items():
            obj.load_state_dict(saved[name])
        torch.set_rng_state(saved["rng"])
        comm.total_bytes, comm.total_collectives = saved["comm"]
        if isinstance(source, MeasuredConditions) and saved["conditions"] is not None:
            source.update(*saved["conditions"])

    writer = None
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(dump_config(cfg))
        writer = MetricsWriter(out_dir / "metrics.jsonl", resume_after=st.step
                               if resume is not None else None)
    bar = _progress(total_steps, cfg.progress and rank == 0, initial=st.step)

    def save_checkpoint() -> None:
        state = {name: obj.state_dict() for name, obj in parts.items()}
        cond = source.current if isinstance(source, MeasuredConditions) else None
        state.update(rng=torch.get_rng_state(),
                     comm=[comm.total_bytes, comm.total_collectives],
                     conditions=None if cond is None else [cond.alpha, cond.beta])
        checkpoint.save(out_dir, st.step, rank, world, state)
        comm.barrier()                 # every rank's file is written ...
        if rank == 0:                  # ... before the checkpoint is marked complete
            checkpoint.commit(out_dir, st.step, world, meta, cfg.checkpoint.keep)
        comm.barrier()

    streaming = isinstance(sampler, StreamSampler)
    model.train()
    comm.take_timings()      # set-up traffic (connection establishment) would bias estimates
    try:
        while st.step < total_steps:
            step = st.step
            epoch = step / spe
            if streaming:        # arrivals during the previous step, on the run's clock
                sampler.advance((st.prev_wall_s if cfg.stream.clock == "wall"
                                 else st.prev_step_s) or 0.0)
            idx = sampler.next()
            x, y = data.train_x[idx].to(device), data.train_y[idx].to(device)
            if injector is not None:
                x, y = injector.exchange(step, x, y)
            w0, c0 = time.perf_counter(), time.thread_time()
            optimizer.zero_grad(set_to_none=False)
            loss = task_loss(net(x), y)
            loss.backward()
            cond = clock.conditions(step, int(epoch))
            w1 = time.perf_counter()
            if _nonfinite_anywhere(comm, model):        # agreed, so every rank acts alike
                if cfg.on_nonfinite == "stop":
                    raise FloatingPointError(
                        f"non-finite gradients at step {step} on at least one rank "
                        "(set on_nonfinite: skip to skip such steps instead)")
                st.skipped += 1
            else:
                strategy.step(StepContext(step, epoch, cond, priced, steps_per_epoch=spe,
                                          prev_step_s=st.prev_step_s, batch_size=len(y)))
            w2 = time.perf_counter()
            cpu = time.thread_time() - c0
            records = comm.take_records()
            compute = cpu if cfg.clock.compute == "measured" else _compute_model(cfg, len(idx))
            est = (float("nan"), float("nan"))
            timings = comm.take_timings()
            if estimator is not None:
                if step > 0:          # the first step also pays gloo's connection set-up
                    estimator.observe_many(timings)
                est = estimator.fit() or est
            dev = ([sampler.buffer.last_wait, sampler.buffer.queue, len(y)] if streaming else [])
            stats = gather_scalars(comm, [loss.item(), compute, w2 - w1, *est, *dev],
                                   accounted=False)
            if estimator is not None:     # agreed: the median of the ranks' fits
                fits = stats[:, 3:5][~stats[:, 3:5].isnan().any(dim=1)]
                if len(fits):
                    med = fits.median(dim=0).values
                    source.update(float(med[0]), float(med[1]))
            mean_loss = float(stats[:, 0].mean())
            wait = float(stats[:, 5].max()) if streaming else 0.0
            t = clock.advance(step, int(epoch), float(stats[:, 1].max()), records,
                              measured_comm_s=float(stats[:, 2].max()), other_s=wait)
            st.prev_step_s = t.total
            st.prev_wall_s = time.perf_counter() - w0
            st.wall += time.perf_counter() - w0
            st.step += 1
            if math.isfinite(mean_loss):
                st.history.append(mean_loss)
            elif cfg.on_nonfinite == "stop":
                raise FloatingPointError(f"training diverged at step {step}: loss {mean_loss}")

            row: dict[str, Any] = {
                "step": st.step, "epoch": round(st.step / spe, 4), "loss": mean_loss,
                "wall_time": st.wall, "modeled_time": clock.now,
                "step_compute_s": t.compute, "step_comm_s": t.comm,
                "step_bytes": sum(r.nbytes for r in records), "bytes_sent": comm.total_bytes,
                "collectives": len(records),
            }
            if t.conditions is not None:
                row["alpha"] = t.conditions.alpha
                row["bandwidth"] = t.conditions.bandwidth
            row.update(strategy.signals())
            if streaming:            # every device's wait, buffer and (post-injection) batch
                row.update(wait_s=wait, waits=stats[:, 5].tolist(),
                           buffers=stats[:, 6].tolist(), batches=stats[:, 7].tolist())
            if injector is not None:
                row.update(injector.signals())
            if st.step % cfg.eval.every == 0 or st.step == total_steps:
                strategy.before_eval()
                ev = evaluate(model, data, comm, cfg.eval.batch_size, device)
                strategy.after_eval()
                st.last_eval = ev
                row.update(test_loss=ev.loss, test_accuracy=ev.accuracy)
                if ev.perplexity is not None:
                    row["test_perplexity"] = ev.perplexity
                if st.ttt_modeled is None and _reached(cfg, ev):
                    st.ttt_modeled, st.ttt_wall = clock.now, st.wall
            if writer is not None:
                writer.write(row)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{mean_loss:.3f}", t_model=f"{clock.now:.1f}s")
            every = cfg.checkpoint.every
            if every and (st.step % every == 0 or st.step == total_steps):
                save_checkpoint()
    finally:
        strategy.close()
        if writer is not None:
            writer.close()
        if bar is not None:
            bar.close()

    if rank != 0:
        return None
    ev = st.last_eval
    tail = st.history[-10:]
    summary = {
        "strategy": cfg.strategy.name,
        "dataset": data.name,
        "model": cfg.model if user is None or user.model_fn is None else "user",
        "world_size": world,
        "steps": st.step,
        "epochs": st.step / spe,
        "params": num_params,
        "final_loss": sum(tail) / len(tail),
        "final_test_loss": ev.loss,
        "final_accuracy": ev.accuracy,
        "wall_time_s": st.wall,
        "modeled_time_s": clock.now,
        "bytes_sent": comm.total_bytes,
        "collectives": comm.total_collectives,
        "target": {k: v for k, v in cfg.target.model_dump().items() if v is not None},
        "time_to_target_modeled_s": st.ttt_modeled,
        "time_to_target_wall_s": st.ttt_wall,
        "network": cfg.network.kind,
        "skipped_steps": st.skipped,
    }
    summary.update(strategy.summary())
    if injector is not None:
        summary["injected_bytes"] = injector.total_bytes
    if ev.perplexity is not None:
        summary["final_perplexity"] = ev.perplexity
        if "optimal_perplexity" in data.info:
            summary["optimal_perplexity"] = data.info["optimal_perplexity"]
    write_json(out_dir / "summary.json", summary)
    from flexsync.report.plots import plot_run

    plot_run(out_dir)
    return summary


def build_data_pipeline(cfg: Config, data: Dataset, comm: Communicator
                        ) -> tuple[ShardSampler | SelDPSampler | StreamSampler,
                                   DataInjector | None]:
    """This rank's batch sampler (``data.partition``, or a stream over this rank's partition
    when ``stream`` is configured) and, with ``data.injection``, the injector; with injection
    the own batch shrinks to b′ (ddl-methods.md §2.4)."""
    d, batch = cfg.data, cfg.batch_size
    inj = d.injection
    if d.partition == "noniid" and data.task != "classification":
        raise ValueError("data.partition 'noniid' needs a classification dataset")
    if cfg.stream is not None:
        sampler = _stream_sampler(cfg, data, comm)
        share_of = min(sampler.batches)          # every rank knows every batch size
    else:
        if inj is not None and inj.shrink_batch:
            batch = own_batch_size(batch, inj.alpha, inj.beta, comm.world_size)
        sampler = make_sampler(d.partition, data.train_y, comm.world_size, comm.rank, batch,
                               cfg.seed, d.seldp_mode, d.labels_per_worker)
        share_of = batch
    injector = None if inj is None else DataInjector(
        comm, inj.alpha, inj.beta, share_size(share_of, inj.beta), inj.mode, cfg.seed)
    return sampler, injector


def _stream_sampler(cfg: Config, data: Dataset, comm: Communicator) -> StreamSampler:
    sc, world, rank = cfg.stream, comm.world_size, comm.rank
    if cfg.data.partition == "noniid":
        shard = label_shards(data.train_y, world, cfg.seed, cfg.data.labels_per_worker)[rank]
    else:
        shard = random_equal_split(len(data.train_x), world, cfg.seed)[rank]
    rates = draw_rates(sc.rates, world, cfg.seed if sc.seed is None else sc.seed)
    by_rate = sc.batch == "rate" or (sc.batch == "auto" and cfg.strategy.name == "scadles")
    batches = ([clamp_batch(r, sc.tau, sc.b_min, sc.b_max) for r in rates] if by_rate
               else [cfg.batch_size] * world)
    buffer = StreamBuffer(rates[rank], CyclicSource(shard, cfg.seed * 31 + rank), sc.policy,
                          sc.sleep)
    return StreamSampler(buffer, batches[rank], len(data.train_x), rates, batches,
                         sc.drift, sc.drift_every, cfg.seed, rank)


def _nonfinite_anywhere(comm: Communicator, model: nn.Module) -> bool:
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    local = bool(grads) and not bool(torch.stack(torch._foreach_norm(grads)).isfinite().all())
    return agree_any(comm, local, accounted=False)


def _floating_buffers(model: nn.Module) -> list[torch.Tensor]:
    return [b for b in model.buffers() if b.is_floating_point()]


def _progress(total: int, enabled: bool, initial: int = 0):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True,
                leave=False, disable=None)
