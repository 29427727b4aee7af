"""Baselines: Lloyd centroids, Reynolds separation, greedy response (§4.4, §5.4)."""

import numpy as np

from swarmgames.core.kinematics import step_toward
from swarmgames.games.config import ReynoldsConfig
from swarmgames.games.controllers.greedy import greedy_profile
from swarmgames.games.controllers.lloyd import lloyd_targets
from swarmgames.games.controllers.reynolds import reynolds_accel
from swarmgames.games.random_games import random_flock_game


def test_lloyd_targets_are_weighted_cell_centroids():
    pts = np.array([[0.0, 0], [1, 0], [10, 0], [12, 0]])
    w = np.array([1.0, 3.0, 1.0, 1.0])
    t = lloyd_targets(np.array([[0.0, 0.0], [11.0, 0.0]]), pts, w)
    np.testing.assert_allclose(t, [[0.75, 0.0], [11.0, 0.0]])
    moved = step_toward(np.zeros((1, 2)), np.array([[10.0, 0.0]]), 3.0)
    np.testing.assert_allclose(moved, [[3.0, 0.0]])


def test_reynolds_separation_pushes_apart_and_respects_limits():
    p = np.array([[0.0, 0.0], [2.0, 0.0]])
    v = np.zeros((2, 2))
    nbr = ~np.eye(2, dtype=bool)
    u = reynolds_accel(ReynoldsConfig(k_coh=0, k_ali=0, k_mig=0), p, v, v, nbr, 1.0)
    assert u[0, 0] < 0 < u[1, 0]
    assert np.abs(u).max() <= 1.0


def test_greedy_is_best_response_to_assumed_profile():
    rng = np.random.default_rng(0)
    g = random_flock_game(6, rng, spread=5.0)
    assumed = np.full(g.n, 4)
    prof = greedy_profile(g, assumed).profile
    vals = g.masked(g.local_payoffs(g.onehot(assumed)))
    assert np.array_equal(vals[np.arange(g.n), prof], vals.max(axis=1))
