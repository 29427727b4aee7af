"""Streaming data at the edge (ScaDLES, docs/methods.md §4.1 and §4.3).

Device i receives samples at S_i samples/s and keeps them in a buffer. Before each training
step the buffer receives the arrivals of the previous step's duration t (a_i = S_i·t, taken
from the run's clock: modeled or wall seconds), then the device takes its batch b_i:

* **persistence** keeps everything, Q ← Q + a; the oldest b_i are consumed. Q grows by
  (t·S_i − b_i) per step when t·S_i ≥ b_i (paper Eq. 2).
* **truncation** keeps only the last step's arrivals, Q ← a (older residue dropped); the
  newest b_i are consumed. Q stays O(S_i).

When the buffer holds fewer than b_i samples the device waits (b_i − Q)/S_i seconds for the
rest (``sleep=True`` really sleeps). A stream is a cyclic walk over the device's partition in
a seeded order; a user plugs in any other source through :class:`StreamSource`.

Rates come from the paper's distributions (Table I: S1 uniform 38±24, S2 uniform 300±112,
S1-normal 64±24, S2-normal 256±28; a uniform with mean μ and std σ spans μ ± √3·σ; clipped to
≥ 1), drawn for all devices from one shared seed so every rank knows every rate, or from an
explicit list; optional multiplicative jitter re-drawn every ``drift_every`` steps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Protocol

import torch

RATE_PRESETS = {
    "S1": ("uniform", 38.0, 24.0),
    "S2": ("uniform", 300.0, 112.0),
    "S1-normal": ("normal", 64.0, 24.0),
    "S2-normal": ("normal", 256.0, 28.0),
}


def draw_rates(spec: str | Sequence[float], devices: int, seed: int) -> list[float]:
    """Per-device mean rates (samples/s), identical on every rank for the same seed."""
    if not isinstance(spec, str):
        rates = [float(r) for r in spec]
        if len(rates) < devices:
            raise ValueError(f"stream.rates lists {len(rates)} rates for {devices} workers")
        if min(rates) <= 0:
            raise ValueError("stream.rates must all be > 0")
        return rates[:devices]
    if spec not in RATE_PRESETS:
        raise ValueError(f"unknown stream rate preset {spec!r}; expected one of "
                         f"{sorted(RATE_PRESETS)} or a list of rates")
    kind, mean, std = RATE_PRESETS[spec]
    g = torch.Generator().manual_seed(seed)
    if kind == "uniform":
        half = math.sqrt(3) * std
        r = mean - half + 2 * half * torch.rand(devices, generator=g, dtype=torch.float64)
    else:
        r = mean + std * torch.randn(devices, generator=g, dtype=torch.float64)
    return [max(1.0, float(v)) for v in r]


def clamp_batch(rate: float, tau: float = 1.0, b_min: int = 8, b_max: int = 1024) -> int:
    """ScaDLES's batch: about τ seconds of stream, b_i = clamp(S_i·τ, b_min, b_max) (§4.2)."""
    return int(min(b_max, max(b_min, round(rate * tau))))


class StreamSource(Protocol):
    """Anything that yields the next sample indices of a device's stream, in arrival order."""

    def take(self, first: int, count: int) -> torch.Tensor: ...


class CyclicSource:
    """The device's partition in a seeded order, cycled (a fresh order each pass)."""

    def __init__(self, indices: torch.Tensor, seed: int) -> None:
        if len(indices) == 0:
            raise ValueError("a stream needs a non-empty partition")
        self.indices = indices
        self.seed = seed

    def _order(self, cycle: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 100_003 + cycle)
        return self.indices[torch.randperm(len(self.indices), generator=g)]

    def take(self, first: int, count: int) -> torch.Tensor:
        n = len(self.indices)
        pos = torch.arange(first, first + count)
        out = torch.empty(count, dtype=self.indices.dtype)
        for cycle in torch.unique(pos // n).tolist():
            sel = (pos // n) == cycle
            out[sel] = self._order(cycle)[pos[sel] % n]
        return out


class StreamBuffer:
    """One device's buffer, driven by elapsed seconds. Counts are real numbers of samples
    (fractional arrivals accumulate); consumed sample positions are whole."""

    POLICIES = ("persistence", "truncation")

    def __init__(self, rate: float, source: StreamSource, policy: str = "truncation",
                 sleep: bool = False) -> None:
        if policy not in self.POLICIES:
            raise ValueError(f"stream policy must be one of {self.POLICIES}, got {policy!r}")
        if rate <= 0:
            raise ValueError(f"stream rate must be > 0, got {rate}")
        self.rate = rate
        self.source = source
        self.policy = policy
        self.sleep = sleep
        self.arrived = 0.0          # samples that ever arrived (stream position)
        self.queue = 0.0            # samples held now
        self.consumed_new = 0       # samples trained on for the first time
        self.last_wait = 0.0

    def advance(self, seconds: float) -> None:
        a = self.rate * max(0.0, seconds)
        self.arrived += a
        self.queue = a if self.policy == "truncation" else self.queue + a

    def take(self, batch: int) -> tuple[torch.Tensor, float]:
        """Consume ``batch`` samples; returns their indices and the wait (seconds)."""
        wait = 0.0
        if self.queue < batch:
            wait = (batch - self.queue) / self.rate
            if self.sleep:
                time.sleep(wait)
            self.arrived += batch - self.queue
            self.queue = float(batch)
        end = math.floor(self.arrived)
        if self.policy == "truncation":          # newest b
            first = end - batch
        else:                                    # oldest b still held
            first = math.floor(self.arrived - self.queue)
        self.queue -= batch
        self.consumed_new += batch
        self.last_wait = wait
        return self.source.take(max(0, first), batch), wait

    def state_dict(self) -> dict:
        return {"arrived": self.arrived, "queue": self.queue, "consumed_new": self.consumed_new,
                "last_wait": self.last_wait, "rate": self.rate}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)


class StreamSampler:
    """The sampler interface of the training loop for a streaming device: ``next()`` gives
    the batch after :meth:`advance` credited the previous step's duration."""

    def __init__(self, buffer: StreamBuffer, batch: int, dataset_size: int,
                 rates: Sequence[float], batches: Sequence[int],
                 drift: float = 0.0, drift_every: int = 0, seed: int = 0, rank: int = 0) -> None:
        self.buffer = buffer
        self.batch = batch
        self.base_rate = buffer.rate
        self.rates = list(rates)              # every device's mean rate (known to all ranks)
        self.batches = list(batches)          # every device's batch size
        self.dataset_size = dataset_size
        self.drift, self.drift_every, self.seed, self.rank = drift, drift_every, seed, rank
        self.steps = 0

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.dataset_size // max(1, sum(self.batches)))

    def advance(self, seconds: float) -> None:
        self.buffer.advance(seconds)

    def next(self) -> torch.Tensor:
        if self.drift and self.drift_every and self.steps % self.drift_every == 0:
            g = torch.Generator().manual_seed(self.seed * 7919 + self.steps)
            jitter = 1 + self.drift * (2 * torch.rand(len(self.rates), generator=g) - 1)
            self.buffer.rate = max(1.0, self.base_rate * float(jitter[self.rank]))
        self.steps += 1
        idx, _ = self.buffer.take(self.batch)
        return idx

    def signals(self) -> dict:
        return {"buffer": self.buffer.queue, "wait_s": self.buffer.last_wait,
                "batch": self.batch, "rate": self.buffer.rate}

    def state_dict(self) -> dict:
        return {"buffer": self.buffer.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.buffer.load_state_dict(state["buffer"])
        self.steps = int(state["steps"])
