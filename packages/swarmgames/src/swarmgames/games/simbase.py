"""What the flocking and CoCo simulators share: the closed-loop ``run``, asking the controller
(with one clear error when there is none) and the trajectory hash of the determinism contract
(design note §2.4).  Subclasses define ``step``, ``stage_game`` and keep ``traj``."""

from __future__ import annotations

from typing import Any

import numpy as np

from swarmgames.core.rng import trajectory_hash
from swarmgames.games.controllers.base import Controller, Decision
from swarmgames.games.stage_game import StageGame


class StageSim:
    """Base of ``FlockSim`` and ``CocoSim``: a controller-driven stage-game simulator."""

    cfg: Any
    controller: Controller | None
    history: list[dict[str, float]]
    traj: list[np.ndarray]
    builder = "swarmgames.games.build"

    def step(self, labels: np.ndarray | None = None) -> dict[str, float]:
        raise NotImplementedError

    def stage_game(self) -> StageGame:
        raise NotImplementedError

    def run(self, steps: int | None = None) -> list[dict[str, float]]:
        """Run ``steps`` control steps (default ``cfg.steps``); returns the history."""
        for _ in range(self.cfg.steps if steps is None else steps):
            self.step()
        return self.history

    def controller_decision(self) -> tuple[StageGame | None, Decision]:
        """The stage game (only if the controller reads it) and the controller's decision."""
        if self.controller is None:
            raise ValueError(f"{type(self).__name__} has no controller: pass labels to step() "
                             f"or build the simulator with {self.builder}")
        game = self.stage_game() if self.controller.needs_game else None
        return game, self.controller.decide(self, game)

    def trajectory_hash(self) -> str:
        """SHA-256 of the rounded state trajectory (determinism contract, §2.4)."""
        return trajectory_hash({"traj": np.stack(self.traj)})
