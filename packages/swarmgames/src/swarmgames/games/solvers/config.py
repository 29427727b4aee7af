"""One solver configuration for every stage-game controller (flocking and CoCo).

The mean-neighbour best-response fields (``k_max``, ``inertia``, ``switch_tol``, ``pairwise``)
are read by the flocking ``game`` controller; the mean-field VI fields (``beta``,
``vi_schedule``, ``vi_tol``, ``vi_k_max``, ``damping``) by the flocking ``vi`` controller and by
CoCo.  ``warm_start`` means the same thing for both: start this stage's solve from the previous
stage's solution (labels for best response, marginals q for VI); ``False`` starts cold (the
unary argmax for best response, uniform q for VI).
"""

from __future__ import annotations

from dataclasses import dataclass

from swarmgames.core.config import check
from swarmgames.games.solvers.mean_field_vi import SCHEDULES


@dataclass(frozen=True)
class SolverConfig:
    """Stage-game solver settings (§4.3 mean-neighbour BR; §5.3 mean-field VI)."""

    k_max: int = 10
    inertia: float = 0.2
    switch_tol: float = 0.0
    pairwise: str = "exact"
    warm_start: bool = True
    beta: float = 5.0
    vi_schedule: str = "colour"
    vi_tol: float = 1e-2
    vi_k_max: int = 20
    damping: float = 0.5

    def __post_init__(self) -> None:
        check(self.k_max >= 1, "k_max", "must be >= 1")
        check(0 <= self.inertia < 1, "inertia", "must be in [0, 1)")
        check(self.switch_tol >= 0, "switch_tol", "must be >= 0")
        check(self.pairwise in ("exact", "virtual"), "pairwise", "must be 'exact' or 'virtual'")
        check(self.beta > 0, "beta", "must be > 0")
        check(self.vi_schedule in SCHEDULES, "vi_schedule", f"must be one of {list(SCHEDULES)}")
        check(self.vi_tol > 0, "vi_tol", "must be > 0")
        check(self.vi_k_max >= 1, "vi_k_max", "must be >= 1")
        check(0 < self.damping <= 1, "damping", "must be in (0, 1]")
