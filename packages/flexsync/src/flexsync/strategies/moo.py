"""Compression ratio chosen by multi-objective optimisation (docs/methods.md §1.4).

Two objectives over the keep fraction c ∈ [c_low, c_high]: the communication time of one
step (analytic, from the α-β model under the current network) and 1/gain(c) (statistical
inefficiency, measured). The Pareto front is found on a dense log grid, each objective is
normalised to [0, 1] over the front (ideal = min, nadir = max), and the point minimising the
weighted augmented scalarising function max(w_t·F̂1, w_g·F̂2) is chosen. NSGA-II (pymoo) is
available as an optional fidelity solver.

:class:`MOOController` runs the three phases: warm-up (c decays linearly from 1 to c_init),
candidate exploration (``snapshot``: train a few steps per candidate from a snapshot of model,
optimizer and residual, then restore exactly; ``online``: estimate every candidate's gain from
the current error-fed gradient at no extra training cost), and solving, triggered when the
network conditions change (T3), after the first exploration (T1), and optionally after a
gain-change exploration (T2, with a cooldown against thrashing). All inputs are agreed across
ranks, so every rank computes the same ratio.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator
from scipy.interpolate import PchipInterpolator

from flexsync.net.conditions import NetworkConditions
from flexsync.strategies.options import Options
from flexsync.strategies.smoothing import WindowedEWMA


def default_candidates(c_high: float = 0.1, c_low: float = 0.001, factor: float = 3.0
                       ) -> list[float]:
    """c_high, c_high/3, … ending at c_low (the paper's {0.1, 0.033, 0.011, 0.004, 0.001})."""
    steps = max(1, round(math.log(c_high / c_low) / math.log(factor)))
    return [c_high / factor**j for j in range(steps)] + [c_low]


def gain_curve(candidates: Sequence[float], gains: Sequence[float]) -> Callable[[np.ndarray],
                                                                                np.ndarray]:
    """Monotone (PCHIP) interpolation of gain in log10 c through the measured candidates and
    the anchor gain(1) = 1, clamped to [1e-6, 1]."""
    pts = sorted({float(c): float(g) for c, g in zip(candidates, gains, strict=True)}.items())
    if pts[-1][0] < 1.0:
        pts.append((1.0, 1.0))
    xs = np.log10([p[0] for p in pts])
    ys = np.clip([p[1] for p in pts], 1e-6, 1.0)
    if len(xs) == 1:
        return lambda c: np.full_like(np.asarray(c, float), ys[0])
    f = PchipInterpolator(xs, ys, extrapolate=True)
    return lambda c: np.clip(f(np.log10(c)), 1e-6, 1.0)


def pareto_front(f1: np.ndarray, f2: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated points (both objectives minimised)."""
    order = np.lexsort((f2, f1))
    keep, best2 = [], math.inf
    for i in order:
        if f2[i] < best2:
            keep.append(i)
            best2 = f2[i]
    return np.array(sorted(keep))


def asf_select(f1: np.ndarray, f2: np.ndarray, weights: tuple[float, float]) -> int:
    """Index minimising max(w1·F̂1, w2·F̂2) with ideal/nadir normalisation; ties go to the
    first index."""
    def norm(f: np.ndarray) -> np.ndarray:
        span = f.max() - f.min()
        return np.zeros_like(f) if span == 0 else (f - f.min()) / span
    score = np.maximum(weights[0] * norm(f1), weights[1] * norm(f2))
    return int(np.argmin(score))


def solve_grid(candidates: Sequence[float], gains: Sequence[float],
               comm_time: Callable[[float], float], c_low: float, c_high: float,
               weights: tuple[float, float] = (0.6, 0.4), points: int = 200) -> float:
    """The default solver: exact F1 and interpolated F2 on a log grid; deterministic."""
    cs = np.logspace(math.log10(c_low), math.log10(c_high), points)
    f1 = np.array([comm_time(float(c)) for c in cs])
    f2 = 1.0 / gain_curve(candidates, gains)(cs)
    front = pareto_front(f1, f2)
    pick = front[asf_select(f1[front], f2[front], weights)]
    return float(cs[pick])


def solve_nsga2(candidates: Sequence[float], gains: Sequence[float],
                comm_time: Callable[[float], float], c_low: float, c_high: float,
                weights: tuple[float, float] = (0.6, 0.4), seed: int = 1) -> float:
    """The paper's solver: NSGA-II (population 40, 10 offspring, SBX p=0.9 η=15, polynomial
    mutation η=20, 40 generations) on the same objectives; needs ``pip install pymoo``."""
    try:
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.core.problem import ElementwiseProblem
        from pymoo.operators.crossover.sbx import SBX
        from pymoo.operators.mutation.pm import PM
        from pymoo.optimize import minimize
    except ImportError as e:
        raise RuntimeError("solver 'nsga2' needs pymoo: pip install 'flexsync[moo]'") from e
    curve = gain_curve(candidates, gains)

    class Problem(ElementwiseProblem):
        def __init__(self) -> None:
            super().__init__(n_var=1, n_obj=2, xl=np.array([c_low]), xu=np.array([c_high]))

        def _evaluate(self, x, out, *args, **kwargs):
            c = float(x[0])
            out["F"] = [comm_time(c), 1.0 / float(curve(np.array([c]))[0])]

    algo = NSGA2(pop_size=40, n_offsprings=10, crossover=SBX(prob=0.9, eta=15),
                 mutation=PM(eta=20), eliminate_duplicates=True)
    res = minimize(Problem(), algo, ("n_gen", 40), seed=seed, verbose=False)
    X, F = np.atleast_2d(res.X), np.atleast_2d(res.F)
    return float(X[asf_select(F[:, 0], F[:, 1], weights), 0])


@dataclass
class Plan:
    """What the controller wants for the coming step."""

    ratio: float
    phase: str                       # warmup | explore | run
    take_snapshot: bool = False


class MOOOptions(Options):
    """The MOO ratio controller's options (``ratio: moo``; docs/methods.md, flexible
    communication)."""

    c_low: float = Field(0.001, gt=0, le=1)
    c_high: float = Field(0.1, gt=0, le=1)
    c_init: float = Field(0.1, gt=0, le=1)
    candidates: list[float] | None = None
    warmup_steps: int | None = Field(
        None, ge=0, description="steps of the 1 → c_init ramp; null: warmup_fraction of the "
        "run's step budget (100 when the budget is unknown)")
    warmup_fraction: float = Field(0.03, ge=0, le=1)
    explore_steps: int = Field(10, ge=1)
    mode: Literal["online", "snapshot"] = "online"
    probe_every: int = Field(10, ge=1, description="online mode: refresh the candidates' "
                             "gains every this many steps (and before every solve)")
    weights: tuple[float, float] = (0.6, 0.4)
    gain_change_threshold: float = Field(0.1, gt=0)
    gain_window: int = Field(5, ge=1)
    gain_smoothing: float = Field(0.01, ge=0, lt=1)
    cooldown: int = Field(200, ge=0)
    moo_on_gain_change: bool = False
    solver: Literal["grid", "nsga2"] = "grid"

    @model_validator(mode="after")
    def _bounds(self) -> MOOOptions:
        if self.c_low >= self.c_high:
            raise ValueError(f"c_low ({self.c_low}) must be below c_high ({self.c_high})")
        return self


class MOOController:
    """Chooses the keep fraction each step; see the module docstring."""

    def __init__(self, **options: Any) -> None:
        o = MOOOptions.parse("moo", options)
        c_low, c_high, candidates = o.c_low, o.c_high, o.candidates
        self.c_low, self.c_high, self.c_init = c_low, c_high, o.c_init
        self.candidates = list(candidates) if candidates else default_candidates(c_high, c_low)
        self.warmup_steps = o.warmup_steps
        self.warmup_fraction = o.warmup_fraction
        self.explore_steps = o.explore_steps
        self.mode = o.mode
        self.probe_every = o.probe_every
        self.weights = tuple(o.weights)
        self.threshold = o.gain_change_threshold
        self.cooldown = o.cooldown
        self.moo_on_gain_change = o.moo_on_gain_change
        self.solver = o.solver
        self.ratio = o.c_init
        self.gains: list[float] | None = None          # the table, one gain per candidate
        self.last_conditions: NetworkConditions | None = None
        self.change = WindowedEWMA(o.gain_window, o.gain_smoothing)
        self.prev_gain: float | None = None
        self.last_explore = -10**9
        self.last_probe = 0
        self.solves = 0
        self._queue: list[int] = []          # snapshot exploration: candidate per step
        self._measured: dict[int, list[float]] = {}
        self._pending_solve = False

    # -- per step ------------------------------------------------------------------------
    def plan(self, step: int, total_steps: int | None = None) -> Plan:
        if self.warmup_steps is None:        # fixed at the first step, then checkpointed
            self.warmup_steps = (100 if total_steps is None
                                 else round(self.warmup_fraction * total_steps))
        if step < self.warmup_steps:
            frac = step / max(1, self.warmup_steps)
            return Plan(1.0 + (self.c_init - 1.0) * frac, "warmup")
        if (step == self.warmup_steps and self.solves == 0 and not self._queue
                and not self._pending_solve):
            self._start_exploration(step)        # T1 (online mode has gains from warm-up)
        if self._queue:
            first = len(self._queue) == len(self.candidates) * self.explore_steps
            return Plan(self.candidates[self._queue[0]], "explore", take_snapshot=first)
        return Plan(self.ratio, "run")

    def probes(self, step: int) -> bool:
        """Whether this step measures the candidates' gains (online mode): every
        ``probe_every`` steps, the last warm-up step and whenever a solve is pending. A
        pure function of the step and agreed state, so every rank probes on the same steps;
        one probe costs a top-k of the largest candidate (10 % of the gradient), which at
        every step was a quarter of a small model's compute."""
        if self.mode != "online":
            return False
        warm = self.warmup_steps
        return (step % self.probe_every == 0 or self._pending_solve
                or (warm is not None and step in (warm - 1, warm)))

    def observe(self, step: int, plan: Plan, gain: float, candidate_gains: Sequence[float] | None,
                conditions: NetworkConditions | None, comm_time: Callable[[float], float]
                ) -> str | None:
        """Feed the agreed step results; returns "restore_fresh" (restore the snapshot with
        a zero residual: next candidate), "restore" (restore everything: exploration over)
        or None."""
        action = None
        if plan.phase == "explore":
            j = self._queue.pop(0)
            self._measured.setdefault(j, []).append(gain)
            if not self._queue:
                self.gains = [float(np.mean(self._measured[i]))
                              for i in range(len(self.candidates))]
                self._measured = {}
                action = "restore"
                if self._pending_solve:
                    self._solve(comm_time)
            elif self._queue[0] != j:
                action = "restore_fresh"
            return action
        if candidate_gains is not None:
            self._online_update(step, candidate_gains)
        if plan.phase == "warmup":
            self.last_conditions = conditions
            return None
        if self.mode == "online" and self._pending_solve and self.gains is not None:
            self._solve(comm_time)                       # T1 in online mode
        # T2: a large smoothed relative change of the gain re-runs exploration.
        if self.prev_gain is not None and self.prev_gain > 0:
            smoothed = self.change.update(abs(gain - self.prev_gain) / self.prev_gain)
            if (smoothed is not None and smoothed >= self.threshold
                    and step - self.last_explore >= self.cooldown):
                self._start_exploration(step + 1, solve=self.moo_on_gain_change)
        self.prev_gain = gain
        # T3: the network changed: re-solve with the current gain table.
        if conditions != self.last_conditions:
            self.last_conditions = conditions
            if self.gains is not None and not self._queue:
                self._solve(comm_time)
        return None

    # -- internals -----------------------------------------------------------------------
    def _start_exploration(self, step: int, solve: bool = True) -> None:
        self.last_explore = step
        self._pending_solve = solve
        if self.mode == "snapshot":
            self._queue = [j for j in range(len(self.candidates))
                           for _ in range(self.explore_steps)]

    def _online_update(self, step: int, cand: Sequence[float]) -> None:
        """EWMA of the probed gains with factor 0.1 per step: a probe after d steps weighs
        1 − 0.9^d, as if every step in between had seen the same gains."""
        if self.gains is None:
            self.gains = list(cand)
        else:
            a = 1.0 - 0.9 ** max(1, step - self.last_probe)
            self.gains = [a * g + (1 - a) * old for g, old in zip(cand, self.gains, strict=True)]
        self.last_probe = step

    def _solve(self, comm_time: Callable[[float], float]) -> None:
        solve = solve_grid if self.solver == "grid" else solve_nsga2
        self.ratio = solve(self.candidates, self.gains, comm_time, self.c_low, self.c_high,
                           self.weights)
        self.solves += 1
        self._pending_solve = False

    def state_dict(self) -> dict:
        out = {k: v for k, v in vars(self).items() if k not in ("change", "last_conditions")}
        c = self.last_conditions
        out["last_conditions"] = None if c is None else (c.alpha, c.bandwidth)
        out["measured"] = {int(k): list(v) for k, v in self._measured.items()}
        return out | {"change": self.change.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        self.change.load_state_dict(state.pop("change"))
        c = state.pop("last_conditions")
        self.last_conditions = None if c is None else NetworkConditions(*c)
        self._measured = {int(k): list(v) for k, v in state.pop("measured").items()}
        state.pop("_measured", None)
        vars(self).update(state)
