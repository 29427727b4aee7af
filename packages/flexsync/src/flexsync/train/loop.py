"""The training loop every strategy runs in: the step loop only (the run is assembled by
:mod:`flexsync.train.assemble`).

Per step: forward/backward on this rank's batch, ``strategy.step`` (aggregation + optimizer),
then one small unaccounted allgather of (loss, compute time, communication wall time) so
every rank advances the same virtual clock and rank 0 can log the cluster's mean loss.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from flexsync.comm import CommRecord, Communicator
from flexsync.comm.consensus import agree_any, gather_scalars
from flexsync.config import Config
from flexsync.data import Dataset
from flexsync.data.partition import SelDPSampler, ShardSampler
from flexsync.data.streams import StreamSampler
from flexsync.net.clock import StepTime, VirtualClock
from flexsync.net.conditions import ConditionsSource
from flexsync.net.estimate import AlphaBetaEstimator
from flexsync.strategies import ContextBuilder, Strategy
from flexsync.train.injection import DataInjector
from flexsync.train.liveness import mark_progress
from flexsync.train.metrics import MetricsWriter
from flexsync.train.progress import LineProgress


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
    return cfg.clock.t0 + cfg.clock.t1 * batch


@dataclass
class Run:
    """The live parts of one run on this rank (built by ``assemble.build_run``)."""

    cfg: Config
    comm: Communicator
    data: Dataset
    model: nn.Module
    net: nn.Module                  # what forward/backward run through (DDP-wrapped for ddp)
    optimizer: torch.optim.Optimizer
    strategy: Strategy
    sampler: ShardSampler | SelDPSampler | StreamSampler
    injector: DataInjector | None
    source: ConditionsSource | None
    clock: VirtualClock
    estimator: AlphaBetaEstimator | None
    contexts: ContextBuilder
    total_steps: int
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None

    @property
    def streaming(self) -> bool:
        return isinstance(self.sampler, StreamSampler)


def train_loop(run: Run, st: RunState, writer: MetricsWriter | None,
               on_step_end: Callable[[], None]) -> None:
    """Step ``run`` from ``st.step`` to ``run.total_steps``: one :func:`train_step`, a
    periodic evaluation, a metrics row (rank 0) and ``on_step_end`` (checkpoints) per step."""
    bar = _progress(run.total_steps, run.cfg.progress and run.comm.rank == 0, initial=st.step,
                    every_s=run.cfg.logging.progress_every_s)
    run.model.train()
    run.comm.take_timings()  # set-up traffic (connection establishment) would bias estimates
    first = st.step
    try:
        while st.step < run.total_steps:
            mark_progress(st.step)
            row = train_step(run, st)
            row.update(maybe_evaluate(run, st))
            if writer is not None:
                writer.write(row)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{row['loss']:.3f}", t_model=f"{run.clock.now:.1f}s")
            on_step_end()
        mark_progress(st.step)
    finally:
        run.strategy.close()
        if bar is not None:
            bar.close()
    if st.step > first and st.skipped >= st.step:
        raise FloatingPointError(f"every one of the {st.step} steps was skipped for non-finite "
                                 "gradients (on_nonfinite: skip): nothing was trained; lower "
                                 "optimizer.lr or check the data")


def train_step(run: Run, st: RunState) -> dict[str, Any]:
    """One step on every rank: batch, forward/backward, the strategy's aggregation and
    update, then the agreed bookkeeping (loss, clock, live α-β). Returns the metrics row."""
    cfg, comm, step = run.cfg, run.comm, st.step
    spe = run.sampler.steps_per_epoch
    epoch = step / spe
    if run.streaming:        # arrivals during the previous step, on the run's clock
        run.sampler.advance((st.prev_wall_s if cfg.stream.clock == "wall"
                             else st.prev_step_s) or 0.0)
    idx = run.sampler.next()
    x, y = run.data.train_x[idx].to(comm.device), run.data.train_y[idx].to(comm.device)
    if run.injector is not None:
        x, y = run.injector.exchange(step, x, y)
    w0, c0 = time.perf_counter(), time.thread_time()
    saved = _buffers(run.model) if cfg.on_nonfinite == "skip" else None
    run.optimizer.zero_grad(set_to_none=False)
    loss = task_loss(run.net(x), y)
    loss.backward()
    ctx = run.contexts.context(step, run.clock.now, st.prev_step_s, len(y))
    w1 = time.perf_counter()
    if _nonfinite_anywhere(comm, run.model):        # agreed, so every rank acts alike
        if cfg.on_nonfinite == "stop":
            raise FloatingPointError(f"non-finite gradients at step {step} on at least one rank "
                                     "(set on_nonfinite: skip to skip such steps instead)")
        st.skipped += 1
        _restore(run.model, saved)      # the forward pass moved BatchNorm's statistics
    else:
        run.strategy.step(ctx)
    if run.scheduler is not None:
        run.scheduler.step()
    w2 = time.perf_counter()
    records = comm.take_records()
    est = _fit_conditions(run, step)
    own = [loss.item(), 0.0, w2 - w1]
    # Measured last, so the step's compute includes the loop's own CPU work (the live fit).
    own[1] = (time.thread_time() - c0 if cfg.clock.compute == "measured"
              else _compute_model(cfg, len(idx)))
    stats = _agree_stats(run, [*own, *est], len(y))
    mean_loss = float(stats[:, 0].mean())
    wait = float(stats[:, 5].max()) if run.streaming else 0.0
    t = run.clock.advance(step, int(epoch), float(stats[:, 1].max()),
                          records + bookkeeping_records(run.streaming),
                          measured_comm_s=float(stats[:, 2].max()), other_s=wait)
    st.prev_step_s = t.total
    st.prev_wall_s = time.perf_counter() - w0
    st.wall += st.prev_wall_s
    st.step += 1
    if math.isfinite(mean_loss):
        st.history.append(mean_loss)
    elif cfg.on_nonfinite == "stop":
        raise FloatingPointError(f"training diverged at step {step}: loss {mean_loss}")
    return _row(run, st, mean_loss, t, records, stats)


def bookkeeping_records(streaming: bool) -> list[CommRecord]:
    """The loop's own collectives of every step, priced on the run's clock beside the
    strategy's (not counted in its bytes): the agreed non-finite flag (an 8-byte allreduce)
    and the agreed step statistics (:func:`_agree_stats`, 5 float64, 8 with streams). On an
    emulated link with 2 workers they cost 3-4 ms a step, a third of the step of a strategy
    that sends little; unpriced, the modeled clock ran 30-50 % fast there (issue 23)."""
    n = 8 if streaming else 5
    return [CommRecord("allreduce", 8, 1, "ring", False, "flag"),
            CommRecord("allgather", 8 * n, n, None, False, "stats")]


def _fit_conditions(run: Run, step: int) -> tuple[float, float]:
    """This rank's (α, β) fit of the live estimator over the step's collective timings, or
    NaNs (no estimator, or not enough timings yet)."""
    timings = run.comm.take_timings()
    if run.estimator is None:
        return float("nan"), float("nan")
    if step > 0:          # the first step also pays gloo's connection set-up
        run.estimator.observe_many(timings)
    return run.estimator.fit(1.0 / run.source.current.bandwidth) or (float("nan"), float("nan"))


def _agree_stats(run: Run, own: list[float], batch: int) -> torch.Tensor:
    """Every rank's (loss, compute, comm wall, α fit, β fit[, wait, buffer, batch]) in one
    small unaccounted allgather; with live estimation the ranks' median fit updates the
    conditions source (agreed, so every rank sees the same network)."""
    buf = run.sampler.buffer if run.streaming else None
    dev = [buf.last_wait, buf.queue, batch] if buf is not None else []
    stats = gather_scalars(run.comm, [*own, *dev], accounted=False)
    if run.estimator is not None:
        fits = stats[:, 3:5][~stats[:, 3:5].isnan().any(dim=1)]
        if len(fits):
            med = fits.median(dim=0).values
            run.source.update(float(med[0]), float(med[1]))
    return stats


def _row(run: Run, st: RunState, mean_loss: float, t: StepTime, records: list,
         stats: torch.Tensor) -> dict[str, Any]:
    comm = run.comm
    row: dict[str, Any] = {
        "step": st.step, "epoch": round(st.step / run.sampler.steps_per_epoch, 4),
        "loss": mean_loss, "wall_time": st.wall, "modeled_time": run.clock.now,
        "step_compute_s": t.compute, "step_comm_s": t.comm,
        "step_bytes": sum(r.nbytes for r in records), "bytes_sent": comm.total_bytes,
        "collectives": len(records),
        "comm": [[r.kind, r.algo, r.nbytes, int(r.scalable)] for r in records],
    }
    if t.other:
        row["step_other_s"] = t.other
    if run.scheduler is not None:
        row["lr"] = run.scheduler.get_last_lr()[0]
    if t.conditions is not None:
        row["alpha"] = t.conditions.alpha
        row["bandwidth"] = t.conditions.bandwidth
    row.update(run.strategy.signals())
    if run.streaming:            # every device's wait, buffer and (post-injection) batch
        row.update(wait_s=float(stats[:, 5].max()), waits=stats[:, 5].tolist(),
                   buffers=stats[:, 6].tolist(), batches=stats[:, 7].tolist())
    if run.injector is not None:
        row.update(run.injector.signals())
    return row


def maybe_evaluate(run: Run, st: RunState) -> dict[str, Any]:
    """Evaluate on the test set every ``eval.every`` steps and at the last; records the
    first time the target is reached."""
    cfg = run.cfg
    if st.step % cfg.eval.every and st.step != run.total_steps:
        return {}
    run.strategy.before_eval()
    ev = evaluate(run.model, run.data, run.comm, cfg.eval.batch_size, run.comm.device)
    run.strategy.after_eval()
    st.last_eval = ev
    out = {"test_loss": ev.loss, "test_accuracy": ev.accuracy}
    if ev.perplexity is not None:
        out["test_perplexity"] = ev.perplexity
    if st.ttt_modeled is None and _reached(cfg, ev):
        st.ttt_modeled, st.ttt_wall = run.clock.now, st.wall
    return out


def _buffers(model: nn.Module) -> list[torch.Tensor]:
    """Copies of the model's buffers (BatchNorm running statistics, counters)."""
    return [b.detach().clone() for b in model.buffers()]


@torch.no_grad()
def _restore(model: nn.Module, saved: list[torch.Tensor] | None) -> None:
    """Put the buffers back as :func:`_buffers` saw them: a skipped step leaves no trace."""
    for b, old in zip(model.buffers(), saved or [], strict=True):
        b.copy_(old)


def _nonfinite_anywhere(comm: Communicator, model: nn.Module) -> bool:
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    local = bool(grads) and not bool(torch.stack(torch._foreach_norm(grads)).isfinite().all())
    return agree_any(comm, local, accounted=False)


def _progress(total: int, enabled: bool, initial: int = 0, every_s: float = 30.0):
    """A tqdm bar on a terminal; periodic plain lines (:class:`LineProgress`) otherwise."""
    if not enabled:
        return None
    if not sys.stderr.isatty():
        return LineProgress(total, initial, every_s)
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True,
                leave=False, disable=None)
