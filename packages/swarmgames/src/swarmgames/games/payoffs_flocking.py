"""Flocking payoffs for the graphical-game UAV swarm (design note §4.2).

u_i(a_i, a_N_i) = φ_i(x_i'(a_i)) + |N_i|·ψ_i(x_i', m_i) + Σ_{j∈N_i} χ(x_i', x_j')

* φ_i (own): −w_goal‖v_i' − v_i^des‖² − w_pos‖p̂_i − g‖² − w_control‖u_i‖²
  − w_obstacle·max(0, d_obs − c_i)², c_i the smaller obstacle clearance of p_i' and p̂_i
  (only with obstacles; own-state only, so it is unary and both solvers see it exactly);
* ψ_i (aggregate, virtual mean neighbour): cohesion −w_cohesion‖p̂_i − m^p‖²,
  alignment −w_alignment‖v_i' − m^v‖²;
* χ (pairwise safety, not aggregative): −w_separation·max(0, d_sep − ‖p̂_i − p̂_j‖)².

p̂ = p' + v'·lookahead is the predicted position a short lookahead ahead [R]: with a one-step
prediction a myopic double-integrator controller barely sees position terms (½uτ²), so the
lookahead gives the damped (PD-like) response the ICRA-21 controller gets from its roost term.
Per-agent weight multipliers (``heterogeneity``) make the game general-sum.

``aggregate_scaling``: ``degree`` is the note's |N_i|·ψ_i (exact potential game in the symmetric
case); ``mean`` uses ψ_i alone (weights divided by |N_i|), so an agent's coupling to its
neighbourhood does not grow with the neighbourhood size -- the best-response contraction rate,
hence the rounds per stage, then stays bounded as N grows (the scalability claim of §4.6.6) [R].
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from swarmgames.core.config import check
from swarmgames.core.kinematics import DoubleIntegrator
from swarmgames.core.obstacles import Obstacles
from swarmgames.games.stage_game import StageGame


@dataclass(frozen=True)
class FlockPayoffConfig:
    """Weights of the flocking payoff family (all reconstructed [R], tuned once)."""

    w_goal: float = 1.0
    w_pos: float = 0.0
    w_control: float = 1.0
    w_cohesion: float = 0.03
    w_alignment: float = 0.5
    w_separation: float = 0.8
    d_sep_m: float = 10.0
    lookahead_s: float = 1.0
    heterogeneity: float = 0.2
    aggregate_scaling: str = "mean"
    w_obstacle: float = 2.0
    d_obs_m: float = 10.0

    def __post_init__(self) -> None:
        for k in ("w_goal", "w_pos", "w_control", "w_cohesion", "w_alignment", "w_separation",
                  "lookahead_s", "w_obstacle", "d_obs_m"):
            check(getattr(self, k) >= 0, k, "must be >= 0")
        check(self.d_sep_m > 0, "d_sep_m", "must be > 0")
        check(0 <= self.heterogeneity < 1, "heterogeneity", "must be in [0, 1)")
        check(self.aggregate_scaling in ("degree", "mean"), "aggregate_scaling",
              "must be 'degree' or 'mean'")


class SeparationKernel:
    """χ(f_i, f_j) = −w·max(0, d_sep − ‖f_i[:2] − f_j[:2]‖)² (payoff to i)."""

    def __init__(self, weight: float, d_sep: float) -> None:
        self.weight, self.d_sep = weight, d_sep

    def __call__(self, fi: np.ndarray, fj: np.ndarray) -> np.ndarray:
        dx = fi[..., 0] - fj[..., 0]            # components, not einsum over the last axis:
        dy = fi[..., 1] - fj[..., 1]            # the virtual solver calls this every round
        h = np.maximum(0.0, self.d_sep - np.sqrt(dx * dx + dy * dy))
        return -self.weight * h * h


def sequence_labels(base: np.ndarray, horizon: int) -> np.ndarray:
    """(L^H, H, 2) receding-horizon label sequences (stochastic-game extension, §4.3)."""
    seqs = list(itertools.product(range(len(base)), repeat=horizon))
    return base[np.array(seqs)]


def rollout(dyn: DoubleIntegrator, p: np.ndarray, v: np.ndarray,
            seqs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Roll every agent through every label sequence: final p, v (N, L, 2) and feasibility."""
    pp = np.repeat(p[:, None, :], len(seqs), axis=1)
    vv = np.repeat(v[:, None, :], len(seqs), axis=1)
    ok = np.ones(pp.shape[:2], dtype=bool)
    for h in range(seqs.shape[1]):
        pp, vv = dyn.predict(pp, vv, seqs[None, :, h, :])
        ok &= np.max(np.abs(vv), axis=2) <= dyn.v_max + 1e-9
    if not ok.any(axis=1).all():
        empty = ~ok.any(axis=1)
        excess = np.max(np.abs(vv[empty]), axis=2)
        ok[empty, np.argmin(excess, axis=1)] = True
    return pp, vv, ok


