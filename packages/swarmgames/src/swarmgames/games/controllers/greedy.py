"""Independent/greedy baseline (design note §4.4): every agent best-responds once, predicting
its neighbours at constant velocity (their zero-acceleration label), without any message round."""

from __future__ import annotations

import numpy as np

from swarmgames.games.solvers.result import SolveResult
from swarmgames.games.stage_game import StageGame


def greedy_profile(game: StageGame, assumed: np.ndarray) -> SolveResult:
    """Best response of each agent to the profile ``assumed`` (e.g. all zero-acceleration)."""
    vals = game.masked(game.local_payoffs(game.onehot(assumed)))
    return SolveResult(np.argmax(vals, axis=1), rounds=0, converged=False)
