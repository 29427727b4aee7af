"""Baselines: Lloyd centroids, Reynolds separation, greedy response (§4.4, §5.4)."""

import numpy as np

from swarmgames.core.kinematics import step_toward
from swarmgames.games.config import ReynoldsConfig
from swarmgames.games.controllers.greedy import greedy_profile
from swarmgames.games.controllers.lloyd import lloyd_targets
from swarmgames.games.controllers.relay import (
    connected_lloyd_step,
    relay_lattice_targets,
    triangular_lattice,
)
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


def test_connected_lloyd_step_never_stretches_a_tree_edge_past_its_limit():
    """Random swarms and goals: every spanning-tree edge ends within max(keep, its length)
    and no UAV moves farther than the speed limit."""
    rng = np.random.default_rng(3)
    for _ in range(50):
        pos = rng.uniform(0, 300, size=(7, 2))
        goal = rng.uniform(0, 300, size=(7, 2))
        tree = np.zeros((7, 7), dtype=bool)
        for k in range(1, 7):          # a random spanning tree
            j = int(rng.integers(k))
            tree[k, j] = tree[j, k] = True
        new = connected_lloyd_step(pos, goal, tree, max_step=10.0, keep_m=120.0)
        i, j = np.nonzero(np.triu(tree))
        before = np.linalg.norm(pos[i] - pos[j], axis=1)
        after = np.linalg.norm(new[i] - new[j], axis=1)
        assert (after <= np.maximum(120.0, before) + 1e-6).all()
        assert (np.linalg.norm(new - pos, axis=1) <= 10.0 + 1e-9).all()


def test_connected_lloyd_step_is_plain_lloyd_when_no_edge_binds():
    pos = np.array([[0.0, 0.0], [50.0, 0.0]])
    goal = np.array([[-3.0, 0.0], [53.0, 0.0]])
    tree = np.array([[False, True], [True, False]])
    np.testing.assert_allclose(connected_lloyd_step(pos, goal, tree, 10.0, 100.0), goal)
    # the same moves would stretch the edge to 56 m > 52 m: they are shortened
    new = connected_lloyd_step(pos, goal, tree, 10.0, 52.0)
    assert np.linalg.norm(new[0] - new[1]) <= 52.0 + 1e-9


def test_relay_lattice_is_connected_at_its_spacing_and_centred():
    pts = triangular_lattice(np.array([500.0, 500.0]), 100.0, 8)
    assert len(pts) == 8
    np.testing.assert_allclose(pts[0], [500.0, 500.0])
    d = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    assert d[np.triu_indices(8, 1)].min() >= 100.0 - 1e-6
    reach = d <= 100.0 + 1e-6        # lattice neighbours are within the spacing
    seen, todo = {0}, [0]
    while todo:
        k = todo.pop()
        for m in np.flatnonzero(reach[k]):
            if int(m) not in seen:
                seen.add(int(m))
                todo.append(int(m))
    assert seen == set(range(8))
    pos = pts[::-1] + 1.0             # UAVs next to the lattice points, in another order
    out = relay_lattice_targets(pos, np.array([500.0, 500.0]), 100.0, 1000.0)
    np.testing.assert_allclose(out, pts[::-1])
