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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from swarmgames.core.channel import Channel, ChannelConfig
from swarmgames.core.commgraph import CommConfig, TopologyTracker
from swarmgames.core.config import check
from swarmgames.core.kinematics import DoubleIntegrator, acceleration_labels, zero_label
from swarmgames.core.metrics import (
    cohesion_radius,
    collisions,
    connectivity_metrics,
    min_pair_distance,
    order_parameter,
)
from swarmgames.core.rng import SeedStreams, trajectory_hash
from swarmgames.games import equilibrium as eq
from swarmgames.games.payoffs_flocking import (
    FlockPayoffConfig,
    agent_multipliers,
    flock_stage_game,
    sequence_labels,
)
from swarmgames.games.solvers import mean_field_vi, mean_neighbor
from swarmgames.games.stage_game import StageGame
from swarmgames.policies.greedy import greedy_profile
from swarmgames.policies.reynolds import ReynoldsConfig, reynolds_accel

CONTROLLERS = ("game", "vi", "greedy", "reynolds")


@dataclass(frozen=True)
class GoalConfig:
    """Desired motion: a migration ``velocity`` or a ``point`` approached at ``speed``.

    ``spread`` perturbs each agent's desired velocity by U[−spread, spread] per axis (layout
    stream): individual goals make the game general-sum."""

    mode: str = "velocity"
    velocity: tuple[float, float] = (2.0, 1.0)
    point: tuple[float, float] = (400.0, 200.0)
    speed: float = 3.0
    slow_radius_m: float = 40.0
    spread: float = 0.3

    def __post_init__(self) -> None:
        check(self.mode in ("velocity", "point"), "mode", "must be 'velocity' or 'point'")
        check(self.speed >= 0, "speed", "must be >= 0")
        check(self.slow_radius_m > 0, "slow_radius_m", "must be > 0")
        check(self.spread >= 0, "spread", "must be >= 0")


@dataclass(frozen=True)
class SolverConfig:
    """Stage-game solver settings (§4.3 mean-neighbour BR; §5.3 VI for ``controller: vi``)."""

    k_max: int = 10
    inertia: float = 0.2
    switch_tol: float = 0.0
    pairwise: str = "exact"
    warm_start: str = "last"
    beta: float = 5.0
    vi_schedule: str = "colour"
    vi_tol: float = 1e-2
    vi_k_max: int = 20
    damping: float = 0.5

    def __post_init__(self) -> None:
        check(self.k_max >= 1, "k_max", "must be >= 1")
        check(0 <= self.inertia < 1, "inertia", "must be in [0, 1)")
        check(self.switch_tol >= 0, "switch_tol", "must be >= 0")
        check(self.pairwise in ("exact", "virtual"), "pairwise", "must be 'exact' or 'virtual'")
        check(self.warm_start in ("last", "unary"), "warm_start", "must be 'last' or 'unary'")
        check(self.beta > 0, "beta", "must be > 0")
        check(self.vi_schedule in mean_field_vi.SCHEDULES, "vi_schedule",
              f"must be one of {list(mean_field_vi.SCHEDULES)}")
        check(self.vi_tol > 0, "vi_tol", "must be > 0")
        check(self.vi_k_max >= 1, "vi_k_max", "must be >= 1")
        check(0 < self.damping <= 1, "damping", "must be in (0, 1]")


