"""Flocking with obstacles (issue 22): the obstacle term keeps agents out of the discs (and
removing it does not), blocked links lose ``blockage_db``, the shipped obstacle scenario splits
and re-joins the communication graph with 0 collisions under both solvers, and a scenario
without obstacles is unchanged by the obstacle code (same trajectory as before it existed)."""

from pathlib import Path

import numpy as np
import pytest

from swarmgames.core.config import from_dict
from swarmgames.games.build import make_flock_sim
from swarmgames.games.config import FlockConfig
from swarmgames.games.flock import summarise_flock
from swarmgames.runner import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ON_ROUTE = ["flock.n_agents=8", "flock.steps=120", "flock.obstacles.count=3",
            "flock.obstacles.lateral_m=0", "flock.obstacles.along_m=[30,120]"]


def _run(overrides: list[str], seed: int = 0):
    cfg = load_config(CONFIGS / "flock_obstacles.yaml", overrides)[0].flock
    sim = make_flock_sim(cfg, seed)
    sim.run()
    return sim, summarise_flock(sim.history)


def test_obstacle_term_avoids_the_discs_that_the_route_crosses():
    _, with_term = _run(ON_ROUTE)
    _, without = _run(ON_ROUTE + ["flock.payoff.w_obstacle=0"])
    assert without["obstacle_collisions_total"] > 0      # the route really crosses them
    assert with_term["obstacle_collisions_total"] == 0
    assert with_term["collisions_total"] == 0


def test_blocked_links_lose_the_blockage_loss():
    cfg = load_config(CONFIGS / "flock_obstacles.yaml",
                      ON_ROUTE + ["flock.channel.sigma_db=0"])[0].flock
    sim = make_flock_sim(cfg, 0)
    sim.obstacles.centres[:] = sim.p.mean(axis=0)        # one disc in the middle of the swarm
    sim.obstacles.radii[:] = 4.0
    adj, rx = sim._links()
    blocked = sim.obstacles.blocked(sim.p)
    assert blocked.any() and (~blocked & ~np.eye(sim.n, dtype=bool)).any()
    free_rx = sim.channel.pairwise_rx(sim.p)
    off = ~np.eye(sim.n, dtype=bool)
    np.testing.assert_allclose(rx[off], (free_rx - 20.0 * blocked)[off])


def test_obstacle_scenario_breaks_and_reforms_links_without_collisions():
    for pairwise in ("exact", "virtual"):
        # seed 10: a validation seed of the weight choice on which the graph splits
        sim, s = _run(["flock.n_agents=32", f"flock.solver.pairwise={pairwise}"], seed=10)
        conn = np.array([h["connected"] for h in sim.history])
        assert s["collisions_total"] == 0 and s["obstacle_collisions_total"] == 0
        assert 0 < conn.mean() < 1 and np.abs(np.diff(conn)).sum() >= 2   # splits, re-joins
        l2 = np.array([h["lambda2"] for h in sim.history])
        assert l2.min() == 0 and l2.max() > 5


@pytest.mark.slow
def test_tuned_safety_weights_remove_the_squeeze_collisions():
    """At the default weights (separation 0.8, obstacle 2.0) the obstacle term out-pulls the
    separation hinge and agents are squeezed together along a disc, and pushed by their
    neighbours into one (validation seed 10, N = 100, as measured by
    benchmarks/flock_collision_causes.py); the scenario's weights (3.2, 4.0) remove both."""
    n100 = ["flock.n_agents=100", "flock.solver.pairwise=virtual", "flock.certify=false"]
    _, old = _run(n100 + ["flock.payoff.w_separation=0.8", "flock.payoff.w_obstacle=2.0"],
                  seed=10)
    assert old["collisions_total"] > 0 and old["obstacle_collisions_total"] > 0
    _, new = _run(n100, seed=10)
    assert new["collisions_total"] == 0 and new["obstacle_collisions_total"] == 0
    assert new["min_distance"] > 1.5 * 3.0


# trajectory hashes of the code before obstacles existed (commit 81e5b43), seed 2, 15 steps
BEFORE = {
    "default_n6": ({"n_agents": 6, "steps": 15},
                   "e65b011ba6cf01613ab546308933191ed7e70495505793794f1a554333842591"),
    "varying_n9": ({"n_agents": 9, "steps": 15, "goal": {"spread": 1.0},
                    "channel": {"preset": "n3.0", "sigma_db": 4.0, "shadowing": "per_step"}},
                   "fe8699cb843dd9ae012da701e9cb9baed25a08cfae268872865b9f814bde12ae"),
}


def test_no_obstacles_leaves_the_trajectory_unchanged():
    for raw, digest in BEFORE.values():
        sim = make_flock_sim(from_dict(FlockConfig, raw), 2)
        sim.run()
        assert len(sim.obstacles) == 0 and "obstacle_collisions" not in sim.history[-1]
        assert sim.trajectory_hash() == digest
