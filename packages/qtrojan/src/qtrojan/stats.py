"""Small statistics helpers for results over seeds: Student-t confidence intervals.

With k seeds the two-sided 95 % interval of the mean is ``mean ± t_{0.975, k-1} · s / sqrt(k)``
(``s`` the sample standard deviation, ``ddof = 1``); the t quantile comes from scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values and the half-width of its two-sided confidence interval."""

    mean: float
    half_width: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def format(self, pct: bool = False, signed: bool = False) -> str:
        """``0.912 ± 0.010`` (or ``+4.1 ± 1.0 %`` with ``pct``)."""
        sign = "+" if signed else ""
        if pct:
            return f"{100 * self.mean:{sign}.1f} ± {100 * self.half_width:.1f} %"
        return f"{self.mean:{sign}.3f} ± {self.half_width:.3f}"

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "half_width": self.half_width, "n": self.n}


def t_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Student-t interval of the mean; needs at least two values (one gives no spread)."""
    from scipy.stats import t

    vals = [float(v) for v in values]
    if len(vals) < 2:
        raise ValueError(f"a t interval needs at least 2 values, got {len(vals)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    k = len(vals)
    mean = sum(vals) / k
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (k - 1))
    q = float(t.ppf(0.5 + confidence / 2, k - 1))
    return Interval(mean, q * sd / math.sqrt(k), k)
