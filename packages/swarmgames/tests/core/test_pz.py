"""Shared PettingZoo plumbing (core.pz): deterministic infos, seeding of unseeded resets,
max_cycles, human rendering without a GUI, and one-line errors for bad arguments."""

import math

import matplotlib
import numpy as np
import pytest

from swarmgames.core.pz import deterministic_info
from swarmgames.fleet import aam_v1
from swarmgames.fleet.config import AamConfig, NetworkConfig
from swarmgames.games import flock_v1
from swarmgames.games.config import FlockConfig

FLOCK = FlockConfig(n_agents=3, steps=6)
AAM = AamConfig(steps=10, network=NetworkConfig(n_vertiports=4, side_km=8.0, n_depots=1),
                fleets=((1, 1, 0),), max_requests=3)


def test_deterministic_info_drops_timings_and_nan_unless_asked():
    m = {"a": 1.0, "rounds": float("nan"), "solve_ms": 3.2, "n": 4}
    assert deterministic_info(m, ("solve_ms",)) == {"a": 1.0, "n": 4}
    assert deterministic_info(m, ("solve_ms",), include_timings=True) == {
        "a": 1.0, "solve_ms": 3.2, "n": 4}


def test_timings_reach_infos_only_behind_the_flag():
    for flag in (False, True):
        env = flock_v1.parallel_env(cfg=FLOCK, info_timings=flag)
        env.reset(seed=0)
        _, _, _, _, infos = env.step({a: 0 for a in env.agents})
        info = infos["uav_0"]["metrics"]
        assert ("solve_ms_per_agent" in info) is flag
        assert all(not (isinstance(v, float) and math.isnan(v)) for v in info.values())


@pytest.mark.parametrize("mod,cfg", [(flock_v1, FLOCK), (aam_v1, AAM)], ids=["flock", "aam"])
def test_unseeded_reset_starts_a_new_episode_reproducibly(mod, cfg):
    def states(env):
        env.reset(seed=5)
        out = [env.state()]
        for _ in range(3):
            env.reset()
            out.append(env.state())
        return out

    a = states(mod.parallel_env(cfg=cfg))
    b = states(mod.parallel_env(cfg=cfg))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)   # the sequence replays after reset(seed=5)
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[1], a[2])


def test_aam_honours_max_cycles():
    env = aam_v1.parallel_env(cfg=AAM, max_cycles=3)
    env.reset(seed=1)
    n = 0
    while env.agents:
        _, _, _, trunc, _ = env.step({a: env.sim.wait_action for a in env.agents})
        n += 1
    assert n == 3 and all(trunc.values()) and env.sim.t == 3


def test_human_render_without_gui_keeps_the_frame_and_returns_none():
    env = flock_v1.parallel_env(cfg=FLOCK, render_mode="human")
    env.reset(seed=0)
    assert env.render() is None
    if matplotlib.get_backend().lower() == "agg":
        frame = env._window.last_frame
        assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8
    env.close()
    assert env._window is None


@pytest.mark.parametrize("kw,msg", [({"render_mode": "ansi"}, "render_mode"),
                                    ({"max_cycles": 0}, "max_cycles"),
                                    ({"max_cycles": 2.5}, "max_cycles")])
def test_bad_arguments_fail_with_one_line(kw, msg):
    with pytest.raises(ValueError, match=msg) as e:
        flock_v1.parallel_env(cfg=FLOCK, **kw)
    assert "\n" not in str(e.value)
