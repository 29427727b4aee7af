"""One graphical stage game over discrete labels (design note §4.2, §5.2, §6).

Player i's payoff for a joint profile a is

    u_i(a) = θ_i(a_i) + Σ_{j∈N_i} θ_ij(a_i, a_j) − |N_i|·Σ_d W_id·(f_id(a_i) − m_id)²,
    m_i = (1/|N_i|) Σ_{j∈N_i} f_j(a_j)           (the virtual mean neighbour)

i.e. a unary table, pairwise tables on (a subset of) neighbourhood edges and a quadratic
aggregate term over label features (predicted neighbour state).  Tables hold finite values for
every label; infeasible labels are excluded by ``mask`` in every argmax/softmax.

When the neighbourhood is symmetric, θ_ij(a, b) = θ_ji(b, a) and W_i = W_j on every edge, the
game is an exact potential game with

    Φ(a) = Σ_i θ_i(a_i) + Σ_{i<j, j∈N_i} [θ_ij(a_i, a_j) − Σ_d W_d (f_id − f_jd)²]

(§4.2: |N_i|·‖f_i − m_i‖² = Σ_j ‖f_i − f_j‖² − const(a_−i)).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

PairKernel = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""χ(f_i, f_j) → payoff to i, broadcasting over leading dims, last dim = feature dim."""


