"""SelSync: synchronise only when some worker's update is significant (docs/methods.md §2).

Per step on worker n (§2.2, paper order, allreduce variant):

1. Δ_n from the local gradient (:mod:`~flexsync.strategies.significance`, §2.1).
2. flag_n = 1 if the windows are not full yet, during warm-up / δ calibration, or Δ_n ≥ δ.
3. Parameter aggregation (PA, default): local ``optimizer.step()`` first, then
   flag = allreduce-MAX(flag_n) (:func:`~flexsync.comm.consensus.agree_any`, so every rank takes
   the same branch, §0.6); if set, w_n ← mean_m w_m. Stepping before averaging makes the
   replicas identical after every sync, and a sync from identical replicas equals a BSP step
   even with momentum and weight decay (updates are linear), so δ = 0 reproduces BSP.
   Gradient aggregation (GA, the paper's ablation): agree first; if set, allreduce-mean the
   gradients, then step. Replicas that drifted apart stay apart.
4. Count the step as sync or local; LSSR = local / total, communication reduction 1/(1 − LSSR).

A bound on consecutive local steps (``max_local_steps``, default 8; null: none) forces a sync
when the replicas have stepped apart that long. Not in the paper: with a decaying learning
rate the significance Δ shrinks with the step size, so a fixed δ that syncs early stops
syncing altogether (measured: δ = 0.3 on resnet-hard under the cosine schedule syncs for
about 40 steps, then never, and misses dense quality on 1 of 3 seeds; docs/methods.md,
SelSync "Measured gaps"). The counter advances on agreed decisions only, so the forced sync
is the same step on every rank.

δ is ``delta`` (``delta_mode="absolute"``; ``inf`` gives local SGD after warm-up) or, with
``delta_mode="quantile"``, the q-th quantile of the Δ values seen during an initial BSP phase
of ``calibration_steps`` steps (every step syncs then), averaged over ranks so all use one δ
(§2.1 "Calibrating δ": absolute δ values do not transfer between models).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal

import torch
from pydantic import Field

from flexsync.comm import Communicator
from flexsync.comm.consensus import agree_any, agree_mean
from flexsync.strategies.base import StepContext
from flexsync.strategies.grads import assign_grads, flatten_grads
from flexsync.strategies.local import LocalUpdateOptions, LocalUpdateStrategy
from flexsync.strategies.significance import Significance

AGGREGATIONS = ("parameter", "gradient")
DELTA_MODES = ("absolute", "quantile")


class SelSyncOptions(LocalUpdateOptions):
    """``delta`` null (or .inf) means never sync after warm-up; ``smoothing`` null means the
    paper's N/100 (capped below 1); ``warmup_steps`` forces BSP for the first steps (not in
    the paper, docs/methods.md SelSync)."""

    name: Literal["selsync"] = "selsync"
    delta: float | None = Field(0.3, ge=0, description="threshold δ; null or .inf: never")
    delta_mode: Literal["absolute", "quantile"] = "absolute"
    quantile: float = Field(0.85, ge=0, le=1)
    calibration_steps: int = Field(200, ge=0)
    signal: Literal["paper_sq_global", "code_sum_layer_l2"] = "paper_sq_global"
    window: int = Field(25, ge=1)
    smoothing: float | None = Field(None, ge=0, lt=1, description="null: N/100 (paper)")
    smooth_delta: bool = False
    aggregation: Literal["parameter", "gradient"] = "parameter"
    warmup_steps: int = Field(0, ge=0)
    max_local_steps: int | None = Field(8, ge=1, description="force a sync after this many "
                                        "consecutive local steps; null: never force")


class SelSync(LocalUpdateStrategy):
    name = "selsync"

    Options = SelSyncOptions

    def __init__(self, params: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                 comm: Communicator, **options: Any) -> None:
        super().__init__(params, optimizer, comm, **options)
        o = self.opts
        delta = math.inf if o.delta is None else float(o.delta)
        smoothing = min(comm.world_size / 100.0, 0.99) if o.smoothing is None else o.smoothing
        self.delta_mode = o.delta_mode
        self.quantile = o.quantile
        self.calibration_steps = o.calibration_steps
        self.aggregation = o.aggregation
        self.warmup_steps = o.warmup_steps
        self.max_local_steps = o.max_local_steps
        self.local_run = 0                  # consecutive local steps since the last sync
        self.significance = Significance(o.signal, o.window, smoothing, o.smooth_delta)
        self.threshold: float | None = delta if o.delta_mode == "absolute" else None
        self._calibration: list[float] = []

    def _calibrate(self) -> None:
        """δ = mean over ranks of each rank's q-quantile of its calibration Δs (one tiny,
        accounted consensus allreduce; every rank reaches this at the same step)."""
        finite = torch.tensor([d for d in self._calibration if math.isfinite(d)],
                              dtype=torch.float64)
        local = float(torch.quantile(finite, self.quantile)) if len(finite) else math.inf
        self.threshold = agree_mean(self.comm, [local])[0]
        self._calibration = []

    def local_flag(self, ctx: StepContext) -> tuple[float | None, bool]:
        """This rank's vote of §2.2 step 2 from its local gradients: (Δ, flag). Folds the
        step's gradients into the significance tracker and calibrates δ when due, so call
        it once per step; the vote still has to be agreed (:func:`agree_any`)."""
        delta = self.significance.update(self.params)
        if self.threshold is None:                       # quantile mode, calibrating
            if delta is not None:
                self._calibration.append(delta)
            if ctx.step >= self.calibration_steps and self._calibration:
                self._calibrate()
        bound = self.max_local_steps is not None and self.local_run >= self.max_local_steps
        flag = (delta is None or self.threshold is None or ctx.step < self.warmup_steps
                or bound or delta >= self.threshold)
        return delta, flag

    def record(self, synced: bool) -> None:
        """Count an agreed decision (LSSR) and advance the bound's run of local steps."""
        self.count(synced)
        self.local_run = 0 if synced else self.local_run + 1

    def step(self, ctx: StepContext) -> None:
        delta, flag = self.local_flag(ctx)
        if self.aggregation == "parameter":
            self.optimizer.step()
            synced = agree_any(self.comm, flag)
            if synced:
                self.average_parameters()
        else:
            synced = agree_any(self.comm, flag)
            if synced:
                flat = flatten_grads(self.params)
                self.comm.allreduce(flat, tag="gradients")
                assign_grads(self.params, flat.div_(self.comm.world_size))
            self.optimizer.step()
        self.record(synced)
        self._signals = {**self.base_signals(ctx.step, synced), "delta": delta,
                         "delta_threshold": self.threshold}

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "delta_threshold": self.threshold}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "significance": self.significance.state_dict(),
                "threshold": self.threshold, "calibration": list(self._calibration),
                "local_run": self.local_run}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.significance.load_state_dict(state["significance"])
        self.threshold = state["threshold"]
        self._calibration = list(state["calibration"])
        self.local_run = int(state.get("local_run", 0))
