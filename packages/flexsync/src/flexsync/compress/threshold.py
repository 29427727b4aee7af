"""The default selector: a magnitude threshold carried from step to step (docs/methods.md §0.2,
"Selection at memory speed").

Exact ``torch.topk`` with k = 1 % of 25 M entries costs many passes over the vector (it
partially sorts). A gradient's magnitude distribution moves slowly between steps, so a
threshold that kept about ``(1 + margin)·k`` entries last step keeps about as many now (DGC,
Lin et al. 2018 §3; Ok-Topk, Li & Hoefler 2022 §3.1, reuse a threshold the same way). One step
is then: ``|x|`` into a reused buffer, one comparison, ``nonzero`` (ascending positions), and an
exact top-k among the few survivors. Whenever the threshold keeps at least k entries the result
is *exactly* the top-k (every top-k entry is at or above it), so the approximation can only cost
time, never accuracy: when it keeps fewer than k, a fresh estimate from a random sample is
tried, and after that exact top-k, so the answer always has exactly k entries.

The next step's threshold is the magnitude that would have kept ``(1 + margin)·k`` entries this
step (read off the survivors), or, when fewer than that survived, the current one lowered by
the shortfall's share.
"""

from __future__ import annotations

import math
from typing import Any

import torch

#: Survivors wanted per step, as a multiple of k: the slack that absorbs step-to-step drift.
MARGIN = 0.25
#: More survivors than this multiple of k means the threshold is stale: re-estimate.
MAX_SURVIVORS = 8.0


class AdaptiveThreshold:
    """Exact-k top-k by magnitude through a threshold reused across calls.

    Args:
        numel: length of the vectors it will see (its two work buffers have this size).
        generator: draws the sample of a fresh estimate (the first call, and any call whose
            reused threshold kept fewer than k or too many).
        margin: target survivors are ``(1 + margin)·k``.
        sample_fraction: the fresh estimate's sample size, as a fraction of ``numel``
            (at least 256, and enough to hold about 100 survivors).

    The returned positions are int64 and ascending (the order ``nonzero`` gives), which the
    compact index coding of :mod:`flexsync.comm.sparse` relies on for small deltas.
    """

    def __init__(self, numel: int, generator: torch.Generator, *, margin: float = MARGIN,
                 sample_fraction: float = 0.01, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        if margin <= 0:
            raise ValueError(f"margin must be > 0, got {margin!r}")
        self.numel = numel
        self.generator = generator
        self.margin = margin
        self.sample_fraction = sample_fraction
        self.threshold: float | None = None
        self._mag = torch.empty(numel, device=device, dtype=dtype)
        self._mask = torch.empty(numel, device=device, dtype=torch.bool)
        self.stats = {"calls": 0, "estimates": 0, "exact_fallbacks": 0}

    def __call__(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Positions of the k largest magnitudes of the flat vector ``x`` (ascending)."""
        n = x.numel()
        if n != self.numel:
            raise ValueError(f"vector has {n} entries, the selector was built for {self.numel}")
        k = min(max(1, k), n)
        self.stats["calls"] += 1
        if 4 * k >= n:                          # survivors would be most of the vector
            return torch.topk(x.abs(), k, sorted=False).indices.sort().values
        mag = torch.abs(x, out=self._mag)
        target = math.ceil((1 + self.margin) * k)
        thr = self.threshold
        cand = None if thr is None else self._survivors(mag, thr)
        if cand is None or not k <= cand.numel() <= MAX_SURVIVORS * k:
            self.stats["estimates"] += 1
            thr = self._estimate(mag, target)
            cand = self._survivors(mag, thr)
            if cand.numel() < k:
                self.stats["exact_fallbacks"] += 1
                self.threshold = None
                return torch.topk(mag, k, sorted=False).indices.sort().values
        return self._trim(mag, cand, k, target, thr)

    def _survivors(self, mag: torch.Tensor, thr: float) -> torch.Tensor:
        torch.ge(mag, thr, out=self._mask)
        # the same positions; nonzero over a uint8 view is ~15 % faster than over bool on CPU
        return torch.nonzero(self._mask.view(torch.uint8), as_tuple=True)[0]

    def _estimate(self, mag: torch.Tensor, target: int) -> float:
        """The magnitude that ``target`` of ``numel`` entries exceed in a random sample,
        lowered a little (the sample's own k-th value is as often too high as too low)."""
        n = mag.numel()
        m = min(n, max(256, int(n * self.sample_fraction), 100 * n // target))
        sample = mag[torch.randint(n, (m,), generator=self.generator).to(mag.device)]
        kk = min(m, max(1, math.ceil(1.1 * target * m / n)))
        return float(torch.topk(sample, kk, sorted=False).values.min())

    def _trim(self, mag: torch.Tensor, cand: torch.Tensor, k: int, target: int,
              thr: float) -> torch.Tensor:
        """Exactly k of the survivors (the largest), ascending; sets the next threshold."""
        c = cand.numel()
        vals = mag[cand]
        if c < target:
            self.threshold = thr * (c / target) ** 0.5
        if c == k:
            return cand
        if c - k <= k:        # drop the c-k smallest: a mask keeps the ascending order
            low = torch.topk(vals, c - k, largest=False, sorted=True)
            if c >= target:   # the (c-target+1)-th smallest is among them (target > k)
                self.threshold = float(low.values[c - target])
            keep = torch.ones(c, dtype=torch.bool, device=cand.device)
            keep[low.indices] = False
            return cand[keep]
        if c >= target:     # the magnitude that keeps `target` survivors: next step's threshold
            self.threshold = float(torch.kthvalue(vals, c - target + 1).values)
        keep = torch.zeros(c, dtype=torch.bool, device=cand.device)   # a mask keeps the
        keep[torch.topk(vals, k, sorted=False).indices] = True        # order: no sort
        return cand[keep]

    def state_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        thr = state.get("threshold")
        self.threshold = None if thr is None else float(thr)