@dataclass
class StageGame:
    """Tables of one stage game.  Shapes: N players, L labels, E pair edges, D features.

    Attributes:
        mask: (N, L) feasible labels (every row has at least one).
        unary: (N, L) θ_i.
        nbr: (N, N) bool, ``nbr[i, j]`` iff j ∈ N_i (no self-loops).
        pair_src, pair_dst: (E,) pair edges (each must be a neighbourhood edge);
        pair: (E, L, L) θ_ij tables, payoff to ``pair_src``.
        features: (N, L, D) label features f_i(a) for the aggregate term (or None).
        agg_weight: (N, D) W_i (or None).
        kernel: optional χ whose tables are exactly ``pair`` (enables the virtual-mean
            approximation of pairwise terms in the mean-neighbour solver).
    """

    mask: np.ndarray
    unary: np.ndarray
    nbr: np.ndarray
    pair_src: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    pair_dst: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    pair: np.ndarray | None = None
    features: np.ndarray | None = None
    agg_weight: np.ndarray | None = None
    kernel: PairKernel | None = None

    def __post_init__(self) -> None:
        self.mask = np.asarray(self.mask, dtype=bool)
        self.unary = np.asarray(self.unary, dtype=float)
        self.nbr = np.asarray(self.nbr, dtype=bool).copy()
        np.fill_diagonal(self.nbr, False)
        n, n_labels = self.unary.shape
        if self.mask.shape != (n, n_labels):
            raise ValueError(f"mask shape {self.mask.shape} != unary shape {(n, n_labels)}")
        if not self.mask.any(axis=1).all():
            raise ValueError("every player needs at least one feasible label")
        if self.nbr.shape != (n, n):
            raise ValueError(f"nbr must be ({n}, {n})")
        self.pair_src = np.asarray(self.pair_src, dtype=int)
        self.pair_dst = np.asarray(self.pair_dst, dtype=int)
        if self.pair is None:
            self.pair = np.zeros((0, n_labels, n_labels))
        if len(self.pair_src) and not self.nbr[self.pair_src, self.pair_dst].all():
            raise ValueError("pair edges must be neighbourhood edges")
        if (self.features is None) != (self.agg_weight is None):
            raise ValueError("features and agg_weight go together")
        self.deg = self.nbr.sum(axis=1).astype(float)
        safe = np.maximum(self.deg, 1.0)
        self.mean_op = self.nbr / safe[:, None]

    @property
    def n(self) -> int:
        return self.unary.shape[0]

    @property
    def n_labels(self) -> int:
        return self.unary.shape[1]

    # ------------------------------------------------------------------ profiles
    def onehot(self, profile: np.ndarray) -> np.ndarray:
        """(N, L) one-hot mixed profile of a pure profile."""
        q = np.zeros((self.n, self.n_labels))
        q[np.arange(self.n), np.asarray(profile, dtype=int)] = 1.0
        return q

    def uniform(self) -> np.ndarray:
        """Uniform mixed profile over feasible labels."""
        return self.mask / self.mask.sum(axis=1, keepdims=True)

    # ------------------------------------------------------------------ payoffs
    def feature_moments(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """E_q[f_i] and Var_q[f_i] per player, both (N, D)."""
        f = self.features
        mean = np.einsum("nl,nld->nd", q, f)
        var = np.maximum(np.einsum("nl,nld->nd", q, f**2) - mean**2, 0.0)
        return mean, var

    def mean_neighbour(self, q: np.ndarray) -> np.ndarray:
        """Virtual mean neighbour m_i = E[(1/|N_i|) Σ_j f_j], (N, D)."""
        mean, _ = self.feature_moments(q)
        return self.mean_op @ mean

    def aggregate_term(self, m: np.ndarray, var_m: np.ndarray | None = None) -> np.ndarray:
        """(N, L) aggregate payoff −|N_i| Σ_d W_id ((f_id(a) − m_id)² + Var m_id)."""
        diff2 = (self.features - m[:, None, :]) ** 2
        if var_m is not None:
            diff2 = diff2 + var_m[:, None, :]
        return -self.deg[:, None] * np.einsum("nld,nd->nl", diff2, self.agg_weight)

    def pair_term(self, q: np.ndarray) -> np.ndarray:
        """(N, L) Σ_{j} Σ_b q_j(b) θ_ij(a, b)."""
        out = np.zeros((self.n, self.n_labels))
        if len(self.pair_src):
            contrib = np.einsum("elb,eb->el", self.pair, q[self.pair_dst])
            np.add.at(out, self.pair_src, contrib)
        return out

    def local_payoffs(self, q: np.ndarray) -> np.ndarray:
        """(N, L): E_{q_−i}[u_i(a, a_−i)] for every own label a (exact for pure profiles)."""
        out = self.unary + self.pair_term(q)
        if self.features is not None:
            mean, var = self.feature_moments(q)
            m = self.mean_op @ mean
            var_m = (self.mean_op**2) @ var
            out = out + self.aggregate_term(m, var_m)
        return out

    def payoffs(self, profile: np.ndarray) -> np.ndarray:
        """(N,) u_i(a) of a pure profile."""
        profile = np.asarray(profile, dtype=int)
        return self.local_payoffs(self.onehot(profile))[np.arange(self.n), profile]

    def masked(self, values: np.ndarray) -> np.ndarray:
        """Values with infeasible labels set to −inf."""
        return np.where(self.mask, values, -np.inf)

    # ------------------------------------------------------------------ potential
    def is_symmetric(self, tol: float = 1e-12) -> bool:
        """Structural sufficient condition for the exact potential Φ (see module doc)."""
        if not np.array_equal(self.nbr, self.nbr.T):
            return False
        if self.features is not None:
            i, j = np.nonzero(self.nbr)
            if not np.allclose(self.agg_weight[i], self.agg_weight[j], atol=tol, rtol=0):
                return False
        index = {(int(s), int(d)): e for e, (s, d) in enumerate(
            zip(self.pair_src, self.pair_dst, strict=True))}
        for (s, d), e in index.items():
            r = index.get((d, s))
            if r is None:
                if np.abs(self.pair[e]).max() > tol:
                    return False
                continue
            if np.abs(self.pair[e] - self.pair[r].T).max() > tol:
                return False
        return True

    def expected_potential(self, q: np.ndarray) -> float:
        """E_q[Φ] for a factorised q (exact; Φ as in the module doc)."""
        val = float(np.sum(q * self.unary))
        if len(self.pair_src):
            val += 0.5 * float(np.einsum("ea,eab,eb->", q[self.pair_src], self.pair,
                                         q[self.pair_dst]))
        if self.features is not None:
            mean, var = self.feature_moments(q)
            i, j = np.nonzero(self.nbr)
            d2 = (mean[i] - mean[j]) ** 2 + var[i] + var[j]
            val -= 0.5 * float(np.sum(d2 * self.agg_weight[i]))
        return val

    def potential(self, profile: np.ndarray) -> float:
        """Φ(a) of a pure profile."""
        return self.expected_potential(self.onehot(profile))
