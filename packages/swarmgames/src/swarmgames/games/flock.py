"""Graphical-game UAV flocking simulator (paper B; design note §4).

Per control step: refresh the (stale) comm graph and k-hop routing neighbourhoods, build the
stage game over acceleration labels (or H-step label sequences with ``horizon > 1``, the
receding-horizon stochastic-game extension), solve it with the configured controller, certify
the executed profile in the true game (ε, NashConv), integrate the double integrator, record
metrics.  Controllers: ``game`` (best response to the virtual mean neighbour, §4.3), ``vi``
(mean-field logit response, the ICRA-21 controller), ``greedy`` (independent, neighbours at
constant velocity) and ``reynolds`` (rule-based flocking).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from swarmgames.core.channel import Channel
from swarmgames.core.commgraph import TopologyTracker
from swarmgames.core.kinematics import DoubleIntegrator, acceleration_labels, zero_label
from swarmgames.core.metrics import (
    cohesion_radius,
    collisions,
    connectivity_metrics,
    min_pair_distance,
    order_parameter,
)
from swarmgames.core.obstacles import Obstacles, place_obstacles
from swarmgames.core.rng import STREAMS, SeedStreams
from swarmgames.games import equilibrium as eq
from swarmgames.games.config import FlockConfig
from swarmgames.games.controllers.base import Controller, Decision
from swarmgames.games.payoffs_flocking import agent_multipliers, flock_stage_game, sequence_labels
from swarmgames.games.simbase import StageSim
from swarmgames.games.stage_game import StageGame

TIMING_METRICS = ("solve_ms_per_agent",)
FLOCK_STREAMS = (*STREAMS, "obstacles")   # appended: the other streams' draws are unchanged


class FlockSim(StageSim):
    """Pure-python flocking simulator with ``step``/``metrics``/``snapshot`` (§2.4 API)."""

    def __init__(self, cfg: FlockConfig, seed: int = 0,
                 controller: Controller | None = None) -> None:
        """``controller`` chooses the actions when ``step()`` gets no labels (see
        ``games.build.make_flock_sim``); without one, every ``step`` needs ``labels``."""
        self.cfg = cfg
        self.controller = controller
        self.dyn = DoubleIntegrator(cfg.dt, cfg.u_max, cfg.v_max)
        self.channel = Channel(cfg.channel)
        base = acceleration_labels(cfg.u_max, cfg.label_levels)
        self.seqs = sequence_labels(base, cfg.horizon)
        self.zero = zero_label(self.seqs.reshape(len(self.seqs), -1))
        self.reset(seed)

    # ------------------------------------------------------------------ lifecycle
    def reset(self, seed: int | None = None) -> None:
        """Re-initialise the world from ``seed`` (default: the last seed)."""
        self.seed = self.seed if seed is None else int(seed)
        self.rng = SeedStreams(self.seed, FLOCK_STREAMS)
        cfg, n = self.cfg, self.cfg.n_agents
        lay = self.rng["layout"]
        side = int(np.ceil(np.sqrt(n)))
        grid = np.array([(i % side, i // side) for i in range(n)], dtype=float) * cfg.spacing_m
        self.p = grid + lay.uniform(-0.25, 0.25, size=(n, 2)) * cfg.spacing_m
        self.v = lay.uniform(-cfg.init_speed, cfg.init_speed, size=(n, 2))
        self.mult = agent_multipliers(n, cfg.payoff.heterogeneity, lay)
        self.goal_offset = lay.uniform(-cfg.goal.spread, cfg.goal.spread, size=(n, 2))
        self.shadow = self.channel.draw_shadowing(n, self.rng["shadowing"])
        heading = (np.asarray(cfg.goal.velocity) if cfg.goal.mode == "velocity"
                   else np.asarray(cfg.goal.point) - self.p.mean(axis=0))
        self.obstacles: Obstacles = place_obstacles(cfg.obstacles, self.p, heading,
                                                    self.rng["obstacles"])
        self.tracker = TopologyTracker(cfg.comm, cfg.dt)
        self.labels = np.full(n, self.zero, dtype=int)
        if self.controller is not None:
            self.controller.reset()
        self._game: StageGame | None = None
        self.t = 0.0
        self.k = 0
        self.history: list[dict[str, float]] = []
        self.traj: list[np.ndarray] = [np.concatenate([self.p, self.v], axis=1)]
        self._adj, self._rx = self._links()
        self.nbr = self.tracker.update(self.t, self._adj, self.p)

    @property
    def n(self) -> int:
        return self.cfg.n_agents

    @property
    def n_labels(self) -> int:
        return len(self.seqs)

    # ------------------------------------------------------------------ world model
    def _links(self) -> tuple[np.ndarray, np.ndarray]:
        if self.cfg.channel.shadowing == "per_step" and self.k > 0:
            self.shadow = self.channel.draw_shadowing(self.n, self.rng["shadowing"])
        if len(self.obstacles):
            block = self.obstacles.blockage_db(self.p, self.cfg.obstacles.blockage_db)
            return self.channel.links(self.p, shadow_db=self.shadow + block)
        return self.channel.links(self.p, shadow_db=self.shadow)

    def desired_velocity(self) -> np.ndarray:
        """(N, 2) each agent's desired velocity (§4.2 φ_i goal term)."""
        g = self.cfg.goal
        if g.mode == "velocity":
            vd = np.asarray(g.velocity)[None, :] + self.goal_offset
        else:
            delta = np.asarray(g.point)[None, :] - self.p
            dist = np.linalg.norm(delta, axis=1, keepdims=True)
            vd = delta / np.maximum(dist, 1e-9) * g.speed * np.minimum(1.0, dist / g.slow_radius_m)
            vd = vd + self.goal_offset
        return np.clip(vd, -self.cfg.v_max, self.cfg.v_max)

    def stage_game(self) -> StageGame:
        """The current stage game (neighbourhoods from the stale routing view); built once per
        state and cached until the next step."""
        if self._game is not None:
            return self._game
        goal = np.asarray(self.cfg.goal.point) if self.cfg.goal.mode == "point" else None
        self._game = flock_stage_game(self.cfg.payoff, self.dyn, self.p, self.v,
                                      self.desired_velocity(), self.nbr, self.seqs, self.mult,
                                      goal, self.obstacles)
        return self._game

    # ------------------------------------------------------------------ control
    def _decide(self, labels: np.ndarray | None) -> tuple[StageGame | None, Decision, float]:
        """The stage game (if needed), the decision and the controller's wall time in s."""
        if labels is not None:
            return self.stage_game(), Decision(labels=np.asarray(labels, dtype=int)), 0.0
        t0 = time.perf_counter()
        game, decision = self.controller_decision()
        return game, decision, time.perf_counter() - t0

    def _execute(self, game: StageGame | None, decision: Decision) -> tuple[np.ndarray,
                                                                            dict[str, float]]:
        """Accelerations of the decision; labels are checked, scored and certified."""
        if decision.labels is None:
            self.last_payoffs = np.zeros(self.n)
            return decision.accel, {}
        labels = decision.labels
        bad = ~game.mask[np.arange(self.n), labels]
        labels = np.where(bad, np.argmax(game.masked(game.unary), axis=1), labels)
        self.last_payoffs = game.payoffs(labels)
        cert: dict[str, float] = {}
        if self.cfg.certify:
            r = eq.regrets(game, labels)
            cert = {"epsilon": float(r.max()), "nashconv": float(r.sum())}
        self.labels = labels
        return self.seqs[labels, 0], cert

    def step(self, labels: np.ndarray | None = None) -> dict[str, float]:
        """Advance one control step.  ``labels`` (N,) overrides the controller (env use)."""
        game, decision, solve_s = self._decide(labels)
        accel, cert = self._execute(game, decision)
        self.p, self.v = self.dyn.step(self.p, self.v, accel)
        self.t += self.cfg.dt
        self.k += 1
        self._game = None
        self._adj, self._rx = self._links()
        self.nbr = self.tracker.update(self.t, self._adj, self.p)
        m = self._measure()
        m.update(decision.info)
        m.update(cert)
        m["solve_ms_per_agent"] = 1e3 * solve_s / self.n
        self.history.append(m)
        self.traj.append(np.concatenate([self.p, self.v], axis=1))
        return m

    # ------------------------------------------------------------------ outputs
    def _measure(self) -> dict[str, float]:
        vd = self.desired_velocity()
        m = {"t": self.t, "min_distance": min_pair_distance(self.p),
             "collisions": float(collisions(self.p, self.cfg.d_safe_m)),
             "order": order_parameter(self.v), "cohesion_radius": cohesion_radius(self.p),
             "goal_error": float(np.linalg.norm(self.v - vd, axis=1).mean()),
             "mean_degree": float(self.nbr.sum(axis=1).mean())}
        m.update(connectivity_metrics(self._adj & self._adj.T))
        if len(self.obstacles):
            clear = self.obstacles.clearance(self.p)
            m["obstacle_clearance"] = float(clear.min())
            m["obstacle_collisions"] = float((clear < self.cfg.d_safe_m / 2).sum())
            m["blocked_links"] = float(np.triu(self.obstacles.blocked(self.p), 1).sum())
        return m

    def metrics(self) -> dict[str, float]:
        """Metrics of the last step (empty before the first step)."""
        return dict(self.history[-1]) if self.history else {}

    def snapshot(self) -> dict[str, Any]:
        """Arrays describing the current world (for rendering and observations)."""
        return {"t": self.t, "p": self.p.copy(), "v": self.v.copy(), "adj": self._adj.copy(),
                "rx": self._rx.copy(), "nbr": self.nbr.copy(), "kind": "flock",
                "threshold_dbm": self.cfg.channel.threshold_dbm,
                "obstacles": (self.obstacles.centres.copy(), self.obstacles.radii.copy())}


