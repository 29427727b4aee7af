"""AAM PettingZoo wrapper (design note §3.7 item 2)."""

import numpy as np
from pettingzoo.test import parallel_api_test

from swarmgames.fleet.config import AamConfig, NetworkConfig
from swarmgames.fleet.parallel import AamParallelEnv

CFG = AamConfig(steps=12, network=NetworkConfig(n_vertiports=4, side_km=8.0, n_depots=1),
                fleets=((1, 1, 0), (0, 1, 1)), max_requests=3)


def test_parallel_api():
    parallel_api_test(AamParallelEnv(CFG, seed=0), num_cycles=15)


def test_masks_state_render_and_determinism():
    def run():
        env = AamParallelEnv(CFG, render_mode="rgb_array")
        obs, _ = env.reset(seed=2)
        rng = np.random.default_rng(0)
        total = 0.0
        while env.agents:
            acts = {a: int(rng.choice(np.flatnonzero(obs[a]["action_mask"]))) for a in env.agents}
            obs, rew, _, _, info = env.step(acts)
            total += sum(rew.values())
            for a, i in info.items():
                assert i["executed"] == acts[a] or acts[a] < env.sim.M  # conflicts only
        assert env.state().ndim == 1
        img = env.render()
        assert img.ndim == 3 and img.shape[2] == 3
        return total, env.sim.trajectory_hash()

    assert run() == run()
