"""BatchedAam (issue 22): copy b of the batch is AamParallelEnv(cfg, seeds[b]) step for step --
observations, rewards, states, truncation and the episode metrics -- under every observation
topology, both conflict rules, a waiting penalty, and actions that are often masked or
contested (ties broken by each copy's own conflict stream)."""

import math

import numpy as np
import pytest

from swarmgames.core.config import from_dict
from swarmgames.fleet.batched import BatchedAam
from swarmgames.fleet.config import AamConfig
from swarmgames.fleet.parallel import AamParallelEnv

BASE = {"steps": 30, "network": {"n_vertiports": 4, "side_km": 8.0, "n_depots": 1},
        "fleets": [[2, 1, 1], [1, 2, 1]], "max_requests": 3,
        "demand": {"rate": 1.5, "patience": 6}}
SCENARIOS = {
    "comm_1hop": {},
    "comm_khop_price_wait": {"topology": "comm_khop", "obs_hops": 2, "conflict": "price",
                             "c_wait": 0.3, "reward_sharing": "individual"},
    "local_two_peaks": {"topology": "local",
                        "demand": {"rate": 1.5, "patience": 6, "profile": "two_peaks",
                                   "pattern": "hub"}},
    "full_grid": {"topology": "full", "network": {"n_vertiports": 4, "side_km": 8.0,
                                                  "n_depots": 1, "layout": "grid"}},
}


def _cfg(name: str) -> AamConfig:
    d = {**BASE, **SCENARIOS[name]}
    return from_dict(AamConfig, d)


def _actions(rng: np.random.Generator, masks: np.ndarray) -> np.ndarray:
    """Mostly feasible actions, biased to serve slot 0 (so vehicles contest requests), with
    some arbitrary (often masked or out-of-range) ones."""
    B, n, A = masks.shape
    out = np.empty((B, n), dtype=int)
    for b in range(B):
        for i in range(n):
            ok = np.flatnonzero(masks[b, i])
            u = rng.random()
            if u < 0.1:
                out[b, i] = int(rng.integers(-1, A + 1))
            elif u < 0.5 and masks[b, i, 0]:
                out[b, i] = 0
            else:
                out[b, i] = int(rng.choice(ok))
    return out


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_copy_equals_the_single_environment(name):
    cfg = _cfg(name)
    seeds = [4, 0, 17]
    batch = BatchedAam(cfg, seeds, max_obs_requests=5, block=2)    # two blocks: 2 + 1 copies
    singles = [AamParallelEnv(cfg, seed=s, max_obs_requests=5) for s in seeds]
    obs_b = batch.reset()
    obs_s = [e.reset(seed=s)[0] for e, s in zip(singles, seeds, strict=True)]
    rng = np.random.default_rng(1)
    conflicts = 0
    trunc = False
    for step in range(cfg.steps + 1):
        for b, o in enumerate(obs_s):
            for i, agent in enumerate(singles[b].possible_agents):
                for key, val in o[agent].items():
                    np.testing.assert_allclose(obs_b[key][b, i], val, rtol=1e-6, atol=1e-6,
                                               err_msg=f"{key} b={b} i={i} step={step}")
        if trunc:
            break
        acts = _actions(rng, batch.action_masks())
        obs_b, rew_b, trunc = batch.step(acts)
        obs_s = []
        for b, env in enumerate(singles):
            o, r, _, tr, info = env.step({a: int(acts[b, i])
                                          for i, a in enumerate(env.possible_agents)})
            obs_s.append(o)
            np.testing.assert_allclose(rew_b[b], [r[a] for a in env.possible_agents],
                                       rtol=1e-9, atol=1e-9, err_msg=f"step {step} b={b}")
            np.testing.assert_allclose(batch.state()[b], env.state(), rtol=1e-6, atol=1e-6)
            assert all(tr.values()) == trunc
    assert trunc
    met = batch.metrics()
    for b, env in enumerate(singles):
        m = env.sim.metrics()
        conflicts += m["conflict_rate"] > 0
        for key, val in met.items():
            if isinstance(m[key], float) and math.isnan(m[key]):
                assert math.isnan(val[b])
            else:
                assert val[b] == pytest.approx(m[key], rel=1e-9, abs=1e-9), key
        assert m["generated"] > 0 and m["violations"] > 0
    assert conflicts > 0   # the scenario exercised the conflict rule


def test_bad_shapes_and_empty_batches_are_refused():
    cfg = _cfg("comm_1hop")
    with pytest.raises(ValueError, match="seeds"):
        BatchedAam(cfg, [])
    batch = BatchedAam(cfg, [0, 1])
    with pytest.raises(ValueError, match="shape"):
        batch.step(np.zeros((3, batch.n), dtype=int))
