"""Network conditions: what α and bandwidth are in force at a given point of a run.

One small interface with several sources: fixed, a schedule over steps/epochs/modeled time
(including the AR-Topk paper's C1 and C2), and (later) estimates measured from the run's own
collectives. Every source is a pure function of (step, epoch, modeled time), all of which are
identical on every rank, so every rank sees the same conditions.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Protocol

from flexsync.errors import ConfigError
from flexsync.net.units import format_bandwidth, format_duration, parse_bandwidth, parse_duration


@dataclass(frozen=True)
class NetworkConditions:
    """α (seconds per message) and bandwidth (bytes per second); β = 1/bandwidth."""

    alpha: float
    bandwidth: float

    def __post_init__(self) -> None:
        if not (isinstance(self.alpha, int | float) and math.isfinite(self.alpha)
                and self.alpha >= 0):
            raise ValueError(f"NetworkConditions.alpha must be a finite number of seconds "
                             f">= 0, got {self.alpha!r}")
        if not (isinstance(self.bandwidth, int | float) and math.isfinite(self.bandwidth)
                and self.bandwidth > 0):
            raise ValueError(f"NetworkConditions.bandwidth must be a finite number of bytes/s "
                             f"> 0, got {self.bandwidth!r}")

    @classmethod
    def parse(cls, alpha: str | float, bandwidth: str | float) -> NetworkConditions:
        """Conditions from the units config files use: ``alpha`` a duration ("1ms", "250us",
        or seconds as a number), ``bandwidth`` a rate ("100mbit", "10Gbit", "25MB/s", or
        bytes/s as a number). ``NetworkConditions.parse(alpha="1ms", bandwidth="100mbit")``
        is α = 1e-3 s and 12.5e6 bytes/s."""
        try:
            a = parse_duration(alpha)
        except ValueError as e:
            raise ConfigError(f"NetworkConditions.alpha: {e}") from None
        try:
            bw = parse_bandwidth(bandwidth)
        except ValueError as e:
            raise ConfigError(f"NetworkConditions.bandwidth: {e}") from None
        return cls(a, bw)

    @property
    def beta(self) -> float:
        return 1.0 / self.bandwidth

    def __str__(self) -> str:
        return f"α={format_duration(self.alpha)}, {format_bandwidth(self.bandwidth)}"


class ConditionsSource(Protocol):
    def at(self, step: int, epoch: int, time_s: float) -> NetworkConditions: ...


class Stateless:
    """A conditions source that is a pure function of its configuration: nothing to
    checkpoint."""

    def state_dict(self) -> dict[str, float]:
        return {}

    def load_state_dict(self, state: dict[str, float]) -> None:
        if state:
            raise ValueError(f"this conditions source has no state, got keys {sorted(state)}")


@dataclass(frozen=True)
class FixedConditions(Stateless):
    conditions: NetworkConditions

    def at(self, step: int, epoch: int, time_s: float) -> NetworkConditions:
        return self.conditions


@dataclass(frozen=True)
class Phase:
    start: float               # first step / epoch / second of modeled time of this phase
    conditions: NetworkConditions


class ScheduleConditions(Stateless):
    """Piecewise-constant conditions. ``unit`` is "step", "epoch" or "time" (modeled seconds).
    The first phase must start at 0; each phase lasts until the next one starts."""

    UNITS = ("step", "epoch", "time")

    def __init__(self, phases: list[Phase], unit: str = "epoch") -> None:
        if unit not in self.UNITS:
            raise ValueError(f"schedule unit must be one of {self.UNITS}, got {unit!r}")
        if not phases:
            raise ValueError("a schedule needs at least one phase")
        starts = [p.start for p in phases]
        if starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:], strict=False)):
            raise ValueError(f"phase starts must begin at 0 and increase strictly, got {starts}")
        self.phases = list(phases)
        self.unit = unit
        self._starts = starts

    def at(self, step: int, epoch: int, time_s: float) -> NetworkConditions:
        x = {"step": step, "epoch": epoch, "time": time_s}[self.unit]
        return self.phases[bisect.bisect_right(self._starts, x) - 1].conditions

    def changes(self) -> list[float]:
        return self._starts[1:]


def _nc(alpha_ms: float, gbit: float) -> NetworkConditions:
    return NetworkConditions(alpha_ms * 1e-3, gbit * 1.25e8)


def preset(name: str, stretch: float = 1.0) -> ScheduleConditions:
    """The AR-Topk paper's schedules over epochs (docs/methods.md §1.2), optionally stretched
    (``stretch=0.25`` maps the 50-epoch C1 onto 12.5 epochs). "Moderate" in C2 is 16 ms / 10 Gbit,
    the documented decision for a value the paper leaves open."""
    if stretch <= 0:
        raise ValueError(f"stretch must be > 0, got {stretch}")
    table = {
        "C1": [(0, _nc(1, 25)), (12, _nc(1, 1)), (24, _nc(50, 1)), (36, _nc(50, 25))],
        "C2": [
            (0, _nc(1, 25)), (12, _nc(16, 10)), (20, _nc(50, 1)),
            (28, _nc(16, 10)), (36, _nc(1, 25)),
        ],
    }
    if name not in table:
        raise ValueError(f"unknown network preset {name!r}; expected one of {sorted(table)}")
    return ScheduleConditions([Phase(s * stretch, c) for s, c in table[name]], unit="epoch")
