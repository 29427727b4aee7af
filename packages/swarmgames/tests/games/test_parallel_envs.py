"""PettingZoo ParallelEnv wrappers (§2.4): parallel_api_test, masks, rewards."""

import numpy as np
from pettingzoo.test import parallel_api_test

from swarmgames.games.config import CocoConfig, FlockConfig
from swarmgames.games.parallel import CocoParallelEnv, FlockParallelEnv


def test_flock_parallel_api():
    parallel_api_test(FlockParallelEnv(FlockConfig(n_agents=5, steps=15)), num_cycles=20)


def test_coco_parallel_api():
    parallel_api_test(CocoParallelEnv(CocoConfig(n_uavs=4, n_ues=3, steps=8)), num_cycles=10)


def test_rewards_are_stage_payoffs_and_masks_match_game():
    env = FlockParallelEnv(FlockConfig(n_agents=4, steps=5), max_nbrs=3)
    obs, _ = env.reset(seed=2)
    game = env.sim.stage_game()
    for i, a in enumerate(env.agents):
        assert np.array_equal(obs[a]["action_mask"], game.mask[i].astype(np.int8))
        assert env.observation_space(a).contains(obs[a])
    labels = {a: int(np.flatnonzero(obs[a]["action_mask"])[0]) for a in env.agents}
    _, rew, *_ = env.step(labels)
    prof = np.array([labels[a] for a in env.possible_agents])
    np.testing.assert_allclose([rew[a] for a in env.possible_agents], game.payoffs(prof))


def test_render_rgb_array():
    env = CocoParallelEnv(CocoConfig(n_uavs=3, n_ues=2, steps=2), render_mode="rgb_array")
    env.reset(seed=0)
    img = env.render()
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
