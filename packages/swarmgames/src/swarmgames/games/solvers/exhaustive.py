"""Exhaustive enumeration for small games (design note §4.4, §4.6 test 4, §5.6 test 3).

Lists every pure Nash equilibrium and the potential/welfare maximiser by brute force over the
feasible joint profiles (Π_i |A_i| of them; refuse above ``limit``)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from swarmgames.games.equilibrium import regrets
from swarmgames.games.stage_game import StageGame


@dataclass
class Enumeration:
    """Brute-force facts about a small game."""

    pure_ne: list[tuple[int, ...]]
    best_profile: tuple[int, ...]
    best_value: float
    n_profiles: int


def enumerate_game(game: StageGame, objective: str = "potential", limit: int = 200_000,
                   tol: float = 1e-9) -> Enumeration:
    """Enumerate feasible profiles; ``objective`` is 'potential' (Φ) or 'welfare' (Σ u_i)."""
    feas = [np.flatnonzero(game.mask[i]).tolist() for i in range(game.n)]
    total = int(np.prod([len(f) for f in feas]))
    if total > limit:
        raise ValueError(f"{total} joint profiles exceed the enumeration limit {limit}")
    ne: list[tuple[int, ...]] = []
    best_v, best_p = -np.inf, None
    for prof in itertools.product(*feas):
        a = np.array(prof)
        if regrets(game, a).max() <= tol:
            ne.append(prof)
        v = game.potential(a) if objective == "potential" else float(game.payoffs(a).sum())
        if v > best_v:
            best_v, best_p = v, prof
    return Enumeration(ne, best_p, float(best_v), total)
