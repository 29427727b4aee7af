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
from scipy.sparse import csr_matrix

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
        factor, factor_weight: optional factored pairwise term on *every* neighbourhood
            edge, θ_ij(a, b) += Σ_m factor_weight[m]·factor[i, a, m]·factor[j, b, m]
            ((N, L, M) and (M,)); symmetric by construction.  It stands for E·L·L tables
            without materialising them (CoCo's coverage overlap over M ROI points): the
            term of a mixed profile costs one sparse product, nnz(nbr)·M.
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
    factor: np.ndarray | None = None
    factor_weight: np.ndarray | None = None

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
        self._index_pairs()
        if (self.features is None) != (self.agg_weight is None):
            raise ValueError("features and agg_weight go together")
        if (self.factor is None) != (self.factor_weight is None):
            raise ValueError("factor and factor_weight go together")
        if self.factor is not None and (self.factor.shape[:2] != (n, n_labels)
                                        or self.factor_weight.shape != self.factor.shape[2:]):
            raise ValueError("factor must be (N, L, M) and factor_weight (M,)")
        self.deg = self.nbr.sum(axis=1).astype(float)
        safe = np.maximum(self.deg, 1.0)
        self.mean_op = self.nbr / safe[:, None]

    def _index_pairs(self) -> None:
        """Validate the pair edges, sort them by source and index them per player.  Without
        ``pair`` tables but with a ``kernel`` the tables are built on first use
        (:meth:`tables`): a pure-profile caller never needs them."""
        n, n_labels = self.unary.shape
        self.pair_src = np.asarray(self.pair_src, dtype=int)
        self.pair_dst = np.asarray(self.pair_dst, dtype=int)
        if self.pair is None and not (len(self.pair_src) and self.kernel is not None
                                      and self.features is not None):
            if len(self.pair_src):
                raise ValueError("pair edges need pair tables or a kernel with features")
            self.pair = np.zeros((0, n_labels, n_labels))
        if len(self.pair_src) and not self.nbr[self.pair_src, self.pair_dst].all():
            raise ValueError("pair edges must be neighbourhood edges")
        if len(self.pair_src) and (np.diff(self.pair_src) < 0).any():
            order = np.argsort(self.pair_src, kind="stable")
            self.pair_src, self.pair_dst = self.pair_src[order], self.pair_dst[order]
            if self.pair is not None:
                self.pair = self.pair[order]
        # edges of player i are pair_src[ptr[i]:ptr[i+1]] (edges sorted by source)
        self._pair_ptr = np.searchsorted(self.pair_src, np.arange(n + 1))

    def tables(self) -> np.ndarray:
        """(E, L, L) pair tables θ_ij, built from ``kernel`` on first use if not given."""
        if self.pair is None:
            f = self.features
            self.pair = self.kernel(f[self.pair_src][:, :, None, :],
                                    f[self.pair_dst][:, None, :, :])
        return self.pair

    def kernel_pair_term(self, profile: np.ndarray) -> np.ndarray:
        """(N, L) Σ_j χ(f_i(a), f_j(a_j)) over the pair edges for a *pure* profile, straight
        from the kernel: E·L evaluations instead of E·L·L tables."""
        out = np.zeros((self.n, self.n_labels))
        if len(self.pair_src):
            f = self.features
            if getattr(self, "_src_features", None) is None:     # fixed for the stage
                self._src_features = f[self.pair_src]
            far = f[self.pair_dst, profile[self.pair_dst]][:, None, :]
            vals = self.kernel(self._src_features, far)
            # edges are sorted by source: one contiguous segment per player, summed in edge
            # order (the same sums as np.add.at, several times faster)
            has = np.flatnonzero(np.diff(self._pair_ptr))
            out[has] = np.add.reduceat(vals, self._pair_ptr[has], axis=0)
        return out

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

    def factor_messages(self, q: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """E_{q_j}[factor_j(·, m)] per player, (N, M) (or for ``rows``): what a player sends
        its neighbours for the factored term."""
        if rows is None:
            return np.einsum("nb,nbm->nm", q, self.factor)
        return np.einsum("nb,nbm->nm", q[rows], self.factor[rows])

    def _nbr_matrix(self) -> np.ndarray | csr_matrix:
        """The neighbourhood as a float matrix: dense up to 2000 players (fast row slices),
        sparse above (memory)."""
        if getattr(self, "_nbr_mat", None) is None:
            dense = self.nbr.astype(float)
            self._nbr_mat = dense if self.n <= 2000 else csr_matrix(dense)
        return self._nbr_mat

    def pair_term(self, q: np.ndarray, rows: np.ndarray | None = None,
                  messages: np.ndarray | None = None) -> np.ndarray:
        """(N, L) Σ_{j} Σ_b q_j(b) θ_ij(a, b), or its ``rows``.  ``messages`` may carry
        ``factor_messages(q)`` kept up to date by the caller (saves recomputing them)."""
        idx = np.arange(self.n) if rows is None else np.asarray(rows)
        out = np.zeros((len(idx), self.n_labels))
        if len(self.pair_src):
            if rows is None:
                sel = np.arange(len(self.pair_src))
                pos = self.pair_src
            else:
                lo, hi = self._pair_ptr[idx], self._pair_ptr[idx + 1]
                sel = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)]
                                     + [np.zeros(0, dtype=int)])
                pos = np.repeat(np.arange(len(idx)), hi - lo)
            if len(sel):
                contrib = np.einsum("elb,eb->el", self.tables()[sel], q[self.pair_dst[sel]])
                np.add.at(out, pos, contrib)
        if self.factor is not None:
            msg = self.factor_messages(q) if messages is None else messages
            near = self._nbr_matrix()[idx] @ msg                      # (R, M)
            out += np.einsum("rlm,rm->rl", self.factor[idx], near * self.factor_weight)
        return out

    def local_payoffs(self, q: np.ndarray, rows: np.ndarray | None = None,
                      messages: np.ndarray | None = None) -> np.ndarray:
        """(N, L): E_{q_−i}[u_i(a, a_−i)] for every own label a (exact for pure profiles);
        only ``rows`` when given (same order)."""
        idx = slice(None) if rows is None else np.asarray(rows)
        out = self.unary[idx] + self.pair_term(q, rows, messages)
        if self.features is not None:
            mean, var = self.feature_moments(q)
            m = self.mean_op[idx] @ mean
            var_m = (self.mean_op[idx] ** 2) @ var
            deg, agg = self.deg[idx], self.agg_weight[idx]
            diff2 = (self.features[idx] - m[:, None, :]) ** 2 + var_m[:, None, :]
            out = out - deg[:, None] * np.einsum("nld,nd->nl", diff2, agg)
        return out

    def payoffs(self, profile: np.ndarray) -> np.ndarray:
        """(N,) u_i(a) of a pure profile (pair tables not built yet are not built for it:
        the kernel is evaluated at the played labels)."""
        profile = np.asarray(profile, dtype=int)
        if self.pair is not None or self.factor is not None:
            return self.local_payoffs(self.onehot(profile))[np.arange(self.n), profile]
        own = np.arange(self.n), profile
        out = self.unary[own] + self.kernel_pair_term(profile)[own]
        if self.features is not None:
            m = self.mean_neighbour(self.onehot(profile))
            out = out + self.aggregate_term(m)[own]
        return out

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
                if np.abs(self.tables()[e]).max() > tol:
                    return False
                continue
            if np.abs(self.tables()[e] - self.tables()[r].T).max() > tol:
                return False
        return True

    def expected_potential(self, q: np.ndarray) -> float:
        """E_q[Φ] for a factorised q (exact; Φ as in the module doc)."""
        val = float(np.sum(q * self.unary))
        if len(self.pair_src):
            val += 0.5 * float(np.einsum("ea,eab,eb->", q[self.pair_src], self.tables(),
                                         q[self.pair_dst]))
        if self.factor is not None:
            msg = self.factor_messages(q)
            val += 0.5 * float(np.sum((self._nbr_matrix() @ msg) * msg * self.factor_weight))
        if self.features is not None:
            mean, var = self.feature_moments(q)
            i, j = np.nonzero(self.nbr)
            d2 = (mean[i] - mean[j]) ** 2 + var[i] + var[j]
            val -= 0.5 * float(np.sum(d2 * self.agg_weight[i]))
        return val

    def potential(self, profile: np.ndarray) -> float:
        """Φ(a) of a pure profile."""
        return self.expected_potential(self.onehot(profile))
