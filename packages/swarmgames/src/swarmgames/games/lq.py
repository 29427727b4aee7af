"""Continuous linear-quadratic flocking stage game: the test oracle of design note §4.2/§4.6.1.

Player i picks a_i ∈ ℝ² (acceleration); with h = ½τ², p_i' = c_i + h·a_i (c_i = p_i + v_i τ),
v_i' = v_i + τ·a_i, and m_i the virtual mean neighbour (mean predicted neighbour state):

    u_i = −w_g,i‖p_i' − g_i‖² − w_u,i‖a_i‖² − n_i·w_c,i‖p_i' − m_i^p‖² − n_i·w_v,i‖v_i' − m_i^v‖²

The payoff depends on neighbours only through their mean (an aggregative game), so the best
response to the virtual mean neighbour is exact and the stage NE solves one linear system
M·a = b.  Jacobi iteration (simultaneous best response) converges because M is strictly
diagonally dominant whenever w_g > 0 or w_u > 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class LQGame:
    """State and (per-agent, general-sum) weights of one LQ stage game."""

    p: np.ndarray
    v: np.ndarray
    goal: np.ndarray
    nbr: np.ndarray
    tau: float
    w_g: np.ndarray
    w_u: np.ndarray
    w_c: np.ndarray
    w_v: np.ndarray

    def __post_init__(self) -> None:
        self.nbr = np.asarray(self.nbr, dtype=bool)
        np.fill_diagonal(self.nbr, False)
        self.deg = self.nbr.sum(axis=1).astype(float)
        self.mean_op = self.nbr / np.maximum(self.deg, 1.0)[:, None]
        self.h = 0.5 * self.tau**2
        self.c = self.p + self.v * self.tau

    def payoffs(self, a: np.ndarray) -> np.ndarray:
        """(N,) u_i(a)."""
        p2, v2 = self.c + self.h * a, self.v + self.tau * a
        mp, mv = self.mean_op @ p2, self.mean_op @ v2
        return (-self.w_g * np.sum((p2 - self.goal) ** 2, axis=1)
                - self.w_u * np.sum(a**2, axis=1)
                - self.deg * self.w_c * np.sum((p2 - mp) ** 2, axis=1)
                - self.deg * self.w_v * np.sum((v2 - mv) ** 2, axis=1))

    def best_response(self, mp: np.ndarray, mv: np.ndarray) -> np.ndarray:
        """Closed-form best response of every agent to its virtual mean neighbour (m^p, m^v)."""
        h, tau, n = self.h, self.tau, self.deg[:, None]
        num = (-self.w_g[:, None] * h * (self.c - self.goal)
               - n * self.w_c[:, None] * h * (self.c - mp)
               - n * self.w_v[:, None] * tau * (self.v - mv))
        den = self.w_g * h**2 + self.w_u + self.deg * (self.w_c * h**2 + self.w_v * tau**2)
        return num / den[:, None]

    def linear_system(self) -> tuple[np.ndarray, np.ndarray]:
        """Joint first-order conditions M·a = b (M is N×N, shared by both axes; b is N×2)."""
        h, tau = self.h, self.tau
        k = self.w_c * h**2 + self.w_v * tau**2
        m = np.diag(self.w_g * h**2 + self.w_u + self.deg * k) - k[:, None] * self.nbr
        cbar, vbar = self.mean_op @ self.c, self.mean_op @ self.v
        n = self.deg[:, None]
        b = (-self.w_g[:, None] * h * (self.c - self.goal)
             - n * self.w_c[:, None] * h * (self.c - cbar)
             - n * self.w_v[:, None] * tau * (self.v - vbar))
        return m, b

    def solve_centralised(self) -> np.ndarray:
        """Stage NE by ``numpy.linalg.solve``."""
        m, b = self.linear_system()
        return np.linalg.solve(m, b)

    def solve_mean_neighbour(self, k_max: int = 500, tol: float = 1e-13,
                             a0: np.ndarray | None = None) -> tuple[np.ndarray, list[float]]:
        """Decentralised Jacobi rounds: broadcast predicted states, best-respond to the mean.

        Returns the actions and the residual ‖M a − b‖∞ after every round."""
        a = np.zeros_like(self.p) if a0 is None else a0.copy()
        m, b = self.linear_system()
        res = []
        for _ in range(k_max):
            p2, v2 = self.c + self.h * a, self.v + self.tau * a
            a = self.best_response(self.mean_op @ p2, self.mean_op @ v2)
            res.append(float(np.abs(m @ a - b).max()))
            if res[-1] < tol:
                break
        return a, res
