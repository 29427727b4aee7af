"""What every stage-game solver returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SolveResult:
    """Solver output: pure profile (the executed labels), optional mixed profile, and effort.

    ``rounds`` counts message rounds (one neighbour exchange each); ``converged`` is False when
    the round cap was hit; ``messages`` counts point-to-point neighbour messages.
    """

    profile: np.ndarray
    rounds: int
    converged: bool
    q: np.ndarray | None = None
    messages: int = 0
    trace: list[float] = field(default_factory=list)


def tie_break_argmax(values: np.ndarray, current: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """Row argmax that keeps ``current`` when it is within ``tol`` of the maximum (prevents
    switching between equally good labels, which would break convergence detection)."""
    best = np.argmax(values, axis=1)
    rows = np.arange(len(values))
    keep = values[rows, current] >= values[rows, best] - tol
    return np.where(keep, current, best)
