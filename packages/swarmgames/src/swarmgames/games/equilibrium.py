"""Equilibrium certificates in the *true* graphical game (design note §4.3, §5.3, §6).

regret_i = max_{a∈A_i} u_i(a, a_−i) − u_i(a_i, a_−i);  ε = max_i regret_i;  NashConv = Σ_i regret_i.
ELBO(q) = β·E_q[Φ] + Σ_i H(q_i)  (mean-field VI objective; Φ the potential, §5.3).
"""

from __future__ import annotations

import numpy as np

from swarmgames.games.stage_game import StageGame


def regrets(game: StageGame, profile: np.ndarray) -> np.ndarray:
    """(N,) per-agent regret of a pure profile."""
    profile = np.asarray(profile, dtype=int)
    local = game.masked(game.local_payoffs(game.onehot(profile)))
    cur = local[np.arange(game.n), profile]
    return np.maximum(local.max(axis=1) - cur, 0.0)


def epsilon(game: StageGame, profile: np.ndarray) -> float:
    """ε = max_i regret_i (0 iff the profile is a pure NE)."""
    return float(regrets(game, profile).max())


def nash_conv(game: StageGame, profile: np.ndarray) -> float:
    """NashConv = Σ_i regret_i."""
    return float(regrets(game, profile).sum())


def mixed_regrets(game: StageGame, q: np.ndarray) -> np.ndarray:
    """(N,) regret of a mixed profile: max_a E[u_i | a] − E_q[u_i]."""
    local = game.local_payoffs(q)
    best = game.masked(local).max(axis=1)
    return np.maximum(best - np.sum(q * local, axis=1), 0.0)


def entropy(q: np.ndarray) -> np.ndarray:
    """(N,) Shannon entropy of each row (0·log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(q > 0, q * np.log(q), 0.0)
    return -t.sum(axis=1)


def elbo(game: StageGame, q: np.ndarray, beta: float) -> float:
    """ELBO(q) = β·E_q[Φ] + Σ_i H(q_i) (valid for potential games)."""
    return beta * game.expected_potential(q) + float(entropy(q).sum())


def logit_response(game: StageGame, q: np.ndarray, beta: float,
                   rows: np.ndarray | None = None,
                   messages: np.ndarray | None = None) -> np.ndarray:
    """softmax(β·E_{q_−i}[u_i | a]) over feasible labels, for ``rows`` (default: all); only
    those rows' payoffs are computed.  ``messages``: current ``game.factor_messages(q)``."""
    local = game.local_payoffs(q, rows, messages)
    mask = game.mask if rows is None else game.mask[rows]
    z = np.where(mask, beta * local, -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    e = np.where(mask, np.exp(z), 0.0)
    return e / e.sum(axis=1, keepdims=True)


def fixed_point_residual(game: StageGame, q: np.ndarray, beta: float) -> float:
    """max_i ‖q_i − softmax(β·E[u_i | a_i])‖∞ (0 at a logit-QRE)."""
    return float(np.abs(q - logit_response(game, q, beta)).max())


def potential_check(game: StageGame, rng: np.random.Generator, trials: int = 50) -> float:
    """Largest |Δu_i − ΔΦ| over random profiles and unilateral deviations (0 for an exact
    potential game, §4.6 test 2)."""
    worst = 0.0
    feas = [np.flatnonzero(game.mask[i]) for i in range(game.n)]
    for _ in range(trials):
        a = np.array([rng.choice(f) for f in feas])
        i = int(rng.integers(game.n))
        b = a.copy()
        b[i] = rng.choice(feas[i])
        du = game.payoffs(b)[i] - game.payoffs(a)[i]
        dphi = game.potential(b) - game.potential(a)
        worst = max(worst, abs(du - dphi))
    return worst
