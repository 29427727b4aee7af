"""CoCo communication-aware coverage simulator (paper C; design note §5).

Multi-stage loop at 1 Hz (§5.3): (1) move UEs, (2) refit the elliptical ROI, (3) refresh the
(stale) routing graph, (4) solve the cooperative stage game by mean-field VI warm-started from
the previous marginals, (5) move toward the chosen waypoints under the speed limit, (6) record
metrics.  ``execution``: ``mode`` (argmax of q, default), ``sample`` (a_i ~ q_i with the policy
stream) or ``sequential`` (one UAV at a time best-responds on the exact objective J given the
others' current positions: exact, centralised coordinate ascent).  ``controller: lloyd`` runs the
comm-unaware Lloyd/CVT baseline; ``comm.neighbourhood: knn|disk`` gives the distance-based
neighbourhood ablation.  ``horizon > 1`` (receding-horizon extension) plans waypoints up to
H·v_max·dt away and executes the first stage of motion toward them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from swarmgames.core.channel import Channel, ChannelConfig
from swarmgames.core.commgraph import CommConfig, TopologyTracker
from swarmgames.core.config import check
from swarmgames.core.kinematics import waypoint_ring
from swarmgames.core.metrics import (
    connectivity_metrics,
    min_pair_distance,
    ue_association,
    ue_pair_reachability,
)
from swarmgames.core.mobility import MobilityConfig, UEMobility
from swarmgames.core.rng import SeedStreams, trajectory_hash
from swarmgames.games import equilibrium as eq
from swarmgames.games.payoffs_coverage import (
    CoverageWeights,
    RoiConfig,
    coverage_ratio,
    coverage_stage_game,
    exact_coverage,
    exact_objective,
    fit_roi,
    link_keeping_pairs,
    service_quality,
)
from swarmgames.games.solvers import mean_field_vi
from swarmgames.games.stage_game import StageGame
from swarmgames.policies.lloyd import lloyd_targets, step_toward


@dataclass(frozen=True)
class CocoConfig:
    """The CoCo scenario (defaults: 8 UAVs, 5 UEs, 1 km², −85 dBm ≈ 196 m with n = 2.4)."""

    n_uavs: int = 8
    n_ues: int = 5
    steps: int = 200
    dt: float = 1.0
    area_m: float = 1000.0
    ue_margin_m: float = 100.0
    v_max: float = 10.0
    headings: int = 8
    ring_fractions: tuple[float, ...] = (0.5, 1.0)
    horizon: int = 1
    launch: tuple[float, float] = (500.0, 500.0)
    launch_spread_m: float = 30.0
    controller: str = "coco"
    execution: str = "mode"
    beta: float = 20.0
    vi_schedule: str = "colour"
    vi_tol: float = 1e-2
    vi_k_max: int = 20
    damping: float = 0.5
    warm_start: bool = True
    link_keeping: str = "tree"
    certify: bool = True
    weights: CoverageWeights = field(default_factory=CoverageWeights)
    roi: RoiConfig = field(default_factory=RoiConfig)
    mobility: MobilityConfig = field(default_factory=MobilityConfig)
    channel: ChannelConfig = field(default_factory=lambda: ChannelConfig(altitude_m=30.0))
    comm: CommConfig = field(default_factory=CommConfig)

    def __post_init__(self) -> None:
        check(self.n_uavs >= 1, "n_uavs", "must be >= 1")
        check(self.n_ues >= 1, "n_ues", "must be >= 1")
        check(self.steps >= 1, "steps", "must be >= 1")
        check(self.dt > 0, "dt", "must be > 0")
        check(self.area_m > 0, "area_m", "must be > 0")
        check(0 <= self.ue_margin_m < self.area_m / 2, "ue_margin_m", "must be in [0, area_m/2)")
        check(self.v_max > 0, "v_max", "must be > 0")
        check(self.headings >= 1, "headings", "must be >= 1")
        check(len(self.ring_fractions) >= 1 and all(0 < f <= 1 for f in self.ring_fractions),
              "ring_fractions", "must be a non-empty list of numbers in (0, 1]")
        check(self.horizon >= 1, "horizon", "must be >= 1")
        check(self.launch_spread_m >= 0, "launch_spread_m", "must be >= 0")
        check(self.controller in ("coco", "lloyd"), "controller", "must be 'coco' or 'lloyd'")
        check(self.execution in ("mode", "sample", "sequential"), "execution",
              "must be 'mode', 'sample' or 'sequential'")
        check(self.beta > 0, "beta", "must be > 0")
        check(self.vi_schedule in mean_field_vi.SCHEDULES, "vi_schedule",
              f"must be one of {list(mean_field_vi.SCHEDULES)}")
        check(self.vi_tol > 0, "vi_tol", "must be > 0")
        check(self.vi_k_max >= 1, "vi_k_max", "must be >= 1")
        check(0 < self.damping <= 1, "damping", "must be in (0, 1]")
        check(self.link_keeping in ("all", "tree"), "link_keeping", "must be 'all' or 'tree'")


class CocoSim:
    """Pure-python CoCo simulator with ``step``/``metrics``/``snapshot`` (§2.4 API)."""

    def __init__(self, cfg: CocoConfig, seed: int = 0) -> None:
        self.cfg = cfg
        self.channel = Channel(cfg.channel)
        self.ring = waypoint_ring(cfg.headings, cfg.ring_fractions,
                                  cfg.v_max * cfg.dt * cfg.horizon)
        self.reset(seed)

    @property
    def n(self) -> int:
        return self.cfg.n_uavs

    @property
    def n_labels(self) -> int:
        return len(self.ring)

    def reset(self, seed: int | None = None) -> None:
        """Re-initialise UAVs at the launch point and UEs from ``seed``."""
        self.seed = self.seed if seed is None else int(seed)
        self.rng = SeedStreams(self.seed)
        cfg = self.cfg
        lay = self.rng["layout"]
        lo, hi = cfg.ue_margin_m, cfg.area_m - cfg.ue_margin_m
        ues = lay.uniform(lo, hi, size=(cfg.n_ues, 2))
        self.p = np.asarray(cfg.launch)[None, :] + lay.uniform(
            -cfg.launch_spread_m, cfg.launch_spread_m, size=(cfg.n_uavs, 2))
        self.mobility = UEMobility(cfg.mobility, ues, lo, hi, self.rng["mobility"])
        self.shadow = self.channel.draw_shadowing(cfg.n_uavs, self.rng["shadowing"])
        self.tracker = TopologyTracker(cfg.comm, cfg.dt)
        self.q: np.ndarray | None = None
        self.t = 0.0
        self.k = 0
        self.history: list[dict[str, float]] = []
        self.roi = fit_roi(cfg.roi, self.ues, cfg.area_m)
        self._adj, self._rx = self._links()
        self.nbr = self.tracker.update(self.t, self._adj, self.p)
        self.traj: list[np.ndarray] = [np.concatenate([self.p, self.ues], axis=0)]
        self.initial = self._measure(None)

    @property
    def ues(self) -> np.ndarray:
        return self.mobility.pos

    def _links(self) -> tuple[np.ndarray, np.ndarray]:
        if self.cfg.channel.shadowing == "per_step" and self.k > 0:
            self.shadow = self.channel.draw_shadowing(self.n, self.rng["shadowing"])
        return self.channel.links(self.p, shadow_db=self.shadow)

    def candidates(self) -> np.ndarray:
        """(N, L, 2) candidate waypoints, clipped to the area."""
        return np.clip(self.p[:, None, :] + self.ring[None], 0.0, self.cfg.area_m)

    def stage_game(self) -> StageGame:
        """The current cooperative stage game over the configured neighbourhoods."""
        lp = link_keeping_pairs(self.cfg.link_keeping, self.nbr, self._rx)
        return coverage_stage_game(self.cfg.weights, self.channel, self.candidates(), self.p,
                                   self.roi, self.nbr, lp)

    def objective(self, pos: np.ndarray | None = None) -> float:
        """The exact team objective J (see ``payoffs_coverage.exact_objective``)."""
        return exact_objective(self.cfg.weights, self.channel, self.p if pos is None else pos,
                               self.roi)

    # ------------------------------------------------------------------ control
    def _sequential_targets(self, cand: np.ndarray) -> np.ndarray:
        pos = self.p.copy()
        for i in range(self.n):
            vals = []
            for c in cand[i]:
                trial = pos.copy()
                trial[i] = c
                vals.append(self.objective(trial))
            vals = np.array(vals)
            best = int(np.argmax(vals))
            if vals[best] > vals[0] + 1e-12:  # label 0 is 'stay' (keeps J on ties)
                pos[i] = cand[i, best]
        return pos

    def step(self, labels: np.ndarray | None = None) -> dict[str, float]:
        """Advance one stage.  ``labels`` (N,) overrides the controller (env use)."""
        cfg = self.cfg
        self.mobility.step(cfg.dt)
        self.roi = fit_roi(cfg.roi, self.ues, cfg.area_m)
        self._adj, self._rx = self._links()
        self.nbr = self.tracker.update(self.t, self._adj, self.p)
        cand = self.candidates()
        info: dict[str, float] = {"rounds": np.nan, "converged": np.nan, "messages": 0.0}
        t0 = time.perf_counter()
        game = None
        if labels is not None:
            game = self.stage_game()
            labels = np.asarray(labels, dtype=int)
            targets = cand[np.arange(self.n), labels]
        elif cfg.controller == "lloyd":
            targets = lloyd_targets(self.p, self.roi.points, self.roi.weights)
        elif cfg.execution == "sequential":
            targets = self._sequential_targets(cand)
        else:
            game = self.stage_game()
            q0 = self.q if (cfg.warm_start and self.q is not None) else None
            res = mean_field_vi.solve(game, cfg.beta, q0, cfg.vi_schedule, cfg.damping,
                                      cfg.vi_tol, cfg.vi_k_max)
            self.q = res.q
            if cfg.execution == "sample":
                pol = self.rng["policy"]
                labels = np.array([pol.choice(self.n_labels, p=row) for row in res.q])
            else:
                labels = res.profile
            targets = cand[np.arange(self.n), labels]
            info.update(rounds=float(res.rounds), converged=float(res.converged),
                        messages=float(res.messages))
        info["solve_ms"] = 1e3 * (time.perf_counter() - t0)
        if game is not None and labels is not None:
            self.last_payoffs = game.payoffs(labels)
            if cfg.certify:
                r = eq.regrets(game, labels)
                info.update(epsilon=float(r.max()), nashconv=float(r.sum()))
        else:
            self.last_payoffs = np.zeros(self.n)
        self.p = step_toward(self.p, targets, cfg.v_max * cfg.dt)
        self.t += cfg.dt
        self.k += 1
        self._adj, self._rx = self._links()
        m = self._measure(info)
        self.history.append(m)
        self.traj.append(np.concatenate([self.p, self.ues], axis=0))
        return m

    def run(self, steps: int | None = None) -> list[dict[str, float]]:
        """Run ``steps`` stages (default cfg.steps); returns the history."""
        for _ in range(self.cfg.steps if steps is None else steps):
            self.step()
        return self.history

    # ------------------------------------------------------------------ outputs
    def _measure(self, info: dict[str, float] | None) -> dict[str, float]:
        cfg = self.cfg
        bb = self._adj & self._adj.T
        ue_rx = self.channel.ground_rx(self.p, self.ues)
        assoc = ue_association(ue_rx, cfg.channel.ue_threshold_dbm)
        m = {"t": self.t,
             "coverage": coverage_ratio(self.channel, self.p, self.roi),
             "coverage_prob": exact_coverage(self.channel, self.p, self.roi),
             "ue_coverage": float(np.mean(assoc >= 0)),
             "ue_connectivity": ue_pair_reachability(assoc, bb, "halves"),
             "ue_connectivity_all": ue_pair_reachability(assoc, bb, "all"),
             "mean_ue_rss": float(ue_rx.max(axis=0).mean()),
             "objective": self.objective(),
             "min_distance": min_pair_distance(self.p),
             "mean_degree": float(self.nbr.sum(axis=1).mean())}
        m.update(connectivity_metrics(bb))
        if info:
            m.update(info)
        return m

    def metrics(self) -> dict[str, float]:
        """Metrics of the last stage (the initial state's before the first step)."""
        return dict(self.history[-1]) if self.history else dict(self.initial)

    def snapshot(self) -> dict[str, Any]:
        """Arrays describing the current world (for rendering and observations)."""
        g = (np.arange(60) + 0.5) * self.cfg.area_m / 60
        gx, gy = np.meshgrid(g, g, indexing="xy")
        pts = np.stack([gx.ravel(), gy.ravel()], axis=1)
        heat = service_quality(self.channel, self.p, pts).max(axis=0).reshape(60, 60)
        return {"t": self.t, "p": self.p.copy(), "ues": self.ues.copy(), "adj": self._adj.copy(),
                "rx": self._rx.copy(), "nbr": self.nbr.copy(), "roi": self.roi, "kind": "coco",
                "area": self.cfg.area_m, "heat": heat,
                "threshold_dbm": self.cfg.channel.threshold_dbm}

    def trajectory_hash(self) -> str:
        """SHA-256 of the rounded UAV+UE trajectory (determinism contract, §2.4)."""
        return trajectory_hash({"traj": np.stack(self.traj)})


def summarise_coco(history: list[dict[str, float]], initial: dict[str, float] | None = None,
                   tail: int = 50) -> dict[str, float]:
    """Scalar summary of a CoCo run (§5.4 metrics)."""
    def col(k: str) -> np.ndarray:
        return np.array([h.get(k, np.nan) for h in history], dtype=float)

    def nanmean(x: np.ndarray) -> float:
        return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")

    eps = col("epsilon")
    out = {
        "steps": float(len(history)),
        "coverage_last": float(np.nanmean(col("coverage")[-tail:])),
        "coverage_prob_last": float(np.nanmean(col("coverage_prob")[-tail:])),
        "ue_coverage_mean": float(np.nanmean(col("ue_coverage"))),
        "ue_connectivity_last": float(np.nanmean(col("ue_connectivity")[-tail:])),
        "ue_connectivity_all_last": float(np.nanmean(col("ue_connectivity_all")[-tail:])),
        "ue_connectivity_mean": float(np.nanmean(col("ue_connectivity"))),
        "connected_fraction": float(np.nanmean(col("connected"))),
        "components_last": float(np.nanmean(col("components")[-tail:])),
        "lambda2_last": float(np.nanmean(col("lambda2")[-tail:])),
        "mean_hops_last": float(np.nanmean(col("mean_hops")[-tail:])),
        "rounds_mean": nanmean(col("rounds")),
        "epsilon_mean": nanmean(eps),
        "solve_ms": float(np.nanmean(col("solve_ms"))),
    }
    if initial:
        out["coverage_initial"] = float(initial["coverage"])
    return out
