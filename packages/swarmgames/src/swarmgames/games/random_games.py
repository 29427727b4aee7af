"""Seeded random stage-game instances for tests, oracles and benchmarks."""

from __future__ import annotations

import numpy as np

from swarmgames.core.channel import Channel, ChannelConfig
from swarmgames.core.commgraph import disk_neighbours
from swarmgames.core.kinematics import DoubleIntegrator, acceleration_labels
from swarmgames.games.payoffs_coverage import (
    CoverageWeights,
    RoiConfig,
    coverage_stage_game,
    fit_roi,
)
from swarmgames.games.payoffs_flocking import (
    FlockPayoffConfig,
    agent_multipliers,
    flock_stage_game,
)
from swarmgames.games.stage_game import StageGame


def random_connected_graph(n: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """Symmetric Erdős–Rényi graph plus a random spanning path (so it is connected)."""
    a = rng.random((n, n)) < p
    a = np.triu(a, 1)
    perm = rng.permutation(n)
    a[perm[:-1], perm[1:]] = True
    a = a | a.T
    np.fill_diagonal(a, False)
    return a


def random_flock_game(n: int, rng: np.random.Generator, levels: int = 3,
                      heterogeneity: float = 0.0, spread: float = 12.0,
                      nbr: np.ndarray | None = None,
                      payoff: FlockPayoffConfig | None = None) -> StageGame:
    """A flocking stage game at a random state (neighbourhood: disk of 40 m unless given)."""
    cfg = payoff or FlockPayoffConfig(heterogeneity=heterogeneity, aggregate_scaling="degree")
    dyn = DoubleIntegrator(dt=0.5, u_max=1.0, v_max=5.0)
    p = rng.uniform(0, spread * np.sqrt(n), size=(n, 2))
    v = rng.uniform(-2, 2, size=(n, 2))
    v_des = np.tile(rng.uniform(-3, 3, size=2), (n, 1))
    if nbr is None:
        nbr = disk_neighbours(p, 40.0)
    seqs = acceleration_labels(1.0, levels)[:, None, :]
    mult = agent_multipliers(n, cfg.heterogeneity, rng)
    return flock_stage_game(cfg, dyn, p, v, v_des, nbr, seqs, mult)


def random_coverage_game(n: int, rng: np.random.Generator, n_labels: int = 9,
                         area: float = 600.0, n_ue: int = 4,
                         weights: CoverageWeights | None = None) -> StageGame:
    """A CoCo stage game with UAVs and UEs placed at random (complete neighbourhood)."""
    ch = Channel(ChannelConfig(altitude_m=30.0))
    ues = rng.uniform(0.2 * area, 0.8 * area, size=(n_ue, 2))
    roi = fit_roi(RoiConfig(grid=12), ues, area)
    pos = rng.uniform(0.3 * area, 0.7 * area, size=(n, 2))
    ang = 2 * np.pi * np.arange(n_labels - 1) / max(n_labels - 1, 1)
    ring = np.concatenate([np.zeros((1, 2)), 40.0 * np.stack([np.cos(ang), np.sin(ang)], 1)])
    cand = pos[:, None, :] + ring[None]
    nbr = ~np.eye(n, dtype=bool)
    return coverage_stage_game(weights or CoverageWeights(), ch, cand, pos, roi, nbr)
