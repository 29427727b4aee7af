"""The MOO ratio solver and controller (docs/methods.md §1.4)."""

import numpy as np
import pytest

from flexsync.strategies.moo import (
    MOOController,
    default_candidates,
    gain_curve,
    pareto_front,
    solve_grid,
)

CANDS = default_candidates()
GAINS = [0.9, 0.75, 0.55, 0.35, 0.15]           # monotone: more kept, more gain


def comm_time(c):                                 # monotone: more kept, more time
    return 0.002 + 0.5 * c


def test_default_candidates_are_the_papers():
    assert CANDS == pytest.approx([0.1, 0.0333, 0.0111, 0.0037, 0.001], rel=0.01)


def test_solution_is_deterministic_within_bounds_and_on_the_pareto_set():
    c = solve_grid(CANDS, GAINS, comm_time, 0.001, 0.1)
    assert c == solve_grid(CANDS, GAINS, comm_time, 0.001, 0.1)
    assert 0.001 <= c <= 0.1
    cs = np.logspace(-3, -1, 200)
    f1 = np.array([comm_time(x) for x in cs])
    f2 = 1 / gain_curve(CANDS, GAINS)(cs)
    front = set(cs[pareto_front(f1, f2)].tolist())
    assert c in front


def test_a_heavier_time_weight_never_raises_the_ratio():
    ratios = [solve_grid(CANDS, GAINS, comm_time, 0.001, 0.1, (w, 1 - w))
              for w in np.linspace(0.05, 0.95, 19)]
    assert all(b <= a for a, b in zip(ratios, ratios[1:], strict=False))
    assert ratios[0] > ratios[-1]


def test_pareto_front_drops_dominated_points():
    f1 = np.array([1.0, 2.0, 3.0, 2.5])
    f2 = np.array([3.0, 2.0, 1.0, 2.5])
    assert pareto_front(f1, f2).tolist() == [0, 1, 2]


def test_warmup_decays_linearly_to_c_init():
    ctl = MOOController(warmup_steps=10, c_init=0.1)
    assert ctl.plan(0).ratio == 1.0 and ctl.plan(0).phase == "warmup"
    assert ctl.plan(5).ratio == pytest.approx(0.55)
    assert ctl.plan(10).phase == "run"


def test_the_default_warmup_is_a_fixed_fraction_of_the_step_budget():
    ctl = MOOController(c_init=0.1)                   # warmup_fraction 0.03
    assert ctl.plan(0, total_steps=300).phase == "warmup"
    assert ctl.warmup_steps == 9
    assert ctl.plan(9, total_steps=300).phase == "run"
    assert MOOController(c_init=0.1).plan(0).phase == "warmup"      # budget unknown: 100


def test_online_mode_solves_once_when_warmup_ends():
    """The online gain table fills during warm-up; the T1 solve must still run (it once
    did not, and the ratio stayed at c_init for the whole run under a fixed network)."""
    from flexsync.net.conditions import NetworkConditions

    net = NetworkConditions(1e-4, 2.5e6)
    ctl = MOOController(warmup_steps=5, candidates=CANDS)
    for step in range(8):
        plan = ctl.plan(step)
        ctl.observe(step, plan, 0.5, GAINS, net, comm_time)
    assert ctl.solves == 1
    assert ctl.ratio == solve_grid(CANDS, ctl.gains, comm_time, 0.001, 0.1)
    assert ctl.ratio < 0.1


def test_snapshot_exploration_visits_each_candidate_then_restores_and_solves():
    ctl = MOOController(warmup_steps=0, explore_steps=2, candidates=[0.1, 0.01], mode="snapshot")
    actions, plans = [], []
    for step in range(5):
        plan = ctl.plan(step)
        plans.append((plan.ratio, plan.phase, plan.take_snapshot))
        gain = 0.9 if plan.ratio == 0.1 else 0.3
        actions.append(ctl.observe(step, plan, gain, None, None, comm_time))
    assert plans[:4] == [(0.1, "explore", True), (0.1, "explore", False),
                         (0.01, "explore", False), (0.01, "explore", False)]
    assert actions[:4] == [None, "restore_fresh", None, "restore"]
    assert ctl.gains == [0.9, 0.3] and ctl.solves == 1
    assert plans[4][1] == "run" and plans[4][0] == ctl.ratio


def test_network_change_triggers_a_resolve_and_cooldown_limits_explorations():
    from flexsync.net.conditions import NetworkConditions

    ctl = MOOController(warmup_steps=0, candidates=CANDS, cooldown=50)
    fast, slow = NetworkConditions(1e-3, 1e9), NetworkConditions(1e-3, 1e6)
    for step in range(3):
        plan = ctl.plan(step)
        ctl.observe(step, plan, 0.5, GAINS, fast, comm_time)
    solves = ctl.solves
    plan = ctl.plan(3)
    ctl.observe(3, plan, 0.5, GAINS, slow, comm_time)
    assert ctl.solves == solves + 1
    # an erratic gain asks for exploration at most once per cooldown window
    starts = []
    for step in range(4, 104):
        plan = ctl.plan(step)
        before = ctl.last_explore
        ctl.observe(step, plan, 0.1 if step % 2 else 0.9, GAINS, slow, comm_time)
        if ctl.last_explore != before:
            starts.append(step)
    assert len(starts) >= 1 and all(b - a >= 50 for a, b in zip(starts, starts[1:], strict=False))


def test_nsga2_agrees_with_the_grid_when_pymoo_is_installed():
    pytest.importorskip("pymoo")
    from flexsync.strategies.moo import solve_nsga2

    c_grid = solve_grid(CANDS, GAINS, comm_time, 0.001, 0.1)
    c_ga = solve_nsga2(CANDS, GAINS, comm_time, 0.001, 0.1)
    assert c_ga == pytest.approx(c_grid, rel=0.25)


def test_online_probes_run_every_probe_every_steps_and_before_each_solve():
    ctl = MOOController(warmup_steps=15, probe_every=10, candidates=CANDS)
    probed = []
    for step in range(40):
        plan = ctl.plan(step)
        probe = ctl.probes(step)
        probed += [step] if probe else []
        ctl.observe(step, plan, 0.5, GAINS if probe else None, None, comm_time)
    assert probed == [0, 10, 14, 15, 20, 30] and ctl.solves == 1
    assert not MOOController(mode="snapshot", warmup_steps=0).probes(0)


def test_a_probe_after_d_steps_weighs_like_d_per_step_updates():
    ctl = MOOController(warmup_steps=100, candidates=[0.1, 0.01])
    ctl._online_update(0, [1.0, 1.0])
    ctl._online_update(5, [0.0, 0.0])
    assert ctl.gains == pytest.approx([0.9**5, 0.9**5])
