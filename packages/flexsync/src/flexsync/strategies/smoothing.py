"""Smoothing helpers for noisy per-step signals (docs/methods.md §0.7).

* :class:`WindowedEWMA` — the authors' windowed form: over the last W values,
  Σ_{j=1..W} (1−a)^j · x_{t−j+1} / Σ_{j=1..W} (1−a)^j (newest weighted (1−a), oldest (1−a)^W).
  It is *undefined* (``None``) until W values exist; callers must handle that (the authors'
  code returns 0.0 there and then divides by it).
* :class:`EWMA` — the standard recursion m ← a·x + (1−a)·m, undefined before the first value.

Both carry their state in ``state_dict`` so a strategy using them can be checkpointed.
"""

from __future__ import annotations

from collections import deque
from typing import Any


class WindowedEWMA:
    def __init__(self, window: int, smoothing: float) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.window = window
        self.smoothing = smoothing
        self._values: deque[float] = deque(maxlen=window)
        # weights[j-1] = (1-a)^j for j = 1..W, newest first
        self._weights = [(1.0 - smoothing) ** j for j in range(1, window + 1)]
        self._norm = sum(self._weights)

    @property
    def full(self) -> bool:
        return len(self._values) == self.window

    def update(self, x: float) -> float | None:
        """Add ``x``; return the smoothed value, or None while the window is not yet full."""
        self._values.append(float(x))
        return self.value

    @property
    def value(self) -> float | None:
        if not self.full:
            return None
        newest_first = reversed(self._values)
        return sum(w * v for w, v in zip(self._weights, newest_first, strict=True)) / self._norm

    def state_dict(self) -> dict[str, Any]:
        return {"values": list(self._values)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._values = deque((float(v) for v in state["values"]), maxlen=self.window)


class EWMA:
    def __init__(self, smoothing: float) -> None:
        if not 0 < smoothing <= 1:
            raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
        self.smoothing = smoothing
        self.value: float | None = None

    def update(self, x: float) -> float:
        a = self.smoothing
        self.value = float(x) if self.value is None else a * float(x) + (1 - a) * self.value
        return self.value

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value = state["value"]
