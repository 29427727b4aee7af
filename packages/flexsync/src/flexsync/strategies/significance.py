"""SelSync's significance signal Δ of a worker's local update (docs/methods.md §2.1).

Paper form (Eq. 2, the default): u_i = ‖g_i‖² over the whole flattened local gradient,
s_i = WindowedEWMA(u_i), Δ_i = |s_i − s_{i−1}| / s_{i−1}.
Code form (an option): u_i = Σ_layers ‖g_{l,i}‖₂ (sum of per-tensor L2 norms, not squared),
same smoothing and relative change. Either form may smooth Δ once more (``smooth_delta``;
the authors' code does). Δ is *undefined* (None) until the windows are full — SelSync then
forces a synchronisation — and a zero previous value is guarded (Δ = 0 if nothing changed,
∞ otherwise) instead of dividing by zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from flexsync.strategies.smoothing import WindowedEWMA

SIGNAL_FORMS = ("paper_sq_global", "code_sum_layer_l2")


def gradient_statistic(params: Sequence[torch.Tensor], form: str = "paper_sq_global") -> float:
    """u_i of §2.1 from the parameters' current (local) gradients."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    norms = torch.stack([torch.linalg.vector_norm(g.detach().float()) for g in grads])
    if form == "paper_sq_global":
        return float(norms.square().sum())
    if form == "code_sum_layer_l2":
        return float(norms.sum())
    raise ValueError(f"signal must be one of {SIGNAL_FORMS}, got {form!r}")


def relative_change(new: float, old: float) -> float:
    """|new − old| / old, with old = 0 guarded (0 when unchanged, ∞ otherwise)."""
    if old == 0.0:
        return 0.0 if new == 0.0 else math.inf
    return abs(new - old) / abs(old)


class Significance:
    """Per-worker Δ tracker; call :meth:`update` once per step with the local gradients."""

    def __init__(self, form: str = "paper_sq_global", window: int = 25, smoothing: float = 0.04,
                 smooth_delta: bool = False) -> None:
        if form not in SIGNAL_FORMS:
            raise ValueError(f"signal must be one of {SIGNAL_FORMS}, got {form!r}")
        self.form = form
        self._norm = WindowedEWMA(window, smoothing)
        self._delta = WindowedEWMA(window, smoothing) if smooth_delta else None
        self._prev: float | None = None
        self.value: float | None = None

    def update(self, params: Sequence[torch.Tensor]) -> float | None:
        """Fold in this step's gradients; return Δ (None while the windows are filling)."""
        s = self._norm.update(gradient_statistic(params, self.form))
        prev, self._prev = self._prev, s
        if s is None or prev is None:
            self.value = None
        else:
            d = relative_change(s, prev)
            self.value = d if self._delta is None else self._delta.update(d)
        return self.value

    def state_dict(self) -> dict[str, Any]:
        return {"norm": self._norm.state_dict(), "prev": self._prev, "value": self.value,
                "delta": None if self._delta is None else self._delta.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._norm.load_state_dict(state["norm"])
        self._prev, self.value = state["prev"], state["value"]
        if self._delta is not None and state.get("delta") is not None:
            self._delta.load_state_dict(state["delta"])