@dataclass(frozen=True)
class FlockConfig:
    """The flocking scenario (defaults: 8 UAVs, 25 labels, n = 2.4 channel, −85 dBm links)."""

    n_agents: int = 8
    steps: int = 300
    dt: float = 0.5
    u_max: float = 1.0
    v_max: float = 5.0
    label_levels: int = 5
    horizon: int = 1
    spacing_m: float = 15.0
    init_speed: float = 1.0
    d_safe_m: float = 3.0
    controller: str = "game"
    certify: bool = True
    goal: GoalConfig = field(default_factory=GoalConfig)
    payoff: FlockPayoffConfig = field(default_factory=FlockPayoffConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    reynolds: ReynoldsConfig = field(default_factory=ReynoldsConfig)
    channel: ChannelConfig = field(default_factory=ChannelConfig)
    comm: CommConfig = field(default_factory=CommConfig)

    def __post_init__(self) -> None:
        check(self.n_agents >= 1, "n_agents", "must be >= 1")
        check(self.steps >= 1, "steps", "must be >= 1")
        check(self.dt > 0, "dt", "must be > 0")
        check(self.u_max > 0, "u_max", "must be > 0")
        check(self.v_max > 0, "v_max", "must be > 0")
        check(self.label_levels >= 2, "label_levels", "must be >= 2")
        check(1 <= self.horizon <= 3, "horizon", "must be 1, 2 or 3")
        check(self.label_levels ** (2 * self.horizon) <= 1000, "horizon",
              "label_levels^(2·horizon) must be <= 1000 (use label_levels: 3 with horizon 2)")
        check(self.spacing_m > 0, "spacing_m", "must be > 0")
        check(self.d_safe_m > 0, "d_safe_m", "must be > 0")
        check(self.controller in CONTROLLERS, "controller", f"must be one of {list(CONTROLLERS)}")


class FlockSim:
    """Pure-python flocking simulator with ``step``/``metrics``/``snapshot`` (§2.4 API)."""

    def __init__(self, cfg: FlockConfig, seed: int = 0) -> None:
        self.cfg = cfg
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
        self.rng = SeedStreams(self.seed)
        cfg, n = self.cfg, self.cfg.n_agents
        lay = self.rng["layout"]
        side = int(np.ceil(np.sqrt(n)))
        grid = np.array([(i % side, i // side) for i in range(n)], dtype=float) * cfg.spacing_m
        self.p = grid + lay.uniform(-0.25, 0.25, size=(n, 2)) * cfg.spacing_m
        self.v = lay.uniform(-cfg.init_speed, cfg.init_speed, size=(n, 2))
        self.mult = agent_multipliers(n, cfg.payoff.heterogeneity, lay)
        self.goal_offset = lay.uniform(-cfg.goal.spread, cfg.goal.spread, size=(n, 2))
        self.shadow = self.channel.draw_shadowing(n, self.rng["shadowing"])
        self.tracker = TopologyTracker(cfg.comm, cfg.dt)
        self.labels = np.full(n, self.zero, dtype=int)
        self.q: np.ndarray | None = None
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
        """The current stage game (neighbourhoods from the stale routing view)."""
        goal = np.asarray(self.cfg.goal.point) if self.cfg.goal.mode == "point" else None
        return flock_stage_game(self.cfg.payoff, self.dyn, self.p, self.v,
                                self.desired_velocity(), self.nbr, self.seqs, self.mult, goal)

    # ------------------------------------------------------------------ control
    def controller_labels(self, game: StageGame | None) -> tuple[np.ndarray | None,
                                                                dict[str, float]]:
        """Labels chosen by the configured controller (None for the continuous Reynolds)."""
        cfg, s = self.cfg, self.cfg.solver
        # non-iterative controllers exchange no solver messages: rounds/converged are undefined
        info: dict[str, float] = {"rounds": np.nan, "converged": np.nan, "messages": 0.0}
        if cfg.controller == "reynolds":
            return None, info
        if cfg.controller == "greedy":
            assumed = np.full(self.n, self.zero, dtype=int)
            return greedy_profile(game, assumed).profile, info
        if cfg.controller == "vi":
            q0 = self.q if self.q is not None and self.q.shape == game.mask.shape else None
            res = mean_field_vi.solve(game, s.beta, q0, s.vi_schedule, s.damping, s.vi_tol,
                                      s.vi_k_max)
            self.q = res.q
        else:
            if s.warm_start == "last" and cfg.horizon == 1:
                init = self.labels
            else:
                init = np.argmax(game.masked(game.unary), axis=1)
            res = mean_neighbor.solve(game, init, self.rng["policy"], s.inertia, s.k_max,
                                      s.pairwise, s.switch_tol)
        info.update(rounds=float(res.rounds), converged=float(res.converged),
                    messages=float(res.messages))
        return res.profile, info

    def step(self, labels: np.ndarray | None = None) -> dict[str, float]:
        """Advance one control step.  ``labels`` (N,) overrides the controller (env use)."""
        skip_game = labels is None and self.cfg.controller == "reynolds"
        game = None if skip_game else self.stage_game()
        t0 = time.perf_counter()
        if labels is None:
            labels, info = self.controller_labels(game)
        else:
            labels = np.asarray(labels, dtype=int)
            info = {"rounds": np.nan, "converged": np.nan, "messages": 0.0}
        solve_s = time.perf_counter() - t0
        cert: dict[str, float] = {}
        if labels is not None:
            bad = ~game.mask[np.arange(self.n), labels]
            labels = np.where(bad, np.argmax(game.masked(game.unary), axis=1), labels)
            self.last_payoffs = game.payoffs(labels)
            if self.cfg.certify:
                r = eq.regrets(game, labels)
                cert = {"epsilon": float(r.max()), "nashconv": float(r.sum())}
            accel = self.seqs[labels, 0]
            self.labels = labels
        else:
            accel = reynolds_accel(self.cfg.reynolds, self.p, self.v, self.desired_velocity(),
                                   self.nbr, self.cfg.u_max)
            self.last_payoffs = np.zeros(self.n)
        self.p, self.v = self.dyn.step(self.p, self.v, accel)
        self.t += self.cfg.dt
        self.k += 1
        self._adj, self._rx = self._links()
        self.nbr = self.tracker.update(self.t, self._adj, self.p)
        m = self._measure()
        m.update(info)
        m.update(cert)
        m["solve_ms_per_agent"] = 1e3 * solve_s / self.n
        self.history.append(m)
        self.traj.append(np.concatenate([self.p, self.v], axis=1))
        return m

    def run(self, steps: int | None = None) -> list[dict[str, float]]:
        """Run ``steps`` (default cfg.steps) control steps; returns the history."""
        for _ in range(self.cfg.steps if steps is None else steps):
            self.step()
        return self.history

    # ------------------------------------------------------------------ outputs
    def _measure(self) -> dict[str, float]:
        vd = self.desired_velocity()
        m = {"t": self.t, "min_distance": min_pair_distance(self.p),
             "collisions": float(collisions(self.p, self.cfg.d_safe_m)),
             "order": order_parameter(self.v), "cohesion_radius": cohesion_radius(self.p),
             "goal_error": float(np.linalg.norm(self.v - vd, axis=1).mean()),
             "mean_degree": float(self.nbr.sum(axis=1).mean())}
        m.update(connectivity_metrics(self._adj & self._adj.T))
        return m

    def metrics(self) -> dict[str, float]:
        """Metrics of the last step (empty before the first step)."""
        return dict(self.history[-1]) if self.history else {}

    def snapshot(self) -> dict[str, Any]:
        """Arrays describing the current world (for rendering and observations)."""
        return {"t": self.t, "p": self.p.copy(), "v": self.v.copy(), "adj": self._adj.copy(),
                "rx": self._rx.copy(), "nbr": self.nbr.copy(), "kind": "flock",
                "threshold_dbm": self.cfg.channel.threshold_dbm}

    def trajectory_hash(self) -> str:
        """SHA-256 of the rounded state trajectory (determinism contract, §2.4)."""
        return trajectory_hash({"traj": np.stack(self.traj)})


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
