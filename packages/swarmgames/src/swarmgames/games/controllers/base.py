"""What a controller hands back to a simulator each step, the shared "no solver" info, and the
warm-started VI solve that the flocking `vi` and the CoCo controllers share.

A controller is an object with ``needs_game`` (does it read the stage game?), ``reset()``
(forget per-episode state such as warm-start marginals) and ``decide(sim, game)``.  The
simulators call it and never import controller modules, so new controllers plug in without
touching a simulator (see ``games.build``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from swarmgames.games.solvers import mean_field_vi
from swarmgames.games.solvers.config import SolverConfig
from swarmgames.games.solvers.result import SolveResult
from swarmgames.games.stage_game import StageGame


def no_solver_info() -> dict[str, float]:
    """Info of a controller that exchanges no solver messages (rounds/converged undefined)."""
    return {"rounds": float("nan"), "converged": float("nan"), "messages": 0.0}


def solver_info(res: SolveResult) -> dict[str, float]:
    """Rounds, convergence flag and message count of an iterative solve."""
    return {"rounds": float(res.rounds), "converged": float(res.converged),
            "messages": float(res.messages)}


@dataclass
class Decision:
    """One control decision: stage-game ``labels`` (N,), or continuous ``accel`` (N, 2)
    (flocking), or waypoint ``targets`` (N, 2) (coverage), plus solver ``info``."""

    labels: np.ndarray | None = None
    accel: np.ndarray | None = None
    targets: np.ndarray | None = None
    info: dict[str, float] = field(default_factory=no_solver_info)


class Controller(Protocol):
    """The interface a simulator drives (``sim`` is the simulator itself, read-only)."""

    needs_game: bool

    def reset(self) -> None:
        """Forget per-episode state (called by the simulator's ``reset``)."""

    def decide(self, sim: Any, game: StageGame | None) -> Decision:
        """Choose this step's action for every agent."""


class WarmStartVI:
    """Mean-field VI / logit response on the stage game, warm-started from the previous
    stage's marginals q when ``solver.warm_start`` is on and the label set is unchanged.  The
    flocking ``vi`` controller and the CoCo controller both run this solve and differ only in
    what they do with the result."""

    needs_game = True

    def __init__(self, solver: SolverConfig) -> None:
        self.solver = solver
        self.q: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the warm-start marginals (new episode)."""
        self.q = None

    def solve(self, game: StageGame) -> SolveResult:
        """One VI solve from the kept q (or cold), keeping the new q for the next stage."""
        s = self.solver
        warm = s.warm_start and self.q is not None and self.q.shape == game.mask.shape
        res = mean_field_vi.solve(game, s.beta, self.q if warm else None, s.vi_schedule,
                                  s.damping, s.vi_tol, s.vi_k_max)
        self.q = res.q
        return res
