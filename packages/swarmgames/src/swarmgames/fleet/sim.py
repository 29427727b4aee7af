"""Advanced-air-mobility fleet game simulator (paper A; design note §3.2).

A POMG on a vertiport network.  Each decision step (Δt = 1 simulated minute):

1. every vehicle submits an action index: ``m < M_max`` serves the m-th open request at its
   vertiport (requests sorted by id), ``M_max + v`` repositions (empty) to vertiport v,
   ``M_max + V`` waits / charges.  Only idle vehicles at a vertiport have more than the wait
   action; a masked action is never executed (it costs c_inf and becomes "wait");
2. conflicts: several vehicles picking one request → the lowest trip time (``eta``) or the lowest
   quote (``price``) wins, ties broken by the seeded ``conflict`` stream; losers pay c_conf;
3. flights advance; each step costs cost_c·km flown; a loaded arrival delivers and earns the fare;
4. pending requests older than their patience expire;
5. Poisson arrivals λ_od(t) = Λ·g(t)·P_od.

Per-vehicle rewards are summed within a fleet (``reward_sharing: fleet``); fleets compete.
The communication graph is the core channel (§2.2) with a class transmit power that gives each
class its comm range, so links are directed; observation topologies use BFS hops on it (§2.3).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from swarmgames.core.channel import Channel
from swarmgames.core.commgraph import hop_matrix
from swarmgames.core.rng import SeedStreams, trajectory_hash
from swarmgames.fleet.config import AamConfig

AAM_STREAMS = ("layout", "demand", "conflict", "policy")

PENDING, ONBOARD, DELIVERED, EXPIRED = 0, 1, 2, 3
IDLE, FLYING = 0, 1


def vertiport_layout(cfg: AamConfig, rng: np.random.Generator) -> np.ndarray:
    """(V, 2) vertiport positions in km for the configured layout (§3.2)."""
    net = cfg.network
    v, side = net.n_vertiports, net.side_km
    if net.layout == "grid":
        k = int(np.ceil(np.sqrt(v)))
        step = side / k
        pts = [((i % k) + 0.5, (i // k) + 0.5) for i in range(v)]
        return np.asarray(pts, dtype=float) * step
    if net.layout == "hub_spoke":
        c = np.array([side / 2, side / 2])
        ang = 2 * np.pi * np.arange(v - 1) / max(v - 1, 1) + rng.uniform(0, 2 * np.pi)
        rad = side * rng.uniform(0.25, 0.45, size=v - 1)
        return np.vstack([c, c + np.stack([np.cos(ang), np.sin(ang)], 1) * rad[:, None]])
    pts: list[np.ndarray] = []
    for _ in range(200 * v):
        p = rng.uniform(0.05 * side, 0.95 * side, size=2)
        if all(np.linalg.norm(p - q) >= net.min_separation_km for q in pts):
            pts.append(p)
            if len(pts) == v:
                break
    while len(pts) < v:  # separation infeasible: fill without it
        pts.append(rng.uniform(0.05 * side, 0.95 * side, size=2))
    return np.asarray(pts)


def demand_matrix(cfg: AamConfig, dist: np.ndarray, pop: np.ndarray) -> np.ndarray:
    """P_od (zero diagonal, sums to 1): uniform, gravity ∝ pop_o·pop_d/dist², or hub (§3.2)."""
    v = dist.shape[0]
    off = ~np.eye(v, dtype=bool)
    pattern = cfg.demand.pattern
    if pattern == "uniform":
        p = off.astype(float)
    elif pattern == "gravity":
        p = np.where(off, np.outer(pop, pop) / np.maximum(dist, 0.5) ** 2, 0.0)
    else:
        p = off.astype(float)
        p[0, 1:] += (v - 1) / 2.0
        p[1:, 0] += (v - 1) / 2.0
    return p / p.sum()


def time_profile(cfg: AamConfig, t: int) -> float:
    """g(t): flat, or two Gaussian peaks at 25% and 70% of the horizon (mean ≈ 1)."""
    if cfg.demand.profile == "flat":
        return 1.0
    x = t / max(cfg.steps, 1)
    w = cfg.demand.peak_width
    g = np.exp(-0.5 * ((x - 0.25) / w) ** 2) + np.exp(-0.5 * ((x - 0.70) / w) ** 2)
    return float(0.3 + 1.4 * g)


class AamSim:
    """The AAM fleet game (design note §3.2).  ``step(actions)`` takes one action index per
    vehicle; ``action_masks()`` and ``observed()`` expose what each vehicle may do and see."""

    def __init__(self, cfg: AamConfig | None = None, seed: int = 0) -> None:
        self.cfg = cfg or AamConfig()
        c = self.cfg
        self.n = c.n_vehicles
        self.V = c.network.n_vertiports
        self.M = c.max_requests
        self.n_actions = c.n_actions
        self.wait_action = self.M + self.V
        cls, fleet = [], []
        for f, comp in enumerate(c.fleets):
            for k, cnt in enumerate(comp):
                cls += [k] * cnt
                fleet += [f] * cnt
        self.cls = np.asarray(cls, dtype=int)
        self.fleet = np.asarray(fleet, dtype=int)
        self.n_fleets = len(c.fleets)
        ca = c.classes
        self.capacity = np.array([ca[k].capacity for k in self.cls], dtype=int)
        self.range_km = np.array([ca[k].range_km for k in self.cls])
        self.speed = np.array([ca[k].speed_km for k in self.cls])
        self.cost_km = np.array([ca[k].cost_per_km for k in self.cls])
        self.charge_km = np.array([ca[k].charge_km for k in self.cls])
        self.obs_radius = np.array([ca[k].obs_radius_km for k in self.cls])
        self.channel = Channel(c.channel)
        ch = self.channel
        comm_m = np.array([ca[k].comm_range_km for k in self.cls]) * 1000.0
        # class transmit power giving range R_c at the link threshold (inverse of §2.2)
        self.ptx_dbm = (c.channel.threshold_dbm + ch.pl0_db
                        + 10 * ch.exponent * np.log10(comm_m / c.channel.d0_m))
        self.reset(seed)

    # ------------------------------------------------------------------ setup
    def reset(self, seed: int | None = None) -> None:
        """Re-seed all streams and rebuild the world (same seed ⇒ identical episode)."""
        if seed is not None:
            self.seed = int(seed)
        c = self.cfg
        self.rng = SeedStreams(self.seed, AAM_STREAMS)
        lay = self.rng["layout"]
        self.vp = vertiport_layout(c, lay)
        self.dist = np.linalg.norm(self.vp[:, None] - self.vp[None], axis=2)
        self.pop = lay.uniform(0.5, 1.5, size=self.V)
        self.is_depot = np.zeros(self.V, dtype=bool)
        self.is_depot[: c.network.n_depots] = True
        self.charge_factor = np.where(self.is_depot, 1.0, c.network.client_charge_factor)
        self.p_od = demand_matrix(c, self.dist, self.pop)
        self.loc = lay.integers(0, self.V, size=self.n)          # vertiport (destination if flying)
        self.origin = self.loc.copy()
        self.status = np.full(self.n, IDLE)
        self.remaining = np.zeros(self.n, dtype=int)
        self.total = np.ones(self.n, dtype=int)
        self.km_step = np.zeros(self.n)
        self.soc = self.range_km * c.initial_soc
        self.load = np.zeros(self.n, dtype=int)
        self.carrying = np.full(self.n, -1)
        # requests: growing arrays
        self.r_o = np.zeros(0, dtype=int)
        self.r_d = np.zeros(0, dtype=int)
        self.r_q = np.zeros(0, dtype=int)
        self.r_t = np.zeros(0, dtype=int)
        self.r_fare = np.zeros(0)
        self.r_status = np.zeros(0, dtype=int)
        self.r_pick = np.zeros(0, dtype=int)
        self.t = 0
        self.last_rewards = np.zeros(self.n)
        self.last_agent_rewards = np.zeros(self.n)
        self.last_agent_pickups = np.zeros(self.n)
        self.executed = np.full(self.n, self.wait_action)
        self.tot = {"km": 0.0, "empty_km": 0.0, "conflicts": 0, "serve_attempts": 0,
                    "violations": 0, "wait_sum": 0.0, "loaded_steps": np.zeros(self.n),
                    "fleet_reward": np.zeros(self.n_fleets)}
        self._traj: list[np.ndarray] = []
        self._arrivals()
        self._refresh()

    # ------------------------------------------------------------------ views
    @property
    def n_requests(self) -> int:
        return len(self.r_o)

    def positions(self) -> np.ndarray:
        """(N, 2) km: vertiport, or linear interpolation along the current flight."""
        frac = np.where(self.status == FLYING, 1.0 - self.remaining / self.total, 1.0)
        return self.vp[self.origin] + (self.vp[self.loc] - self.vp[self.origin]) * frac[:, None]

    def pending_at(self, v: int) -> np.ndarray:
        """Open request ids at vertiport v, sorted by id (the serve-slot order)."""
        return np.flatnonzero((self.r_status == PENDING) & (self.r_o == v))

    def _refresh(self) -> None:
        """Comm graph, observation sets, candidate slots and action masks for the new state."""
        c = self.cfg
        pos = self.positions()
        self.adj, self.rx = self.channel.links(pos * 1000.0, ptx_dbm=self.ptx_dbm)
        self.hops = hop_matrix(self.adj)  # hops[j, i]: j → i (i hears j after hops relays)
        n, V = self.n, self.V
        if c.topology == "full":
            self.obs_vp = np.ones((n, V), dtype=bool)
            self.obs_veh = ~np.eye(n, dtype=bool)
        else:
            d = np.linalg.norm(pos[:, None] - self.vp[None], axis=2)
            self.obs_vp = d <= self.obs_radius[:, None] + 1e-9
            self.obs_vp[np.arange(n), self.loc] = True
            k = {"local": 0, "comm_1hop": 1, "comm_khop": c.obs_hops}[c.topology]
            self.obs_veh = (self.hops.T <= k) & ~np.eye(n, dtype=bool)
        self.slots = np.full((n, self.M), -1)
        mask = np.zeros((n, self.n_actions), dtype=bool)
        mask[:, self.wait_action] = True
        for i in np.flatnonzero(self.status == IDLE):
            v = self.loc[i]
            ids = self.pending_at(v)[: self.M]
            self.slots[i, : len(ids)] = ids
            for m, r in enumerate(ids):
                mask[i, m] = (self.r_q[r] <= self.capacity[i]
                              and self.dist[v, self.r_d[r]] <= self.soc[i] + 1e-9)
            reach = (self.dist[v] <= self.soc[i] + 1e-9) & self.obs_vp[i]
            reach[v] = False
            mask[i, self.M: self.M + V] = reach
        self.mask = mask

    def action_masks(self) -> np.ndarray:
        """(N, A) bool: feasible actions of every vehicle at this step."""
        return self.mask.copy()

    # ------------------------------------------------------------------ dynamics
    def _arrivals(self) -> None:
        c, rng = self.cfg, self.rng["demand"]
        k = rng.poisson(c.demand.rate * time_profile(c, self.t))
        if k == 0:
            return
        flat = rng.choice(self.V * self.V, size=k, p=self.p_od.ravel())
        o, d = flat // self.V, flat % self.V
        q = rng.integers(1, c.demand.q_max + 1, size=k)
        fare = c.demand.fare_base + c.demand.fare_per_km * self.dist[o, d] * q
        self.r_o = np.concatenate([self.r_o, o])
        self.r_d = np.concatenate([self.r_d, d])
        self.r_q = np.concatenate([self.r_q, q])
        self.r_t = np.concatenate([self.r_t, np.full(k, self.t)])
        self.r_fare = np.concatenate([self.r_fare, fare])
        self.r_status = np.concatenate([self.r_status, np.zeros(k, dtype=int)])
        self.r_pick = np.concatenate([self.r_pick, np.full(k, -1)])

    def _depart(self, i: int, dest: int, request: int) -> None:
        d = self.dist[self.loc[i], dest]
        steps = max(1, int(np.ceil(d / self.speed[i] - 1e-9)))
        self.origin[i], self.loc[i] = self.loc[i], dest
        self.status[i], self.remaining[i], self.total[i] = FLYING, steps, steps
        self.km_step[i] = d / steps
        self.carrying[i] = request
        self.load[i] = self.r_q[request] if request >= 0 else 0

    def step(self, actions: np.ndarray | list[int]) -> dict[str, float]:
        """Advance one decision step; returns :meth:`metrics`."""
        c = self.cfg
        a = np.asarray(actions, dtype=int).copy()
        assert a.shape == (self.n,), f"expected {self.n} actions"
        r = np.zeros(self.n)
        bad = (a < 0) | (a >= self.n_actions)
        bad[~bad] = ~self.mask[np.flatnonzero(~bad), a[~bad]]
        r[bad] -= c.c_inf
        self.tot["violations"] += int(bad.sum())
        a[bad] = self.wait_action
        # --- serve conflicts (§3.2): lowest ETA or quote wins, seeded ties
        serve = np.flatnonzero(a < self.M)
        claims: dict[int, list[int]] = {}
        for i in serve:
            claims.setdefault(int(self.slots[i, a[i]]), []).append(int(i))
        self.tot["serve_attempts"] += len(serve)
        crng = self.rng["conflict"]
        picked = np.zeros(self.n)
        for req, who in sorted(claims.items()):
            dist = self.dist[self.r_o[req], self.r_d[req]]
            if c.conflict == "eta":
                score = np.ceil(dist / self.speed[who] - 1e-9)
            else:
                score = self.cost_km[who] * dist
            best = np.flatnonzero(score == score.min())
            win = who[int(best[crng.integers(len(best))])] if len(best) > 1 else who[best[0]]
            for i in who:
                if i != win:
                    a[i] = self.wait_action
                    r[i] -= c.c_conf
                    self.tot["conflicts"] += 1
            self.r_status[req] = ONBOARD
            self.r_pick[req] = self.t
            self.tot["wait_sum"] += self.t - self.r_t[req]
            self._depart(win, int(self.r_d[req]), req)
            picked[win] = 1.0
        for i in np.flatnonzero((a >= self.M) & (a < self.wait_action)):
            self._depart(int(i), int(a[i] - self.M), -1)
        self.executed = a
        # --- waiting idle vehicles charge
        idle = (self.status == IDLE)
        self.soc[idle] = np.minimum(self.range_km[idle], self.soc[idle] + self.charge_km[idle]
                                    * self.charge_factor[self.loc[idle]])
        # --- flights advance
        fly = np.flatnonzero(self.status == FLYING)
        for i in fly:
            km = self.km_step[i]
            self.soc[i] = max(self.soc[i] - km, 0.0)
            r[i] -= self.cost_km[i] * km
            self.tot["km"] += km
            if self.carrying[i] < 0:
                self.tot["empty_km"] += km
            else:
                self.tot["loaded_steps"][i] += 1
            self.remaining[i] -= 1
            if self.remaining[i] == 0:
                self.status[i] = IDLE
                self.origin[i] = self.loc[i]
                if self.carrying[i] >= 0:
                    req = self.carrying[i]
                    self.r_status[req] = DELIVERED
                    r[i] += self.r_fare[req]
                    self.carrying[i] = -1
                    self.load[i] = 0
        # --- expiry, waiting penalty, arrivals
        pend = self.r_status == PENDING
        self.r_status[pend & (self.t + 1 - self.r_t >= c.demand.patience)] = EXPIRED
        if c.c_wait > 0:
            r -= c.c_wait * int((self.r_status == PENDING).sum()) / self.n
        self.last_rewards = r
        fleet_r = np.bincount(self.fleet, weights=r, minlength=self.n_fleets)
        self.tot["fleet_reward"] += fleet_r
        self.last_agent_rewards = self._share(r)
        self.last_agent_pickups = self._share(picked)
        self.t += 1
        self._traj.append(np.concatenate([self.positions().ravel(), self.soc, a, r,
                                          [self.n_requests]]))
        if self.t < c.steps:
            self._arrivals()
        self._refresh()
        return self.metrics()

    def _share(self, x: np.ndarray) -> np.ndarray:
        """Per-vehicle values as each agent is credited: its fleet's sum or its own."""
        if self.cfg.reward_sharing != "fleet":
            return x
        return np.bincount(self.fleet, weights=x, minlength=self.n_fleets)[self.fleet]

    @property
    def done(self) -> bool:
        return self.t >= self.cfg.steps

    # ------------------------------------------------------------------ outputs
    def counts(self) -> dict[str, int]:
        """Request bookkeeping: generated = delivered + expired + pending + onboard (§3.7)."""
        s = self.r_status
        return {"generated": int(len(s)), "pending": int((s == PENDING).sum()),
                "onboard": int((s == ONBOARD).sum()), "delivered": int((s == DELIVERED).sum()),
                "expired": int((s == EXPIRED).sum())}

    def metrics(self) -> dict[str, float]:
        """Fleet reward, fulfilment ratio (both denominators, §3.2), wait, deadhead, conflicts,
        utilisation per class."""
        c, cnt, tot = self.cfg, self.counts(), self.tot
        W = c.demand.patience
        early = self.r_t <= c.steps - W
        fr_adj = (float((self.r_status[early] == DELIVERED).sum() / early.sum())
                  if early.any() else float("nan"))
        picked = cnt["onboard"] + cnt["delivered"]
        m: dict[str, float] = {
            "t": self.t,
            "fleet_reward": float(tot["fleet_reward"].sum()),
            "fulfilment_ratio": cnt["delivered"] / cnt["generated"] if cnt["generated"]
            else float("nan"),
            "fulfilment_ratio_adj": fr_adj,
            "mean_wait": float(tot["wait_sum"]) / picked if picked else float("nan"),
            "deadhead_ratio": float(tot["empty_km"] / tot["km"]) if tot["km"] > 0 else 0.0,
            "conflict_rate": tot["conflicts"] / tot["serve_attempts"]
            if tot["serve_attempts"] else 0.0,
            "violations": tot["violations"],
            **{k: float(v) for k, v in cnt.items()},
        }
        for f in range(self.n_fleets):
            m[f"fleet{f}_reward"] = float(tot["fleet_reward"][f])
        for k, cl in enumerate(c.classes):
            sel = self.cls == k
            if sel.any():
                m[f"util_{cl.name}"] = float(tot["loaded_steps"][sel].mean() / max(self.t, 1))
        return m

    def snapshot(self) -> dict[str, Any]:
        """Plain arrays for rendering the vertiport network with queues and vehicles."""
        return {"kind": "aam", "t": self.t, "vp": self.vp.copy(), "is_depot": self.is_depot.copy(),
                "queue": np.bincount(self.r_o[self.r_status == PENDING], minlength=self.V),
                "pos": self.positions(), "cls": self.cls.copy(), "fleet": self.fleet.copy(),
                "status": self.status.copy(), "adj": self.adj.copy(),
                "class_names": [cl.name for cl in self.cfg.classes],
                "side": self.cfg.network.side_km}

    def trajectory_hash(self) -> str:
        return trajectory_hash(self._traj)
