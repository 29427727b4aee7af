"""Log-distance channel with log-normal shadowing (design note §2.2 and addendum).

    P_r(d) = P_t − PL0 − 10·n·log10(d/d0) + X,   X ~ N(0, σ²)

Presets: ``n2.4`` (rosns3 run_server.sh: n = 2.4, PL0 = 46 dB) and ``n3.0`` (ns-3 log-distance
defaults found in the authors' removed figure data: n = 3.0, PL0 = 46.68 dB).  The exponent is
*unresolved* in the design note, so both are offered.  A link i→j exists iff j receives i with
P_r ≥ the receiver's threshold (heterogeneous powers/thresholds make links directed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swarmgames.core.config import check

PRESETS: dict[str, dict[str, float]] = {
    "n2.4": {"exponent": 2.4, "pl0_db": 46.0, "ptx_dbm": 16.02, "sigma_db": 32.0 ** 0.5},
    "n3.0": {"exponent": 3.0, "pl0_db": 46.68, "ptx_dbm": 16.02, "sigma_db": 5.5},
}


@dataclass(frozen=True)
class ChannelConfig:
    """Channel parameters; ``preset`` fills exponent/pl0/ptx unless given explicitly.

    ``sigma_db`` defaults to 0 (deterministic); the presets' measured shadowing std is
    available as ``PRESETS[preset]['sigma_db']``.  ``shadowing``: ``frozen`` draws one value per
    unordered link at reset, ``per_step`` redraws every topology refresh.
    """

    preset: str = "n2.4"
    exponent: float | None = None
    pl0_db: float | None = None
    ptx_dbm: float | None = None
    d0_m: float = 1.0
    sigma_db: float = 0.0
    shadowing: str = "frozen"
    threshold_dbm: float = -85.0
    ue_threshold_dbm: float = -85.0
    soft_scale_db: float = 2.0
    altitude_m: float = 0.0

    def __post_init__(self) -> None:
        check(self.preset in PRESETS, "preset", f"must be one of {sorted(PRESETS)}")
        check(self.sigma_db >= 0, "sigma_db", "must be >= 0")
        check(self.soft_scale_db > 0, "soft_scale_db", "must be > 0")
        check(self.d0_m > 0, "d0_m", "must be > 0")
        check(self.shadowing in ("frozen", "per_step"), "shadowing",
              "must be 'frozen' or 'per_step'")
        if self.exponent is not None:
            check(self.exponent > 0, "exponent", "must be > 0")

    def resolved(self) -> tuple[float, float, float]:
        """(exponent, pl0_db, ptx_dbm) after applying the preset."""
        p = PRESETS[self.preset]
        return (self.exponent if self.exponent is not None else p["exponent"],
                self.pl0_db if self.pl0_db is not None else p["pl0_db"],
                self.ptx_dbm if self.ptx_dbm is not None else p["ptx_dbm"])


def logistic(x: np.ndarray) -> np.ndarray:
    """Numerically safe logistic function."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))


class Channel:
    """Received power, hard links and soft link quality (PDR-like logistic, §2.2)."""

    def __init__(self, cfg: ChannelConfig) -> None:
        self.cfg = cfg
        self.exponent, self.pl0_db, self.ptx_dbm = cfg.resolved()

    def rx_power(self, d: np.ndarray, ptx_dbm: np.ndarray | float | None = None,
                 shadow_db: np.ndarray | float = 0.0) -> np.ndarray:
        """P_r in dBm at distance ``d`` (metres, clamped below at d0)."""
        ptx = self.ptx_dbm if ptx_dbm is None else ptx_dbm
        d = np.maximum(np.asarray(d, dtype=float), self.cfg.d0_m)
        return ptx - self.pl0_db - 10.0 * self.exponent * np.log10(d / self.cfg.d0_m) + shadow_db

    def range_m(self, threshold_dbm: float | None = None) -> float:
        """Deterministic (σ = 0) link range for a threshold (§2.2 range table)."""
        th = self.cfg.threshold_dbm if threshold_dbm is None else threshold_dbm
        return self.cfg.d0_m * 10 ** ((self.ptx_dbm - self.pl0_db - th) / (10 * self.exponent))

    def quality(self, rx_dbm: np.ndarray, threshold_dbm: float) -> np.ndarray:
        """Soft link quality logistic((P_r − θ)/s) in [0, 1]."""
        return logistic((np.asarray(rx_dbm) - threshold_dbm) / self.cfg.soft_scale_db)

    def draw_shadowing(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Symmetric (n, n) shadowing matrix X with one N(0, σ²) draw per unordered pair."""
        x = np.zeros((n, n))
        if self.cfg.sigma_db > 0 and n > 1:
            iu = np.triu_indices(n, 1)
            x[iu] = rng.normal(0.0, self.cfg.sigma_db, size=len(iu[0]))
            x = x + x.T
        return x

    def pairwise_rx(self, pos: np.ndarray, ptx_dbm: np.ndarray | None = None,
                    shadow_db: np.ndarray | float = 0.0) -> np.ndarray:
        """(N, N) matrix R[i, j] = power j receives from i (diagonal = +inf)."""
        d = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=2)
        ptx = self.ptx_dbm if ptx_dbm is None else np.asarray(ptx_dbm)[:, None]
        r = self.rx_power(d, ptx, shadow_db)
        np.fill_diagonal(r, np.inf)
        return r

    def links(self, pos: np.ndarray, ptx_dbm: np.ndarray | None = None,
              thresholds_dbm: np.ndarray | None = None,
              shadow_db: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Directed adjacency A[i, j] = (j hears i) and the RSS matrix, no self-loops."""
        rx = self.pairwise_rx(pos, ptx_dbm, shadow_db)
        th = self.cfg.threshold_dbm if thresholds_dbm is None else np.asarray(
            thresholds_dbm)[None, :]
        adj = rx >= th
        np.fill_diagonal(adj, False)
        return adj, rx

    def ground_rx(self, uav: np.ndarray, ground: np.ndarray) -> np.ndarray:
        """(..., M) power received by ground points from UAVs at fixed altitude (2.5-D)."""
        diff = uav[..., None, :] - ground
        d = np.sqrt(np.sum(diff**2, axis=-1) + self.cfg.altitude_m**2)
        return self.rx_power(d)
