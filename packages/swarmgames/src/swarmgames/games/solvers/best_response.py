"""Asynchronous (Gauss–Seidel) best response in the true game, optionally with full
information.  In an exact potential game every improving move raises Φ, so it reaches a pure NE
(ε = 0) in finitely many sweeps (design note §4.2, §4.6 test 2)."""

from __future__ import annotations

import numpy as np

from swarmgames.games.solvers.result import SolveResult
from swarmgames.games.stage_game import StageGame


def solve(game: StageGame, init: np.ndarray, order: np.ndarray | None = None,
          k_max: int = 100, tol: float = 1e-12) -> SolveResult:
    """Sweep agents in ``order``; each switches to a best response if it gains > ``tol``.

    A round is one full sweep; stops after a sweep without switches."""
    prof = np.asarray(init, dtype=int).copy()
    order = np.arange(game.n) if order is None else np.asarray(order)
    for rounds in range(1, k_max + 1):
        changed = False
        for i in order:
            vals = game.masked(game.local_payoffs(game.onehot(prof)))[i]
            best = int(np.argmax(vals))
            if vals[best] > vals[prof[i]] + tol:
                prof[i] = best
                changed = True
        if not changed:
            return SolveResult(prof, rounds, True, messages=rounds * int(game.nbr.sum()))
    return SolveResult(prof, k_max, False, messages=k_max * int(game.nbr.sum()))
