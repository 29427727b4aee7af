"""SelSync: synchronise only when some worker's update is significant (ddl-methods.md §2).

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

δ is ``delta`` (``delta_mode="absolute"``; ``inf`` gives local SGD after warm-up) or, with
``delta_mode="quantile"``, the q-th quantile of the Δ values seen during an initial BSP phase
of ``calibration_steps`` steps (every step syncs then), averaged over ranks so all use one δ
(§2.1 "Calibrating δ": absolute δ values do not transfer between models).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from flexsync.comm import Communicator
from flexsync.comm.consensus import agree_any, agree_mean
from flexsync.strategies.base import StepContext
from flexsync.strategies.grads import assign_grads, flatten_grads
from flexsync.strategies.local import LocalUpdateStrategy
from flexsync.strategies.significance import Significance

AGGREGATIONS = ("parameter", "gradient")
DELTA_MODES = ("absolute", "quantile")


class SelSync(LocalUpdateStrategy):
    name = "selsync"

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        optimizer: torch.optim.Optimizer,
        comm: Communicator,
        delta: float | None = 0.3,
        delta_mode: str = "absolute",
        quantile: float = 0.85,
        calibration_steps: int = 200,
        signal: str = "paper_sq_global",
        window: int = 25,
        smoothing: float | None = None,
        smooth_delta: bool = False,
        aggregation: str = "parameter",
        warmup_steps: int = 0,
        **base: Any,
    ) -> None:
        """``delta`` None means ∞; ``smoothing`` None means the paper's N/100 (capped below 1);
        ``warmup_steps`` forces BSP for the first steps (not in the paper, §2(e)); ``base`` are
        the PA/eval options of :class:`~flexsync.strategies.local.LocalUpdateStrategy` and
        ``buffers``."""
        super().__init__(params, optimizer, comm, **base)
        if delta_mode not in DELTA_MODES:
            raise ValueError(f"delta_mode must be one of {DELTA_MODES}, got {delta_mode!r}")
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        delta = math.inf if delta is None else float(delta)
        if delta < 0 or math.isnan(delta):
            raise ValueError(f"delta must be >= 0 (inf allowed), got {delta}")
        if not 0 <= quantile <= 1:
            raise ValueError(f"quantile must be in [0, 1], got {quantile}")
        if smoothing is None:
            smoothing = min(comm.world_size / 100.0, 0.99)
        self.delta_mode = delta_mode
        self.quantile = quantile
        self.calibration_steps = calibration_steps
        self.aggregation = aggregation
        self.warmup_steps = warmup_steps
        self.significance = Significance(signal, window, smoothing, smooth_delta)
        self.threshold: float | None = delta if delta_mode == "absolute" else None
        self._calibration: list[float] = []

    def _calibrate(self) -> None:
        """δ = mean over ranks of each rank's q-quantile of its calibration Δs (one tiny,
        accounted consensus allreduce; every rank reaches this at the same step)."""
        finite = torch.tensor([d for d in self._calibration if math.isfinite(d)],
                              dtype=torch.float64)
        local = float(torch.quantile(finite, self.quantile)) if len(finite) else math.inf
        self.threshold = agree_mean(self.comm, [local])[0]
        self._calibration = []

    def step(self, ctx: StepContext) -> None:
        delta = self.significance.update(self.params)
        if self.threshold is None:                       # quantile mode, calibrating
            if delta is not None:
                self._calibration.append(delta)
            if ctx.step >= self.calibration_steps and self._calibration:
                self._calibrate()
        flag = (delta is None or self.threshold is None or ctx.step < self.warmup_steps
                or delta >= self.threshold)

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
        self.count(synced)
        self._signals = {**self.base_signals(ctx.step, synced), "delta": delta,
                         "delta_threshold": self.threshold}

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "delta_threshold": self.threshold}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "significance": self.significance.state_dict(),
                "threshold": self.threshold, "calibration": list(self._calibration)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.significance.load_state_dict(state["significance"])
        self.threshold = state["threshold"]
        self._calibration = list(state["calibration"])
