"""Lloyd / CVT coverage baseline (Cortés et al. 2004), design note §5.4: each UAV moves toward
the density-weighted centroid of its Voronoi cell of the ROI sample points (comm-unaware)."""

from __future__ import annotations

import numpy as np


def lloyd_targets(pos: np.ndarray, points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(N, 2) weighted centroids of the nearest-UAV cells (empty cell: stay)."""
    d = np.linalg.norm(points[:, None, :] - pos[None, :, :], axis=2)
    owner = np.argmin(d, axis=1)
    out = pos.copy()
    for i in range(len(pos)):
        sel = owner == i
        w = weights[sel]
        if w.sum() > 0:
            out[i] = (points[sel] * w[:, None]).sum(axis=0) / w.sum()
    return out