def agent_multipliers(n: int, heterogeneity: float, rng: np.random.Generator) -> np.ndarray:
    """(N, 5) per-agent multipliers U[1−h, 1+h] for (goal, control, cohesion, alignment, sep)."""
    if heterogeneity == 0:
        return np.ones((n, 5))
    return rng.uniform(1 - heterogeneity, 1 + heterogeneity, size=(n, 5))


def flock_stage_game(cfg: FlockPayoffConfig, dyn: DoubleIntegrator, p: np.ndarray,
                     v: np.ndarray, v_des: np.ndarray, nbr: np.ndarray, seqs: np.ndarray,
                     mult: np.ndarray, goal: np.ndarray | None = None,
                     obstacles: Obstacles | None = None) -> StageGame:
    """Build the stage game at state (p, v) for label sequences ``seqs`` (L, H, 2).

    Pair edges are kept only for neighbour pairs whose separation term can be non-zero this
    stage (the others are identically 0), keeping the cost ~linear in N for sparse swarms; their
    L×L tables are built from the kernel only when a caller needs them (mixed profiles, exact
    pairwise best response, certification).
    Aggregate weights use agent i's own multipliers (general-sum); the separation weight is
    shared so χ stays symmetric.
    """
    n = len(p)
    pp, vv, mask = rollout(dyn, p, v, seqs)
    horizon = seqs.shape[1]
    look = cfg.lookahead_s
    phat = pp + vv * look
    feats = np.concatenate([phat, vv], axis=2)
    unary = -cfg.w_goal * mult[:, 0:1] * np.sum((vv - v_des[:, None, :]) ** 2, axis=2)
    unary -= cfg.w_control * mult[:, 1:2] * np.sum(seqs**2, axis=(1, 2))[None, :] / horizon
    if cfg.w_pos > 0 and goal is not None:
        unary -= cfg.w_pos * np.sum((phat - goal) ** 2, axis=2)
    if obstacles is not None and len(obstacles) and cfg.w_obstacle > 0:
        clear = np.minimum(obstacles.clearance(pp), obstacles.clearance(phat))
        unary -= cfg.w_obstacle * np.maximum(0.0, cfg.d_obs_m - clear) ** 2
    agg = np.stack([cfg.w_cohesion * mult[:, 2]] * 2 + [cfg.w_alignment * mult[:, 3]] * 2,
                   axis=1)
    if cfg.aggregate_scaling == "mean":
        agg = agg / np.maximum(nbr.sum(axis=1), 1)[:, None]
    kernel = SeparationKernel(cfg.w_separation, cfg.d_sep_m) if cfg.w_separation > 0 else None
    src = dst = np.zeros(0, dtype=int)
    if kernel is not None:
        reach = np.linalg.norm(phat - phat[:, :1, :], axis=2).max(axis=1)  # label spread
        cur = phat[np.arange(n), 0]
        d = np.linalg.norm(cur[:, None] - cur[None], axis=2)
        close = nbr & (d <= cfg.d_sep_m + reach[:, None] + reach[None, :] + 1e-9)
        src, dst = np.nonzero(close)
    # pair tables are built from the kernel on first use (StageGame.tables)
    return StageGame(mask=mask, unary=unary, nbr=nbr, pair_src=src, pair_dst=dst, pair=None,
                     features=feats, agg_weight=agg, kernel=kernel)
