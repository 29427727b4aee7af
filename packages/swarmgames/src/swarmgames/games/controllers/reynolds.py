"""Rule-based flocking baseline (Reynolds 1987; Olfati-Saber 2006 style gains), design note §4.4.

u_i = k_sep·Σ_{j∈N_i, d<d_sep} (p_i − p_j)/d·(d_sep − d) + k_coh·(m_i^p − p_i)
      + k_ali·(m_i^v − v_i) + k_mig·(v_i^des − v_i),  clipped to |u|∞ ≤ u_max.
"""

from __future__ import annotations

import numpy as np

from swarmgames.games.config import ReynoldsConfig


def reynolds_accel(cfg: ReynoldsConfig, p: np.ndarray, v: np.ndarray, v_des: np.ndarray,
                   nbr: np.ndarray, u_max: float) -> np.ndarray:
    """(N, 2) continuous accelerations."""
    diff = p[:, None, :] - p[None, :, :]
    d = np.linalg.norm(diff, axis=2)
    close = nbr & (d < cfg.d_sep_m)
    push = np.where(close[..., None], diff / np.maximum(d, 1e-6)[..., None]
                    * (cfg.d_sep_m - d)[..., None], 0.0).sum(axis=1)
    deg = nbr.sum(axis=1, keepdims=True)
    safe = np.maximum(deg, 1)
    mp = np.where(deg > 0, (nbr @ p) / safe, p)
    mv = np.where(deg > 0, (nbr @ v) / safe, v)
    u = (cfg.k_sep * push + cfg.k_coh * (mp - p) + cfg.k_ali * (mv - v)
         + cfg.k_mig * (v_des - v))
    return np.clip(u, -u_max, u_max)
