"""PettingZoo entry point for CoCo coverage, version 1 (``swarmgames_coco_v1``):
``from swarmgames.games import coco_v1; env = coco_v1.env()`` (AEC) or
``coco_v1.parallel_env(cfg=CocoConfig(...), seed=0, max_cycles=100, render_mode="human")``.

v1 (issue 22): deterministic infos (timings only with ``info_timings=True``), ``state_space``
(UAV and UE positions), ``render_mode="human"``, and ``reset()`` without a seed starting a new
episode."""

from swarmgames.core.pz import versioned_factories
from swarmgames.games.parallel import CocoParallelEnv

raw_env = CocoParallelEnv
env, parallel_env = versioned_factories(CocoParallelEnv)
