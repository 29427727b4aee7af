"""The AAM fleet game as a PettingZoo ``ParallelEnv`` (design note §2.4, §3.2).

Actions ``Discrete(M_max + V + 1)`` with the PettingZoo ``action_mask`` in the observation.
Observations are partial (§3.2): the vehicle's own state, the vertiports it observes, the open
requests at them (padded to ``max_obs_requests``) and the other vehicles it hears on the comm
graph (same-fleet flag; per the observation topology), each with a mask.  Rewards are the fleet
step rewards (``reward_sharing``).  ``state()`` is the global state for centralised critics.
Seeding, ``max_cycles``, deterministic infos, rendering and ``state_space`` follow ``core.pz``;
the versioned factories are ``fleet.aam_v1``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from gymnasium import spaces

from swarmgames.core.pz import SwarmParallelEnvBase, deterministic_info
from swarmgames.core.render import figure_rgb
from swarmgames.fleet.config import AamConfig
from swarmgames.fleet.render import draw_network
from swarmgames.fleet.sim import FLYING, PENDING, AamSim

SELF_F, VP_F, REQ_F, VEH_F = 10, 5, 6, 5


class AamParallelEnv(SwarmParallelEnvBase):
    """PettingZoo wrapper around :class:`AamSim`; agents ``vehicle_<i>``.  An episode ends at
    the simulator's horizon or after ``max_cycles`` steps, whichever comes first."""

    metadata = {**SwarmParallelEnvBase.metadata, "name": "swarmgames_aam_v1"}

    def __init__(self, cfg: AamConfig | None = None, seed: int = 0,
                 max_obs_requests: int = 16, render_mode: str | None = None,
                 max_cycles: int | None = None, info_timings: bool = False) -> None:
        self._setup(AamSim(cfg or AamConfig(), seed), seed, max_cycles, render_mode,
                    info_timings)
        self.R = max_obs_requests
        s = self.sim
        self.possible_agents = [f"vehicle_{i}" for i in range(s.n)]
        box = lambda *shape: spaces.Box(-np.inf, np.inf, shape, np.float32)  # noqa: E731
        self._obs_space = spaces.Dict({
            "self": box(SELF_F), "vertiports": box(s.V, VP_F),
            "vertiport_mask": spaces.Box(0, 1, (s.V,), np.int8),
            "requests": box(self.R, REQ_F), "request_mask": spaces.Box(0, 1, (self.R,), np.int8),
            "vehicles": box(s.n, VEH_F), "vehicle_mask": spaces.Box(0, 1, (s.n,), np.int8),
            "action_mask": spaces.Box(0, 1, (s.n_actions,), np.int8)})
        self._act_space = spaces.Discrete(s.n_actions)
        n_state = 7 * s.n + s.V + 1
        self.state_space = spaces.Box(0.0, np.inf, (n_state,), np.float32)

    def observation_space(self, agent: str) -> spaces.Space:
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Space:
        return self._act_space

    def _observe(self) -> dict[str, dict[str, np.ndarray]]:
        s = self.sim
        side = s.cfg.network.side_km
        pos = s.positions()
        pend = np.flatnonzero(s.r_status == PENDING)
        queue = np.bincount(s.r_o[pend], minlength=s.V)
        out = {}
        for i, agent in enumerate(self.possible_agents):
            own = np.array([s.capacity[i], s.range_km[i], s.speed[i], s.soc[i] / s.range_km[i],
                            s.load[i] / s.capacity[i], float(s.status[i] == FLYING),
                            s.remaining[i], pos[i, 0] / side, pos[i, 1] / side,
                            s.t / s.cfg.steps], dtype=np.float32)
            ov = s.obs_vp[i]
            vps = np.stack([s.vp[:, 0] / side, s.vp[:, 1] / side, s.is_depot,
                            queue * ov, s.dist[s.loc[i]] / side], 1).astype(np.float32)
            seen = pend[ov[s.r_o[pend]]][: self.R] if len(pend) else pend
            req = np.zeros((self.R, REQ_F), dtype=np.float32)
            if len(seen):
                req[: len(seen)] = np.stack([s.r_o[seen], s.r_d[seen], s.r_q[seen],
                                             s.r_fare[seen], s.t - s.r_t[seen],
                                             s.dist[s.r_o[seen], s.r_d[seen]]], 1)
            rmask = np.zeros(self.R, dtype=np.int8)
            rmask[: len(seen)] = 1
            veh = np.stack([(pos[:, 0] - pos[i, 0]) / side, (pos[:, 1] - pos[i, 1]) / side,
                            (s.fleet == s.fleet[i]), s.status == FLYING, s.cls], 1)
            vm = s.obs_veh[i].astype(np.int8)
            out[agent] = {"self": own, "vertiports": vps, "vertiport_mask": ov.astype(np.int8),
                          "requests": req, "request_mask": rmask,
                          "vehicles": (veh * vm[:, None]).astype(np.float32),
                          "vehicle_mask": vm, "action_mask": s.mask[i].astype(np.int8)}
        return out

    def step(self, actions: dict[str, int]):
        if not self.agents:
            return {}, {}, {}, {}, {}
        s = self.sim
        a = np.array([int(actions.get(ag, s.wait_action)) for ag in self.possible_agents])
        m = s.step(a)
        rew = {ag: float(s.last_agent_rewards[i]) for i, ag in enumerate(self.possible_agents)}
        obs = self._observe()
        trunc = self._truncated() or s.done
        terms = {ag: False for ag in self.agents}
        truncs = {ag: trunc for ag in self.agents}
        m = deterministic_info(m, (), self.info_timings)
        infos = {ag: {"metrics": m, "executed": int(s.executed[i])}
                 for i, ag in enumerate(self.agents)}
        if trunc:
            self.agents = []
        return obs, rew, terms, truncs, infos

    def state(self) -> np.ndarray:
        """Global state: every vehicle (position, soc, load, status, fleet, class), the queue at
        every vertiport and the time."""
        s = self.sim
        pend = s.r_status == PENDING
        veh = np.concatenate([s.positions().ravel(), s.soc, s.load, s.status, s.fleet, s.cls])
        return np.concatenate([veh, np.bincount(s.r_o[pend], minlength=s.V),
                               [s.t]]).astype(np.float32)

    def _frame(self) -> np.ndarray:
        fig, ax = plt.subplots(figsize=(4, 4), dpi=80)
        draw_network(ax, self.sim.snapshot())
        return figure_rgb(fig)
