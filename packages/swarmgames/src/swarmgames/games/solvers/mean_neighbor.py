"""Decentralised best response to the virtual mean neighbour (design note §4.3).

Each round every agent receives its neighbours' predicted states from the previous round, forms
the virtual mean neighbour m_i and best-responds; with probability ρ (inertia) it keeps its label.
Rounds stop when every agent's label is already a best response (a pure NE of the surrogate) or
after ``k_max`` rounds.

``pairwise='exact'`` evaluates pairwise terms against the neighbours' actual last labels
through the game's L×L pair tables (the note's pseudo-code; fixed points are then pure NE of
the true game).  ``pairwise='virtual'`` is the virtual mean-neighbourhood decomposition: the
aggregate terms (cohesion, alignment) are played against the virtual mean neighbour m_i -- one
2-player game per agent whatever |N_i| -- and the one non-aggregative term, the separation
hinge χ, is evaluated from the kernel against each neighbour inside the danger radius at its
announced label (E_close·L evaluations per round, no L×L tables).  Issue 22 measured the
earlier version, which replaced Σ_j χ(f_i, f_j) by |N_i|·χ(f_i, m_i), colliding (67
collisions at N = 8, 2270 at N = 32: the mean neighbour is rarely where the closest neighbour
is).  For pure profiles the two modes now give the same payoffs up to rounding.
"""

from __future__ import annotations

import numpy as np

from swarmgames.games.solvers.result import SolveResult, tie_break_argmax
from swarmgames.games.stage_game import StageGame


def surrogate_payoffs(game: StageGame, profile: np.ndarray, pairwise: str) -> np.ndarray:
    """(N, L) the payoffs each agent best-responds to in one round."""
    if pairwise == "exact":
        return game.local_payoffs(game.onehot(profile))
    if game.kernel is None and len(game.pair_src):
        raise ValueError("pairwise='virtual' needs game.kernel (pair tables from a kernel)")
    out = game.unary.copy()
    if game.features is not None:
        # the virtual mean neighbour of a pure profile: the mean of the announced features
        # (the one-hot expectation E_q[f_j] of mean_neighbour, without the (N, L, D) products)
        out += game.aggregate_term(game.mean_op @ game.features[np.arange(game.n), profile])
        out += game.kernel_pair_term(profile)
    return out


def solve(game: StageGame, init: np.ndarray, rng: np.random.Generator | None = None,
          inertia: float = 0.0, k_max: int = 10, pairwise: str = "exact",
          switch_tol: float = 0.0) -> SolveResult:
    """Run simultaneous best-response rounds from ``init``.

    Args:
        game: the stage game.
        init: (N,) initial labels (e.g. last stage's labels, or argmax of the unary term).
        rng: stream for the inertia coin flips (required when ``inertia > 0``).
        inertia: probability ρ ∈ [0, 1) that an agent keeps its label although it could improve.
        k_max: round cap.
        pairwise: 'exact' or 'virtual' (see module doc).
        switch_tol: an agent switches only if it gains more than this (ε-best response); a
            converged profile is then an ε-NE of the surrogate with ε ≤ switch_tol.
    """
    if not 0 <= inertia < 1:
        raise ValueError("inertia must be in [0, 1)")
    if inertia > 0 and rng is None:
        raise ValueError("inertia > 0 needs an rng stream")
    prof = np.asarray(init, dtype=int).copy()
    bad = ~game.mask[np.arange(game.n), prof]
    if bad.any():
        prof[bad] = np.argmax(game.masked(game.unary[bad]), axis=1)
    msgs_per_round = int(game.nbr.sum())
    rounds = 0
    trace = []
    for _ in range(k_max):
        vals = game.masked(surrogate_payoffs(game, prof, pairwise))
        br = tie_break_argmax(vals, prof, max(switch_tol, 1e-12))
        want = br != prof
        trace.append(float(want.sum()))
        if not want.any():
            return SolveResult(prof, rounds, True, messages=rounds * msgs_per_round, trace=trace)
        rounds += 1
        move = want if inertia == 0 else want & (rng.random(game.n) >= inertia)
        if not move.any():  # everyone hesitated: let one improving agent move
            move[np.flatnonzero(want)[0]] = True
        prof = np.where(move, br, prof)
    vals = game.masked(surrogate_payoffs(game, prof, pairwise))
    converged = bool((tie_break_argmax(vals, prof, max(switch_tol, 1e-12)) == prof).all())
    return SolveResult(prof, rounds, converged, messages=rounds * msgs_per_round, trace=trace)
