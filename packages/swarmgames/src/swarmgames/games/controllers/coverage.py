"""CoCo controllers (§5.3, §5.4): mean-field VI on the cooperative stage game (``coco``,
executing the mode of q or a sample), exact centralised coordinate ascent on J
(``execution: sequential``) and the comm-unaware Lloyd/CVT baseline (``lloyd``).  They read
the simulator's ``p``, ``roi``, ``rng``, ``candidates()`` and ``objective()``."""

from __future__ import annotations

from typing import Any

import numpy as np

from swarmgames.games.config import CocoConfig
from swarmgames.games.controllers.base import Controller, Decision, WarmStartVI, solver_info
from swarmgames.games.controllers.lloyd import lloyd_targets
from swarmgames.games.solvers.config import SolverConfig
from swarmgames.games.stage_game import StageGame


class CocoVI(WarmStartVI):
    """Mean-field VI (warm-started from the previous stage's q) → waypoint labels: the mode
    of q, or a sample from it with ``sample``."""

    def __init__(self, solver: SolverConfig, sample: bool = False) -> None:
        super().__init__(solver)
        self.sample = sample

    def decide(self, sim: Any, game: StageGame | None) -> Decision:
        res = self.solve(game)
        if self.sample:
            pol = sim.rng["policy"]
            labels = np.array([pol.choice(sim.n_labels, p=row) for row in res.q])
        else:
            labels = res.profile
        targets = sim.candidates()[np.arange(sim.n), labels]
        return Decision(labels=labels, targets=targets, info=solver_info(res))


class SequentialAscent:
    """One UAV at a time moves to the candidate maximising the exact objective J given the
    others' current positions (centralised; J never decreases within a stage)."""

    needs_game = False

    def reset(self) -> None:
        """Stateless."""

    def decide(self, sim: Any, game: StageGame | None) -> Decision:
        cand = sim.candidates()
        pos = sim.p.copy()
        for i in range(sim.n):
            vals = []
            for c in cand[i]:
                trial = pos.copy()
                trial[i] = c
                vals.append(sim.objective(trial))
            vals = np.array(vals)
            best = int(np.argmax(vals))
            if vals[best] > vals[0] + 1e-12:  # label 0 is 'stay' (keeps J on ties)
                pos[i] = cand[i, best]
        return Decision(targets=pos)


class Lloyd:
    """Lloyd/CVT: move toward the weighted centroid of the own Voronoi cell of the ROI."""

    needs_game = False

    def reset(self) -> None:
        """Stateless."""

    def decide(self, sim: Any, game: StageGame | None) -> Decision:
        return Decision(targets=lloyd_targets(sim.p, sim.roi.points, sim.roi.weights))


def coco_controller(cfg: CocoConfig) -> Controller:
    """The controller named by ``cfg.controller`` / ``cfg.execution``."""
    if cfg.controller == "lloyd":
        return Lloyd()
    if cfg.execution == "sequential":
        return SequentialAscent()
    return CocoVI(cfg.solver, sample=cfg.execution == "sample")
