"""Live α-β estimation from the run's own collectives (no ping, no iperf).

Every collective the Communicator runs is timed. Each timing is one linear equation of the
cost model (docs/methods.md §0.3), t ≈ a·α + b·X·β, with (a, b) known from the collective's
kind and the world size: ring allreduce (2(N−1), 2(N−1)/N), allgather (L, N−1), broadcast
(L, L). Small bookkeeping messages pin α, gradient-sized ones pin β; a non-negative least
squares fit over a sliding window gives both. Ranks fit locally and then agree on the
median of their fits (robust to one rank whose timings are inflated by waiting for others).
A window of small messages only (torch DDP's gradients travel inside DDP, untimed here; or
top-k at a high ratio) cannot pin β, but it does pin α: with the current bandwidth as a prior
it yields α alone, as the mean latency share of the window's timings.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

import numpy as np
from scipy.optimize import nnls

from flexsync.net.conditions import NetworkConditions
from flexsync.net.cost_model import coefficients


class AlphaBetaEstimator:
    """Fits (α, β) to the timed collectives of a sliding window.

    β is identifiable only from messages large enough for bandwidth to dominate their time:
    below ``min_payload`` bytes a message's time is latency and waiting for the slowest rank,
    and a fit over such messages alone turns that skew into an absurdly low bandwidth. This
    is what happened with torch DDP, whose gradient traffic runs inside DDP (not timed here):
    the window held only the loop's bookkeeping scalars, and on a 2.5 MB/s emulated link the
    fitted bandwidth was reported at about 48 KB/s (issue 23). Without a large message in the
    window :meth:`fit` keeps β at the prior it is given and fits α alone; given no prior, it
    returns None and the configured conditions stay in force.
    """

    def __init__(self, world: int, window: int = 200, min_samples: int = 10,
                 min_payload: int = 65536) -> None:
        self.world = world
        self.min_samples = min_samples
        self.min_payload = min_payload
        self._rows: deque[tuple[float, float, float]] = deque(maxlen=window)
        self._large: deque[bool] = deque(maxlen=window)

    def observe(self, kind: str, algo: str | None, nbytes: float, seconds: float) -> None:
        if self.world <= 1 or kind == "barrier" or seconds <= 0:
            return
        c = coefficients(kind, algo, self.world)
        if c[1] > 0:
            self._rows.append((c[0], c[1] * nbytes, seconds))
            self._large.append(nbytes >= self.min_payload)

    def observe_many(self, timings: Iterable[tuple[str, str | None, int, float]]) -> None:
        for kind, algo, nbytes, seconds in timings:
            self.observe(kind, algo, nbytes, seconds)

    def fit(self, beta_prior: float | None = None) -> tuple[float, float] | None:
        """(α seconds, β seconds/byte), or None while the window cannot separate them.

        ``beta_prior`` (seconds/byte, the bandwidth now in force) is used when the window has
        no message large enough for β: α is then the mean over the window of each timing's
        latency share, (t − b·X·β_prior) / a. Without it a torch DDP run on an emulated link
        was priced at the initial 0.1 ms α while each of gloo's small allreduces cost about
        0.7 ms (issue 23). The mean, not the median, because the clock sums what it prices:
        small collectives have a long tail (a descheduled worker, queueing), and a median
        priced the loop's two per-step collectives on the 2-worker emulated link at 0.9 ms
        each against a mean of 1.5 ms."""
        if len(self._rows) < self.min_samples:
            return None
        rows = np.array(self._rows)
        if not any(self._large):
            if beta_prior is None or not beta_prior > 0:
                return None
            latency = (rows[:, 2] - rows[:, 1] * beta_prior) / rows[:, 0]
            return max(0.0, float(np.mean(latency))), float(beta_prior)
        sizes = rows[:, 1]
        if sizes.max() <= 0 or sizes.min() == sizes.max():
            return None
        # Relative error weighting: each equation scaled by 1/t so small messages count.
        w = 1.0 / rows[:, 2]
        (alpha, beta), _ = nnls(rows[:, :2] * w[:, None], rows[:, 2] * w)
        if beta <= 0:
            return None
        return float(alpha), float(beta)


class MeasuredConditions:
    """A conditions source fed by the agreed live estimate; starts from ``initial``."""

    def __init__(self, initial: NetworkConditions) -> None:
        self.current = initial
        self.updates = 0

    def at(self, step: int, epoch: int, time_s: float) -> NetworkConditions:
        return self.current

    def state_dict(self) -> dict[str, float]:
        return {"alpha": self.current.alpha, "bandwidth": self.current.bandwidth,
                "updates": self.updates}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.current = NetworkConditions(float(state["alpha"]), float(state["bandwidth"]))
        self.updates = int(state["updates"])

    def update(self, alpha: float, beta: float) -> None:
        if math.isfinite(alpha) and math.isfinite(beta) and beta > 0:
            self.current = NetworkConditions(alpha, 1.0 / beta)
            self.updates += 1