def summarise_flock(history: list[dict[str, float]], tail: int = 50) -> dict[str, float]:
    """Scalar summary of a flocking run (§4.4 metrics; §4.6 test 6 quantities)."""
    def col(k: str) -> np.ndarray:
        return np.array([h.get(k, np.nan) for h in history], dtype=float)

    def nanstat(f, x: np.ndarray) -> float:
        return float(f(x)) if np.isfinite(x).any() else float("nan")

    rounds = col("rounds")
    eps = col("epsilon")
    return {
        "steps": float(len(history)),
        "collisions_total": float(np.nansum(col("collisions"))),
        "obstacle_collisions_total": float(np.nansum(col("obstacle_collisions"))),
        "min_distance": float(np.nanmin(col("min_distance"))),
        "order_last": float(np.nanmean(col("order")[-tail:])),
        "connected_fraction": float(np.nanmean(col("connected"))),
        "lambda2_mean": float(np.nanmean(col("lambda2"))),
        "goal_error_last": float(np.nanmean(col("goal_error")[-tail:])),
        "rounds_mean": nanstat(np.nanmean, rounds),
        "rounds_max": nanstat(np.nanmax, rounds),
        "within_kmax_fraction": nanstat(np.nanmean, col("converged")),
        "epsilon_mean": nanstat(np.nanmean, eps),
        "epsilon_max": nanstat(np.nanmax, eps),
        "solve_ms_per_agent": float(np.nanmean(col("solve_ms_per_agent"))),
        "cohesion_radius_last": float(np.nanmean(col("cohesion_radius")[-tail:])),
    }
