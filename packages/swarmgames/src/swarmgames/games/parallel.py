"""PettingZoo ``ParallelEnv`` wrappers for the flocking and CoCo simulators (design note §2.4).

Actions are label indices (``Discrete(L)``); observations are a ``Dict`` with the agent's own
features, padded neighbour features with a mask (neighbours = the controller's stale routing
neighbourhood) and the PettingZoo ``action_mask``.  Rewards are the agents' stage payoffs
u_i(a) of the played profile.  Episodes truncate after ``max_cycles`` steps.  Seeding,
deterministic infos, rendering and ``state_space`` follow ``core.pz``; the versioned factories
are ``games.flock_v1`` and ``games.coco_v1``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from swarmgames.core.pz import SwarmParallelEnvBase, deterministic_info
from swarmgames.core.render import rgb_array
from swarmgames.games import coco, flock
from swarmgames.games.coco import CocoSim
from swarmgames.games.config import CocoConfig, FlockConfig
from swarmgames.games.flock import FlockSim

NBR_FEATURES = 5


class _SwarmParallelEnv(SwarmParallelEnvBase):
    """Shared ParallelEnv plumbing; subclasses define the simulator, own features, the state
    vector and its bounds."""

    self_dim = 0
    timing_keys: tuple[str, ...] = ()

    def __init__(self, sim: Any, max_nbrs: int = 8, max_cycles: int | None = None,
                 render_mode: str | None = None, seed: int = 0,
                 info_timings: bool = False) -> None:
        self._setup(sim, seed, max_cycles, render_mode, info_timings)
        self.max_nbrs = max_nbrs
        self.possible_agents = [f"uav_{i}" for i in range(sim.n)]
        self._obs_space = spaces.Dict({
            "self": spaces.Box(-np.inf, np.inf, (self.self_dim,), np.float32),
            "neighbours": spaces.Box(-np.inf, np.inf, (max_nbrs, NBR_FEATURES), np.float32),
            "neighbour_mask": spaces.Box(0, 1, (max_nbrs,), np.int8),
            "action_mask": spaces.Box(0, 1, (sim.n_labels,), np.int8),
        })
        self._act_space = spaces.Discrete(sim.n_labels)
        low, high = self._state_bounds()
        self.state_space = spaces.Box(low.astype(np.float32), high.astype(np.float32),
                                      dtype=np.float32)

    def observation_space(self, agent: str) -> spaces.Space:
        """The same space object for every agent (required by ``parallel_api_test``)."""
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Space:
        return self._act_space

    # ------------------------------------------------------------------ subclass hooks
    def _self_features(self) -> np.ndarray:
        raise NotImplementedError

    def _action_mask(self) -> np.ndarray:
        return np.ones((self.sim.n, self.sim.n_labels), dtype=np.int8)

    def _state_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    # ------------------------------------------------------------------ API
    def _observe(self) -> dict[str, dict[str, np.ndarray]]:
        snap = self.sim.snapshot()
        p, nbr, rx = snap["p"], snap["nbr"], snap["rx"]
        vel = snap.get("v", np.zeros_like(p))
        own = self._self_features().astype(np.float32)
        masks = self._action_mask()
        out = {}
        for i, agent in enumerate(self.agents):
            idx = np.flatnonzero(nbr[i])
            idx = idx[np.argsort(np.linalg.norm(p[idx] - p[i], axis=1), kind="stable")]
            idx = idx[: self.max_nbrs]
            feats = np.zeros((self.max_nbrs, NBR_FEATURES), dtype=np.float32)
            if len(idx):
                feats[: len(idx), 0:2] = (p[idx] - p[i]) / 100.0
                feats[: len(idx), 2:4] = vel[idx] - vel[i]
                feats[: len(idx), 4] = np.clip(rx[idx, i], -200, 100) / 100.0
            nmask = np.zeros(self.max_nbrs, dtype=np.int8)
            nmask[: len(idx)] = 1
            out[agent] = {"self": own[i], "neighbours": feats, "neighbour_mask": nmask,
                          "action_mask": masks[i]}
        return out

    def step(self, actions: dict[str, int]):
        if not self.agents:
            return {}, {}, {}, {}, {}
        labels = np.array([int(actions.get(a, 0)) for a in self.possible_agents])
        m = self.sim.step(labels)
        rew = {a: float(self.sim.last_payoffs[i]) for i, a in enumerate(self.possible_agents)}
        trunc = self._truncated()
        obs = self._observe()
        terms = {a: False for a in self.agents}
        truncs = {a: trunc for a in self.agents}
        info = {"metrics": deterministic_info(m, self.timing_keys, self.info_timings)}
        infos = {a: info for a in self.agents}
        if trunc:
            self.agents = []
        return obs, rew, terms, truncs, infos

    def _frame(self) -> np.ndarray:
        return rgb_array(self.sim.snapshot())


class FlockParallelEnv(_SwarmParallelEnv):
    """Graphical-game flocking as a ParallelEnv.  Own features: v, v_des − v, p − neighbour
    centroid (/100)."""

    metadata = {**_SwarmParallelEnv.metadata, "name": "swarmgames_flock_v1"}
    self_dim = 6
    timing_keys = flock.TIMING_METRICS

    def __init__(self, cfg: FlockConfig | None = None, seed: int = 0, **kw: Any) -> None:
        super().__init__(FlockSim(cfg or FlockConfig(), seed), seed=seed, **kw)

    def state(self) -> np.ndarray:
        """Global state: every UAV's position (m) then velocity (m/s), flattened."""
        return np.concatenate([self.sim.p.ravel(), self.sim.v.ravel()]).astype(np.float32)

    def _state_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions are unbounded; speeds are capped at v_max by the double integrator."""
        n, vmax = self.sim.n, self.sim.cfg.v_max * (1 + 1e-6)
        return (np.concatenate([np.full(2 * n, -np.inf), np.full(2 * n, -vmax)]),
                np.concatenate([np.full(2 * n, np.inf), np.full(2 * n, vmax)]))

    def _self_features(self) -> np.ndarray:
        s = self.sim
        mean = np.where(s.nbr.any(axis=1, keepdims=True),
                        (s.nbr @ s.p) / np.maximum(s.nbr.sum(1, keepdims=True), 1), s.p)
        return np.concatenate([s.v, s.desired_velocity() - s.v, (s.p - mean) / 100.0], axis=1)

    def _action_mask(self) -> np.ndarray:
        return self.sim.stage_game().mask.astype(np.int8)


class CocoParallelEnv(_SwarmParallelEnv):
    """CoCo coverage as a ParallelEnv.  Own features: p/area, ROI centre − p (/area), nearest
    UE − p (/area)."""

    metadata = {**_SwarmParallelEnv.metadata, "name": "swarmgames_coco_v1"}
    self_dim = 6
    timing_keys = coco.TIMING_METRICS

    def __init__(self, cfg: CocoConfig | None = None, seed: int = 0, **kw: Any) -> None:
        super().__init__(CocoSim(cfg or CocoConfig(), seed), seed=seed, **kw)

    def state(self) -> np.ndarray:
        """Global state: UAV positions then UE positions (m), flattened."""
        return np.concatenate([self.sim.p.ravel(), self.sim.ues.ravel()]).astype(np.float32)

    def _state_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """UAVs may start outside the area (launch spread); UEs stay inside it."""
        c = self.sim.cfg
        n_uav, n_ue = 2 * c.n_uavs, 2 * c.n_ues
        return (np.concatenate([np.full(n_uav, -np.inf), np.full(n_ue, c.ue_margin_m)]),
                np.concatenate([np.full(n_uav, np.inf),
                                np.full(n_ue, c.area_m - c.ue_margin_m)]))

    def _self_features(self) -> np.ndarray:
        s = self.sim
        a = s.cfg.area_m
        d = np.linalg.norm(s.p[:, None] - s.ues[None], axis=2)
        near = s.ues[np.argmin(d, axis=1)]
        return np.concatenate([s.p / a, (s.roi.mean - s.p) / a, (near - s.p) / a], axis=1)
