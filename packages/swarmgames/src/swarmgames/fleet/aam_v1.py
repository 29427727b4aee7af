"""PettingZoo entry point for the AAM fleet game, version 1 (``swarmgames_aam_v1``):
``from swarmgames.fleet import aam_v1; env = aam_v1.env()`` (AEC) or
``aam_v1.parallel_env(cfg=AamConfig(...), seed=0, max_cycles=30, render_mode="human")``.

v1 (issue 22): ``max_cycles`` honoured, deterministic infos (no NaN), ``state_space``,
``render_mode="human"``, and ``reset()`` without a seed starting a new episode."""

from swarmgames.core.pz import versioned_factories
from swarmgames.fleet.parallel import AamParallelEnv

raw_env = AamParallelEnv
env, parallel_env = versioned_factories(AamParallelEnv)
