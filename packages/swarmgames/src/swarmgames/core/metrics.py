"""Connectivity and swarm-shape metrics (design note §2.3, §4.4, §5.4)."""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from swarmgames.core.commgraph import hop_matrix


def components(adj: np.ndarray) -> tuple[int, np.ndarray]:
    """Number of connected components of the undirected graph adj ∨ adjᵀ, and the labels."""
    sym = adj | adj.T
    n, lab = connected_components(csr_matrix(sym.astype(float)), directed=False)
    return int(n), lab


def algebraic_connectivity(adj: np.ndarray) -> float:
    """λ2 of the Laplacian of the undirected graph (exact eigvalsh; 0 when disconnected)."""
    n = adj.shape[0]
    if n < 2:
        return 0.0
    a = (adj | adj.T).astype(float)
    lap = np.diag(a.sum(axis=1)) - a
    ev = np.linalg.eigvalsh(lap)
    return float(max(ev[1], 0.0))


def connectivity_metrics(adj: np.ndarray) -> dict[str, float]:
    """Components, largest-component fraction, λ2, mean/max hops over reachable ordered pairs."""
    n = adj.shape[0]
    ncomp, lab = components(adj)
    largest = np.bincount(lab).max() / n if n else 0.0
    hops = hop_matrix(adj | adj.T)
    off = ~np.eye(n, dtype=bool)
    finite = np.isfinite(hops) & off
    return {
        "components": float(ncomp),
        "largest_fraction": float(largest),
        "connected": float(ncomp == 1),
        "lambda2": algebraic_connectivity(adj),
        "mean_hops": float(hops[finite].mean()) if finite.any() else 0.0,
        "max_hops": float(hops[finite].max()) if finite.any() else 0.0,
        "reachable_per_node": float(finite.sum() / n) if n else 0.0,
    }


def ue_association(ue_rx: np.ndarray, threshold_dbm: float) -> np.ndarray:
    """Index of the strongest UAV each UE hears above threshold, −1 if none.

    ``ue_rx`` is (N_uav, N_ue) received power (UEs are stations attached to one UAV AP)."""
    best = np.argmax(ue_rx, axis=0)
    ok = ue_rx[best, np.arange(ue_rx.shape[1])] >= threshold_dbm
    return np.where(ok, best, -1)


def ue_pair_reachability(assoc: np.ndarray, backbone_adj: np.ndarray,
                         pairs: str = "halves") -> float:
    """Fraction of UE pairs that can reach each other through the UAV backbone.

    ``pairs='halves'`` pairs the first half with the second half (rosns3 ping apps, §2.3);
    ``'all'`` uses every unordered pair."""
    u = len(assoc)
    if u < 2:
        return 1.0
    _, lab = components(backbone_adj)
    if pairs == "halves":
        h = u // 2
        pr = [(a, b) for a in range(h) for b in range(h, u)]
    else:
        pr = [(a, b) for a in range(u) for b in range(a + 1, u)]
    ok = [assoc[a] >= 0 and assoc[b] >= 0 and lab[assoc[a]] == lab[assoc[b]] for a, b in pr]
    return float(np.mean(ok))


def min_pair_distance(pos: np.ndarray) -> float:
    """Smallest inter-agent distance (inf for fewer than two agents)."""
    if len(pos) < 2:
        return float("inf")
    d = np.linalg.norm(pos[:, None] - pos[None], axis=2)
    return float(d[np.triu_indices(len(pos), 1)].min())


def collisions(pos: np.ndarray, d_safe: float) -> int:
    """Number of unordered pairs closer than ``d_safe``."""
    d = np.linalg.norm(pos[:, None] - pos[None], axis=2)
    return int((d[np.triu_indices(len(pos), 1)] < d_safe).sum())


def order_parameter(vel: np.ndarray) -> float:
    """Polarisation ‖Σ v‖ / Σ ‖v‖ ∈ [0, 1] (1 = all aligned; 0 when nobody moves)."""
    s = np.linalg.norm(vel, axis=1).sum()
    return float(np.linalg.norm(vel.sum(axis=0)) / s) if s > 1e-12 else 0.0


def cohesion_radius(pos: np.ndarray) -> float:
    """Largest distance to the swarm centroid."""
    return float(np.linalg.norm(pos - pos.mean(axis=0), axis=1).max())
