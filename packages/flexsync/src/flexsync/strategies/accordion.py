"""Accordion (Agarwal et al., MLSys 2021), the adaptive baseline of the GraVAC paper
(docs/methods.md §3(a), "Accordion baseline").

A critical-regime detector switches AG top-k between a low CF (gentle compression, in critical
regimes where the gradient changes fast) and a high CF: the signal is the windowed EWMA
(W = 100, a = 0.02) of Σ_l ‖g_l‖, the sum of per-layer L2 norms of the cluster-mean raw gradient;
when it changed by at least η relative to its value ``interval`` steps earlier the regime is
critical. While the window is still filling, training counts as critical (it starts in one).

Each rank's Σ_l ‖g_l‖ rides along in the step's aggregation message (no extra collective), so the
signal — and the CF of the next ``interval`` steps — is identical on every rank.

Departure (docs/methods.md §3, "Accordion"): the default ``interval`` is 100 steps (one
window), not 1. GraVAC's description compares consecutive steps, but a 2 %-smoothed signal
cannot change by η = 20 % in one step: measured on the CNN workload its largest
consecutive-step change was 1.7–2.1 % (0.8–1.0 % on the ResNet), so after the window filled
the detector never fired and the run spent 499 of 600 steps at 1000x while the signal grew
from 2 to 12 (its change over 100 steps: 200–300 %, then 26–88 %). The original Accordion
also decides over epochs, not steps. ``interval: 1`` restores the per-step rule.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from typing import Any, Literal

import torch
from pydantic import Field, model_validator

from flexsync.comm import Communicator
from flexsync.strategies.base import StepContext
from flexsync.strategies.options import SparsifierOptions
from flexsync.strategies.smoothing import WindowedEWMA
from flexsync.strategies.sparse import SparseOptions
from flexsync.strategies.topk import TopK


class AccordionOptions(SparsifierOptions):
    """Low CF in critical regimes, else high (CF θ: keep fraction 1/θ; 1 is dense)."""

    name: Literal["accordion"] = "accordion"
    low_cf: float = Field(10.0, ge=1)
    high_cf: float = Field(1000.0, ge=1)
    eta: float = Field(0.2, ge=0, description="relative-change threshold η")
    window: int = Field(100, ge=1)
    smoothing: float = Field(0.02, ge=0, lt=1)
    interval: int = Field(100, ge=1, description="steps between regime detections (the "
                          "signal is compared with its value this many steps earlier)")

    @model_validator(mode="after")
    def _bounds(self) -> AccordionOptions:
        if self.low_cf >= self.high_cf:
            raise ValueError(f"low_cf ({self.low_cf}) must be below high_cf ({self.high_cf})")
        return self


class Accordion(TopK):
    """AG top-k whose CF is ``low_cf`` in critical regimes and ``high_cf`` otherwise.

    Args:
        low_cf, high_cf: compression factors (θ ≥ 1; 1 is dense); keep fraction = 1/θ.
        eta: relative-change threshold η of the detector.
        window, smoothing: the WindowedEWMA of the signal (W, a).
        interval: steps between detections (the CF holds in between).
        selector, gain_norm, seed: as for :class:`~flexsync.strategies.topk.TopK`.
    """

    name = "accordion"
    Options = AccordionOptions

    def __init__(self, params: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                 comm: Communicator, **options: Any) -> None:
        super().__init__(params, optimizer, comm, **options)
        o = self.opts
        self.low_cf, self.high_cf = float(o.low_cf), float(o.high_cf)
        self.eta, self.interval = o.eta, o.interval
        self.signal = WindowedEWMA(o.window, o.smoothing)
        self.history: deque[float | None] = deque(maxlen=o.interval + 1)
        self.cf = self.low_cf
        self.critical = True
        self.cf_steps: Counter[str] = Counter()

    def sparse_options(self) -> SparseOptions:
        """AG top-k starting at the low CF, with this strategy's selector and gain form."""
        o = self.opts
        return SparseOptions(ratio=1.0 / o.low_cf, selector=o.selector, gain_norm=o.gain_norm,
                             seed=o.seed, values=o.values)

    def step(self, ctx: StepContext) -> None:
        used = self.cf
        super().step(ctx)
        self.cf_steps[f"{used:g}"] += 1
        self._signals.update(cf=used, critical=self.critical, accordion_signal=self.history[-1])

    def piggyback(self, grad: torch.Tensor) -> list[float]:
        return [float(sum(g.norm() for g in torch.split(grad, self.sizes)))]

    def observe_piggyback(self, ctx: StepContext, means: list[float]) -> None:
        """Update the detector with the cluster-mean signal; at a detection step pick the CF
        of the following steps (identical on every rank: the inputs are agreed)."""
        self.history.append(self.signal.update(means[0]))
        if (ctx.step + 1) % self.interval:
            return
        now, before = self.history[-1], self.history[0]
        if now is None or before is None or len(self.history) <= self.interval:
            self.critical = True
        else:
            self.critical = abs(now - before) / before >= self.eta if before > 0 else True
        self.cf = self.low_cf if self.critical else self.high_cf
        self.ratio = 1.0 / self.cf

    def summary(self) -> dict[str, Any]:
        return {"accordion": {"cf_steps": dict(self.cf_steps)}}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "signal": self.signal.state_dict(),
                "history": list(self.history), "cf": self.cf, "critical": self.critical,
                "cf_steps": dict(self.cf_steps)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.signal.load_state_dict(state["signal"])
        self.history = deque(state["history"], maxlen=self.interval + 1)
        self.cf, self.critical = float(state["cf"]), bool(state["critical"])
        self.cf_steps = Counter(state["cf_steps"])
