"""CoCo coverage payoffs (design note §5.2): ROI from UEs, probabilistic coverage, link keeping.

Cooperative stage objective over candidate waypoints p_i'(a_i):

    U(a) = w_cov·Cov(a) + w_link·Σ_{(i,j)∈E_t} b(p_i', p_j')
           − w_col·Σ_{(i,j)} 1[‖p_i' − p_j'‖ < d_safe] − w_mv·Σ_i ‖p_i' − p_i‖²,
    Cov(a) = Σ_x w(x)·[1 − Π_i (1 − s(p_i', x))]

Graphical surrogate (default, second-order inclusion–exclusion over *neighbour* pairs):
Cov ≈ Σ_i Σ_x w s_i(x) − Σ_{i<j, j∈N_i} Σ_x w s_i(x) s_j(x), so U = Σ_i θ_i + Σ_{(i,j)∈E_t} θ_ij.
E_t is the neighbourhood graph (routing hop ≤ k by default): only agents that can exchange
messages interact -- the communication-aware neighbourhood selection of CoCo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import minimum_spanning_tree

from swarmgames.core.channel import Channel
from swarmgames.core.config import check
from swarmgames.games.stage_game import StageGame


@dataclass(frozen=True)
class CoverageWeights:
    """Payoff weights (reconstructed [R]; coverage in percentage points by default)."""

    w_cov: float = 100.0
    w_link: float = 10.0
    w_col: float = 50.0
    w_mv: float = 0.0
    d_safe_m: float = 5.0

    def __post_init__(self) -> None:
        for k in ("w_cov", "w_link", "w_col", "w_mv", "d_safe_m"):
            check(getattr(self, k) >= 0, k, "must be >= 0")


@dataclass(frozen=True)
class RoiConfig:
    """Elliptical ROI fitted to UE positions (§5.2): κ-sigma ellipse of N(μ, cov + σ_min²I)."""

    kappa: float = 2.0
    sigma_min_m: float = 50.0
    grid: int = 30
    ue_weight: float = 0.5

    def __post_init__(self) -> None:
        check(self.kappa > 0, "kappa", "must be > 0")
        check(self.sigma_min_m > 0, "sigma_min_m", "must be > 0")
        check(self.grid >= 2, "grid", "must be >= 2")
        check(0 <= self.ue_weight < 1, "ue_weight", "must be in [0, 1)")


@dataclass
class Roi:
    """ROI sample points and normalised weights (sum to 1), plus the ellipse parameters."""

    points: np.ndarray
    weights: np.ndarray
    mean: np.ndarray
    cov: np.ndarray
    kappa: float


def fit_roi(cfg: RoiConfig, ues: np.ndarray, area: float) -> Roi:
    """Gaussian fit to UE positions, grid over [0, area]² clipped to the κ-ellipse."""
    mu = ues.mean(axis=0)
    cov = (np.cov(ues.T, bias=True) if len(ues) > 1 else np.zeros((2, 2)))
    cov = cov + cfg.sigma_min_m**2 * np.eye(2)
    axis = (np.arange(cfg.grid) + 0.5) * area / cfg.grid
    gx, gy = np.meshgrid(axis, axis, indexing="ij")
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    inv = np.linalg.inv(cov)
    diff = grid - mu
    md2 = np.einsum("nd,de,ne->n", diff, inv, diff)
    inside = md2 <= cfg.kappa**2
    pts = grid[inside]
    w = np.exp(-0.5 * md2[inside])
    w = (1 - cfg.ue_weight) * w / w.sum() if w.sum() > 0 else w
    pts = np.concatenate([pts, ues], axis=0)
    w = np.concatenate([w, np.full(len(ues), cfg.ue_weight / len(ues))])
    return Roi(pts, w / w.sum(), mu, cov, cfg.kappa)


def service_quality(channel: Channel, pos: np.ndarray, points: np.ndarray) -> np.ndarray:
    """s(p, x) = logistic((P_r(‖p − x‖) − θ_UE)/s) for positions (..., 2) → (..., M)."""
    return channel.quality(channel.ground_rx(pos, points), channel.cfg.ue_threshold_dbm)


def backbone_quality(channel: Channel, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """b(p, p') = logistic((P_r(‖p − p'‖) − θ_bb)/s), broadcasting over leading dims."""
    d = np.linalg.norm(a - b, axis=-1)
    return channel.quality(channel.rx_power(d), channel.cfg.threshold_dbm)


def link_keeping_pairs(mode: str, nbr: np.ndarray, rx: np.ndarray) -> np.ndarray:
    """Pairs that carry the link term: ``all`` neighbour pairs, or ``tree``, a maximum-RSS
    spanning forest of the neighbourhood graph [R].  Keeping every link of a clustered swarm
    pins it together; keeping a spanning forest preserves connectivity while letting the
    swarm spread (connectivity maintenance on a spanning tree, cf. Zavlanos & Pappas)."""
    sym = nbr | nbr.T
    if mode == "all":
        return sym
    r = np.where(np.isfinite(rx), rx, np.nan)
    r = np.fmax(r, r.T)
    top = np.nanmax(r[sym]) if sym.any() else 0.0
    wts = np.where(sym, top + 1.0 - np.nan_to_num(r, nan=top), 0.0)
    tree = minimum_spanning_tree(csr_matrix(np.triu(wts))).toarray() > 0
    return tree | tree.T


def exact_coverage(channel: Channel, pos: np.ndarray, roi: Roi) -> float:
    """Cov = Σ_x w(x)·[1 − Π_i (1 − s(p_i, x))]."""
    s = service_quality(channel, pos, roi.points)
    return float(np.sum(roi.weights * (1 - np.prod(1 - s, axis=0))))


def coverage_ratio(channel: Channel, pos: np.ndarray, roi: Roi) -> float:
    """Weighted fraction of ROI points with s ≥ 0.5 for some UAV (§5.4)."""
    s = service_quality(channel, pos, roi.points)
    return float(np.sum(roi.weights * (s.max(axis=0) >= 0.5)))


def exact_objective(w: CoverageWeights, channel: Channel, pos: np.ndarray, roi: Roi) -> float:
    """Fixed team objective J(p) = w_cov·Cov + w_link·Σ_{i<j} b_ij − w_col·#(pairs < d_safe).

    The link term runs over *all* pairs (b decays smoothly with distance) so that J does not
    depend on the changing graph; sequential execution is exact coordinate ascent on J."""
    n = len(pos)
    iu = np.triu_indices(n, 1)
    b = backbone_quality(channel, pos[:, None], pos[None])[iu]
    d = np.linalg.norm(pos[:, None] - pos[None], axis=2)[iu]
    return (w.w_cov * exact_coverage(channel, pos, roi) + w.w_link * float(b.sum())
            - w.w_col * float((d < w.d_safe_m).sum()))


def coverage_stage_game(w: CoverageWeights, channel: Channel, cand: np.ndarray, pos: np.ndarray,
                        roi: Roi, nbr: np.ndarray,
                        link_pairs: np.ndarray | None = None) -> StageGame:
    """Stage game over candidate waypoints ``cand`` (N, L, 2) with symmetric neighbourhoods.

    ``link_pairs`` (N, N) selects the neighbour pairs that carry the link-keeping term
    (default: every neighbour pair, i.e. E_t of §5.2)."""
    nbr = nbr | nbr.T
    lp = nbr if link_pairs is None else (link_pairs | link_pairs.T) & nbr
    s = service_quality(channel, cand, roi.points)  # (N, L, M)
    unary = (w.w_cov * np.einsum("nlm,m->nl", s, roi.weights)
             - w.w_mv * np.sum((cand - pos[:, None]) ** 2, axis=2))
    # tables only where a link-keeping or collision term can be non-zero (sparse: a spanning
    # forest plus pairs whose candidate sets come within d_safe); the coverage overlap on
    # every neighbour pair is the factored term −w_cov·Σ_x w(x)·s_i(a, x)·s_j(b, x)
    reach = np.linalg.norm(cand - pos[:, None], axis=2).max(axis=1)
    gap = np.linalg.norm(pos[:, None] - pos[None], axis=2)
    close = gap <= w.d_safe_m + reach[:, None] + reach[None, :] + 1e-9
    src, dst = np.nonzero(nbr & (lp | close))
    n_labels = cand.shape[1]
    pair = np.zeros((len(src), n_labels, n_labels))
    for keep, term in ((lp[src, dst], "link"), (close[src, dst], "collision")):
        edges = np.flatnonzero(keep)
        for lo in range(0, len(edges), 4096):   # bounded temporaries for large N
            e = edges[lo: lo + 4096]
            a, b = cand[src[e]][:, :, None, :], cand[dst[e]][:, None, :, :]
            if term == "link":
                pair[e] += w.w_link * backbone_quality(channel, a, b)
            else:
                pair[e] -= w.w_col * (np.linalg.norm(a - b, axis=-1) < w.d_safe_m)
    mask = np.ones(cand.shape[:2], dtype=bool)
    return StageGame(mask=mask, unary=unary, nbr=nbr, pair_src=src, pair_dst=dst, pair=pair,
                     factor=s, factor_weight=-w.w_cov * roi.weights)
