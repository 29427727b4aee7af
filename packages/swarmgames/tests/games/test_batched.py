"""BatchedFlock (issue 22): copy b of the batch is FlockParallelEnv(cfg, seeds[b]) step for
step -- observations, rewards and states -- under frozen and per-step shadowing."""

import numpy as np
import pytest

from swarmgames.core.config import from_dict
from swarmgames.games.batched import BatchedFlock
from swarmgames.games.config import FlockConfig
from swarmgames.games.parallel import FlockParallelEnv

SCENARIOS = {
    "default": {"n_agents": 6, "steps": 12},
    "varying": {"n_agents": 9, "steps": 12, "goal": {"spread": 1.0},
                "channel": {"preset": "n3.0", "sigma_db": 4.0, "shadowing": "per_step"}},
    "point": {"n_agents": 5, "steps": 12, "goal": {"mode": "point", "point": [60.0, 30.0]},
              "payoff": {"w_pos": 0.01, "aggregate_scaling": "degree"}},
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_copy_equals_the_single_environment(name):
    cfg = from_dict(FlockConfig, SCENARIOS[name])
    seeds = [3, 0, 11]
    batch = BatchedFlock(cfg, seeds, max_nbrs=4, block=2)   # two blocks: 2 + 1 copies
    singles = [FlockParallelEnv(cfg, seed=s, max_nbrs=4) for s in seeds]
    obs_b = batch.reset()
    obs_s = [e.reset(seed=s)[0] for e, s in zip(singles, seeds, strict=True)]
    rng = np.random.default_rng(0)
    for step in range(cfg.steps):
        for b, o in enumerate(obs_s):
            for i, agent in enumerate(singles[b].possible_agents):
                for key, val in o[agent].items():
                    np.testing.assert_allclose(obs_b[key][b, i], val, atol=1e-5,
                                               err_msg=f"{key} b={b} i={i} step={step}")
        labels = rng.integers(0, batch.n_labels, size=(batch.B, batch.n))  # some infeasible
        obs_b, rew_b, trunc = batch.step(labels)
        obs_s = []
        for b, env in enumerate(singles):
            o, r, _, tr, _ = env.step({a: int(labels[b, i])
                                       for i, a in enumerate(env.possible_agents)})
            obs_s.append(o)
            np.testing.assert_allclose(rew_b[b], [r[a] for a in env.possible_agents],
                                       rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(batch.state()[b], env.state(), atol=1e-4)
            assert all(tr.values()) == trunc
        if trunc:
            break
    assert trunc


def test_out_of_scope_configs_and_bad_labels_are_refused():
    with pytest.raises(ValueError, match="horizon"):
        BatchedFlock(from_dict(FlockConfig, {"horizon": 2, "label_levels": 3}), [0])
    with pytest.raises(ValueError, match="routing"):
        BatchedFlock(from_dict(FlockConfig, {"comm": {"neighbourhood": "knn"}}), [0])
    batch = BatchedFlock(from_dict(FlockConfig, {"n_agents": 3}), [0, 1])
    with pytest.raises(ValueError, match="shape"):
        batch.step(np.zeros((3, 2), dtype=int))
