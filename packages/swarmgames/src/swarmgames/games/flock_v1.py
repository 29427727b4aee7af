"""PettingZoo entry point for graphical-game flocking, version 1 (``swarmgames_flock_v1``):
``from swarmgames.games import flock_v1; env = flock_v1.env()`` (AEC) or
``flock_v1.parallel_env(cfg=FlockConfig(...), seed=0, max_cycles=100, render_mode="human")``.

v1 (issue 22): deterministic infos (timings only with ``info_timings=True``), ``state_space``,
``render_mode="human"``, and ``reset()`` without a seed starting a new episode."""

from swarmgames.core.pz import versioned_factories
from swarmgames.games.parallel import FlockParallelEnv

raw_env = FlockParallelEnv
env, parallel_env = versioned_factories(FlockParallelEnv)
