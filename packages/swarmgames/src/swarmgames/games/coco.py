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
from typing import Any

import numpy as np

from swarmgames.core.channel import Channel
from swarmgames.core.commgraph import TopologyTracker
from swarmgames.core.kinematics import step_toward, waypoint_ring
from swarmgames.core.metrics import (
    connectivity_metrics,
    min_pair_distance,
    ue_association,
    ue_pair_reachability,
)
from swarmgames.core.mobility import UEMobility
from swarmgames.core.rng import SeedStreams
from swarmgames.games import equilibrium as eq
from swarmgames.games.config import CocoConfig
from swarmgames.games.controllers.base import Controller, Decision
from swarmgames.games.payoffs_coverage import (
    coverage_ratio,
    coverage_stage_game,
    exact_coverage,
    exact_objective,
    fit_roi,
    link_keeping_pairs,
    service_quality,
)
from swarmgames.games.simbase import StageSim
from swarmgames.games.stage_game import StageGame

TIMING_METRICS = ("solve_ms",)


class CocoSim(StageSim):
    """Pure-python CoCo simulator with ``step``/``metrics``/``snapshot`` (§2.4 API)."""

    def __init__(self, cfg: CocoConfig, seed: int = 0,
                 controller: Controller | None = None) -> None:
        """``controller`` chooses the waypoints when ``step()`` gets no labels (see
        ``games.build.make_coco_sim``); without one, every ``step`` needs ``labels``."""
        self.cfg = cfg
        self.controller = controller
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
        if self.controller is not None:
            self.controller.reset()
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

    @property
    def links(self) -> tuple[np.ndarray, np.ndarray]:
        """The current directed adjacency (j hears i) and RSS matrix (read-only views)."""
        return self._adj, self._rx

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
    def _decide(self, labels: np.ndarray | None) -> tuple[StageGame | None, Decision]:
        """The stage game (if needed) and the decision (targets always set)."""
        if labels is not None:
            labels = np.asarray(labels, dtype=int)
            targets = self.candidates()[np.arange(self.n), labels]
            return self.stage_game(), Decision(labels=labels, targets=targets)
        return self.controller_decision()

    def step(self, labels: np.ndarray | None = None) -> dict[str, float]:
        """Advance one stage.  ``labels`` (N,) overrides the controller (env use)."""
        cfg = self.cfg
        self.mobility.step(cfg.dt)
        self.roi = fit_roi(cfg.roi, self.ues, cfg.area_m)
        self._adj, self._rx = self._links()
        self.nbr = self.tracker.update(self.t, self._adj, self.p)
        t0 = time.perf_counter()
        game, decision = self._decide(labels)
        info = dict(decision.info)
        info["solve_ms"] = 1e3 * (time.perf_counter() - t0)
        if game is not None and decision.labels is not None:
            self.last_payoffs = game.payoffs(decision.labels)
            if cfg.certify:
                r = eq.regrets(game, decision.labels)
                info.update(epsilon=float(r.max()), nashconv=float(r.sum()))
        else:
            self.last_payoffs = np.zeros(self.n)
        self.p = step_toward(self.p, decision.targets, cfg.v_max * cfg.dt)
        self.t += cfg.dt
        self.k += 1
        self._adj, self._rx = self._links()
        m = self._measure(info)
        self.history.append(m)
        self.traj.append(np.concatenate([self.p, self.ues], axis=0))
        return m

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
