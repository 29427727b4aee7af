"""Flocking controllers (§4.3, §4.4): best response to the virtual mean neighbour (``game``),
mean-field logit response (``vi``, the ICRA-21 controller), one independent best response
(``greedy``) and rule-based Reynolds flocking (``reynolds``).  Each reads the simulator's
current state (``p``, ``v``, ``nbr``, ``labels``, ``rng``, ``zero``, ``desired_velocity()``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from swarmgames.games.config import FlockConfig, ReynoldsConfig
from swarmgames.games.controllers.base import Controller, Decision, WarmStartVI, solver_info
from swarmgames.games.controllers.greedy import greedy_profile
from swarmgames.games.controllers.reynolds import reynolds_accel
from swarmgames.games.solvers import mean_neighbor
from swarmgames.games.solvers.config import SolverConfig
from swarmgames.games.stage_game import StageGame


class MeanNeighbourBR:
    """Simultaneous best response to the virtual mean neighbour with inertia (``game``).

    Warm start: last stage's executed labels (only meaningful with ``horizon == 1``; label
    sequences of a longer horizon restart from the unary argmax)."""

    needs_game = True

    def __init__(self, solver: SolverConfig, horizon: int = 1) -> None:
        self.solver = solver
        self.horizon = horizon

    def reset(self) -> None:
        """Stateless: the warm start is the simulator's last executed profile."""

    def decide(self, sim: Any, game: StageGame | None) -> Decision:
        s = self.solver
        if s.warm_start and self.horizon == 1:
            init = sim.labels
        else:
            init = np.argmax(game.masked(game.unary), axis=1)
        res = mean_neighbor.solve(game, init, sim.rng["policy"], s.inertia, s.k_max,
                                  s.pairwise, s.switch_tol)
        return Decision(labels=res.profile, info=solver_info(res))


class MeanFieldVI(WarmStartVI):
    """Mean-field VI / logit response; executes the mode of q, warm-started from last q."""

    def decide(self, sim: Any, game: StageGame | None) -> Decision:
        res = self.solve(game)
        return Decision(labels=res.profile, info=solver_info(res))


class GreedyResponse:
    """One best response per agent, neighbours assumed at constant velocity (no rounds)."""

    needs_game = True

    def reset(self) -> None:
        """Stateless."""

    def decide(self, sim: Any, game: StageGame | None) -> Decision:
        assumed = np.full(sim.n, sim.zero, dtype=int)
        return Decision(labels=greedy_profile(game, assumed).profile)


class Reynolds:
    """Rule-based flocking: continuous accelerations, no stage game."""

    needs_game = False

    def __init__(self, gains: ReynoldsConfig, u_max: float) -> None:
        self.gains = gains
        self.u_max = u_max

    def reset(self) -> None:
        """Stateless."""

    def decide(self, sim: Any, game: StageGame | None) -> Decision:
        return Decision(accel=reynolds_accel(self.gains, sim.p, sim.v, sim.desired_velocity(),
                                             sim.nbr, self.u_max))


def flock_controller(cfg: FlockConfig) -> Controller:
    """The controller named by ``cfg.controller``."""
    if cfg.controller == "reynolds":
        return Reynolds(cfg.reynolds, cfg.u_max)
    if cfg.controller == "greedy":
        return GreedyResponse()
    if cfg.controller == "vi":
        return MeanFieldVI(cfg.solver)
    return MeanNeighbourBR(cfg.solver, cfg.horizon)
