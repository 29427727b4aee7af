"""What every PettingZoo wrapper in the package shares (issue 22, PettingZoo compliance):

* seeding: ``reset(seed=s)`` replays episode ``s`` exactly; ``reset()`` without a seed starts a
  *new* episode whose seed is drawn from a generator seeded by the last explicit seed (or the
  constructor's), so a sequence of unseeded resets is itself reproducible;
* ``max_cycles``: truncation after that many parallel steps (the official ``max_cycles_test``);
* deterministic infos: wall-clock timings and undefined (NaN) values are left out of
  ``infos`` unless ``info_timings=True``, so two runs with the same seed return equal infos
  (``seed_test`` / ``parallel_seed_test``);
* rendering: ``render_mode`` ``"rgb_array"`` returns a frame, ``"human"`` shows it in a
  matplotlib window (or keeps it as ``last_frame`` where matplotlib has no GUI backend) and
  returns ``None``;
* ``state_space`` as an attribute next to ``state()``.

Subclasses implement ``_frame()`` (an (H, W, 3) uint8 image of the current world)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from swarmgames.core.render import HumanWindow

RENDER_MODES = ("human", "rgb_array")


def deterministic_info(metrics: dict[str, Any], timing_keys: tuple[str, ...] = (),
                       include_timings: bool = False) -> dict[str, Any]:
    """``metrics`` without wall-clock keys (unless ``include_timings``) and without NaN values
    (NaN never compares equal, so two identical episodes would report unequal infos)."""
    out = {}
    for k, v in metrics.items():
        if k in timing_keys and not include_timings:
            continue
        if isinstance(v, float) and math.isnan(v):
            continue
        out[k] = v
    return out


class SwarmParallelEnvBase(ParallelEnv):
    """Seeding, ``max_cycles``, rendering and ``state_space`` plumbing for the package's
    ``ParallelEnv`` wrappers; ``sim`` is the wrapped simulator (``reset(seed)``, ``cfg``)."""

    metadata = {"render_modes": list(RENDER_MODES), "name": "swarmgames_v1",
                "is_parallelizable": True, "render_fps": 4}
    state_space: spaces.Box

    def _setup(self, sim: Any, seed: int, max_cycles: int | None, render_mode: str | None,
               info_timings: bool) -> None:
        """Shared constructor part (called first by every subclass ``__init__``)."""
        if render_mode not in (None, *RENDER_MODES):
            raise ValueError(f"render_mode must be None, 'human' or 'rgb_array', "
                             f"got {render_mode!r}")
        if max_cycles is not None and (isinstance(max_cycles, bool)
                                       or not isinstance(max_cycles, int) or max_cycles < 1):
            raise ValueError(f"max_cycles must be a positive integer, got {max_cycles!r}")
        self.sim = sim
        self.max_cycles = max_cycles if max_cycles is not None else sim.cfg.steps
        self.render_mode = render_mode
        self.info_timings = bool(info_timings)
        self._seeder = np.random.default_rng(int(seed))
        self._window: HumanWindow | None = None
        self._cycles = 0
        self.agents: list[str] = []

    def reset(self, seed: int | None = None, options: dict | None = None):
        """Seeded: that episode; unseeded: a new episode. Returns every agent's observation
        (the subclass's ``_observe``) and empty infos."""
        self._reset_sim(seed)
        return self._observe(), {a: {} for a in self.agents}

    def _reset_sim(self, seed: int | None) -> None:
        """Seeded: that episode (and reseed the episode-seed generator); unseeded: a new one."""
        if seed is None:
            seed = int(self._seeder.integers(2**31 - 1))
        else:
            self._seeder = np.random.default_rng(int(seed))
        self.sim.reset(int(seed))
        self._cycles = 0
        self.agents = list(self.possible_agents)

    def _truncated(self) -> bool:
        """Count one parallel step; True when the episode ends (``max_cycles`` or sim end)."""
        self._cycles += 1
        return self._cycles >= self.max_cycles

    def _frame(self) -> np.ndarray:
        raise NotImplementedError

    def render(self) -> np.ndarray | None:
        """``rgb_array``: the current frame; ``human``: show it and return None."""
        if self.render_mode is None:
            return None
        frame = self._frame()
        if self.render_mode == "rgb_array":
            return frame
        if self._window is None:
            self._window = HumanWindow(self.metadata["name"])
        self._window.show(frame)
        return None

    def close(self) -> None:
        """Close the human-render window if one was opened."""
        if self._window is not None:
            self._window.close()
            self._window = None


def versioned_factories(cls: type[ParallelEnv]) -> tuple[Any, Any]:
    """``(env, parallel_env)`` factories in PettingZoo's style for a ``ParallelEnv`` class:
    ``parallel_env(**kw)`` builds ``cls(**kw)``; ``env(**kw)`` is its AEC conversion (with
    PettingZoo's order-enforcing wrapper).  Both take the class's keyword arguments (``cfg``,
    ``seed``, ``max_cycles``, ``render_mode``, ``info_timings`` ...)."""

    def parallel_env(**kwargs: Any) -> ParallelEnv:
        return cls(**kwargs)

    def env(**kwargs: Any) -> AECEnv:
        return parallel_to_aec(cls(**kwargs))

    parallel_env.__doc__ = f"A ``{cls.__name__}`` (PettingZoo parallel API)."
    env.__doc__ = f"A ``{cls.__name__}`` converted to PettingZoo's AEC API."
    return env, parallel_env
