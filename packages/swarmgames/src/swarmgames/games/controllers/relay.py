"""Communication-aware coverage baselines beside Lloyd (issue 22; design note §5.4).

* :func:`connected_lloyd_step` -- Lloyd/CVT with a connectivity constraint: every UAV moves
  toward its Voronoi centroid, but the moves are shortened (halved, up to ``halvings`` times,
  then cancelled) until every edge of a spanning forest of the current backbone stays within
  ``keep_m``.  Keeping a spanning tree keeps the backbone connected, the classical
  connectivity-maintenance constraint (Zavlanos & Pappas 2008) imposed on Lloyd's descent.
* :func:`relay_lattice_targets` -- a static relay lattice: the N points of a triangular lattice
  with spacing below the link range closest to the ROI centre, assigned to UAVs by minimum
  total travel (Hungarian).  Neighbouring lattice points are in range, so the deployed
  backbone is connected by construction; coverage is whatever that geometry gives.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def connected_lloyd_step(pos: np.ndarray, targets: np.ndarray, tree: np.ndarray,
                         max_step: float, keep_m: float, halvings: int = 12) -> np.ndarray:
    """New (N, 2) positions: moves toward ``targets`` (at most ``max_step``) scaled per UAV so
    that no edge of the symmetric boolean ``tree`` ends longer than ``max(keep_m, its current
    length)`` (an edge already longer than ``keep_m`` may not grow)."""
    delta = targets - pos
    dist = np.linalg.norm(delta, axis=1, keepdims=True)
    delta = delta * np.minimum(1.0, max_step / np.maximum(dist, 1e-12))
    i, j = np.nonzero(np.triu(tree | tree.T))
    limit = np.maximum(keep_m, np.linalg.norm(pos[i] - pos[j], axis=1)) + 1e-9
    alpha = np.ones(len(pos))
    # each pass after the halvings cancels at least one more move, and an edge whose two ends
    # stay keeps its current length, so the loop ends with every edge within its limit
    for attempt in range(halvings + len(pos) + 1):
        new = pos + alpha[:, None] * delta
        bad = np.linalg.norm(new[i] - new[j], axis=1) > limit
        if not bad.any():
            return new
        ends = np.unique(np.concatenate([i[bad], j[bad]]))
        alpha[ends] = alpha[ends] * 0.5 if attempt < halvings else 0.0
    return pos.copy()


def triangular_lattice(centre: np.ndarray, spacing: float, n: int) -> np.ndarray:
    """The ``n`` points of a triangular lattice (one point at ``centre``) closest to it."""
    rings = int(np.ceil(np.sqrt(n))) + 2
    a, b = np.meshgrid(np.arange(-rings, rings + 1), np.arange(-rings, rings + 1))
    pts = np.stack([a.ravel() + 0.5 * b.ravel(), b.ravel() * np.sqrt(3) / 2], axis=1) * spacing
    order = np.lexsort((pts[:, 1], pts[:, 0], np.linalg.norm(pts, axis=1).round(6)))
    return centre[None, :] + pts[order[:n]]


def relay_lattice_targets(pos: np.ndarray, centre: np.ndarray, spacing: float,
                          area: float) -> np.ndarray:
    """(N, 2) lattice points (clipped to the area) assigned to the UAVs at ``pos`` by minimum
    total distance."""
    lattice = np.clip(triangular_lattice(np.asarray(centre, dtype=float), spacing, len(pos)),
                      0.0, area)
    cost = np.linalg.norm(pos[:, None] - lattice[None], axis=2)
    rows, cols = linear_sum_assignment(cost)
    out = pos.copy()
    out[rows] = lattice[cols]
    return out
