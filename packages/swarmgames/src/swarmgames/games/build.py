"""Pair a simulator with the controller its config names (the only module that knows both).

``make_flock_sim(cfg, seed)`` / ``make_coco_sim(cfg, seed)`` are what the runner, the
comparison and the tests use; the PettingZoo wrappers build controller-less simulators and
pass the agents' labels to ``step``."""

from __future__ import annotations

from swarmgames.games.coco import CocoSim
from swarmgames.games.config import CocoConfig, FlockConfig
from swarmgames.games.controllers.coverage import coco_controller
from swarmgames.games.controllers.flocking import flock_controller
from swarmgames.games.flock import FlockSim


def make_flock_sim(cfg: FlockConfig, seed: int = 0) -> FlockSim:
    """A flocking simulator driven by ``cfg.controller``."""
    return FlockSim(cfg, seed, flock_controller(cfg))


def make_coco_sim(cfg: CocoConfig, seed: int = 0) -> CocoSim:
    """A CoCo simulator driven by ``cfg.controller`` / ``cfg.execution``."""
    return CocoSim(cfg, seed, coco_controller(cfg))
