"""Double-integrator kinematics with discrete acceleration labels (design note §2.1).

    p' = p + v·τ + ½·u·τ²,   v' = v + u·τ,   |u|∞ ≤ u_max,  |v|∞ ≤ v_max

Labels are the grid {−u_max, …, +u_max}² (``levels`` points per axis; 5 gives the 25 labels,
step 0.5 for u_max = 1, of the authors' ICRA-21 code).  A label is infeasible for an agent when
the velocity it produces leaves the |v|∞ ≤ v_max box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def acceleration_labels(u_max: float, levels: int = 5) -> np.ndarray:
    """The (levels², 2) grid of acceleration labels, row-major with the zero label centred."""
    if levels < 2:
        raise ValueError("levels must be >= 2")
    axis = np.linspace(-u_max, u_max, levels)
    ux, uy = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([ux.ravel(), uy.ravel()], axis=1)


def zero_label(labels: np.ndarray) -> int:
    """Index of the (closest to) zero-acceleration label."""
    return int(np.argmin(np.abs(labels).sum(axis=1)))


@dataclass(frozen=True)
class DoubleIntegrator:
    """Discrete-time double integrator with per-axis limits."""

    dt: float
    u_max: float
    v_max: float

    def predict(self, p: np.ndarray, v: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Next (p', v') for broadcastable positions, velocities and accelerations (no clipping)."""
        tau = self.dt
        return p + v * tau + 0.5 * u * tau**2, v + u * tau

    def predict_labels(self, p: np.ndarray, v: np.ndarray,
                       labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Predicted states for every agent × label.

        Args: p, v of shape (N, 2); labels (L, 2).
        Returns: p' (N, L, 2), v' (N, L, 2) and the feasibility mask (N, L) (|v'|∞ ≤ v_max).
        A row with no feasible label (only possible after an external push) keeps the label that
        brings the velocity closest to the box, so every agent always has one action.
        """
        p2, v2 = self.predict(p[:, None, :], v[:, None, :], labels[None, :, :])
        excess = np.max(np.abs(v2), axis=2) - self.v_max
        mask = excess <= 1e-9
        empty = ~mask.any(axis=1)
        if empty.any():
            mask[empty, np.argmin(excess[empty], axis=1)] = True
        return p2, v2, mask

    def step(self, p: np.ndarray, v: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Integrate one step with acceleration and velocity clipped to their limits."""
        u = np.clip(u, -self.u_max, self.u_max)
        v_new = np.clip(v + u * self.dt, -self.v_max, self.v_max)
        u_eff = (v_new - v) / self.dt
        return p + v * self.dt + 0.5 * u_eff * self.dt**2, v_new


def waypoint_ring(headings: int, fractions: tuple[float, ...], radius: float) -> np.ndarray:
    """Displacement labels for waypoint control: 'stay' plus ``headings`` directions at each
    fraction of ``radius`` (= v_max·dt).  Design note §5.2 (ring of 8 headings × {½, 1})."""
    out = [np.zeros(2)]
    for f in fractions:
        for k in range(headings):
            ang = 2 * np.pi * k / headings
            out.append(f * radius * np.array([np.cos(ang), np.sin(ang)]))
    return np.array(out)


def step_toward(pos: np.ndarray, target: np.ndarray, max_step: float) -> np.ndarray:
    """Move each position toward its target by at most ``max_step`` (Euclidean)."""
    delta = target - pos
    dist = np.linalg.norm(delta, axis=1, keepdims=True)
    scale = np.minimum(1.0, max_step / np.maximum(dist, 1e-12))
    return pos + delta * scale
