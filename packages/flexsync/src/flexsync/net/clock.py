"""The per-run virtual clock (docs/methods.md §0.4).

    t_step = t_wait + max_workers(t_compute) + t_compress + t_comm

``t_comm`` prices every accounted collective of the step with the α-β model under the
conditions in force. All inputs are agreed across ranks, so every rank's clock reads the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from flexsync.net import cost_model
from flexsync.net.conditions import ConditionsSource, NetworkConditions


class PricedCollective(Protocol):
    kind: str
    algo: str | None
    nbytes: int
    scalable: bool


@dataclass(frozen=True)
class StepTime:
    compute: float
    comm: float
    other: float
    conditions: NetworkConditions | None

    @property
    def total(self) -> float:
        return self.compute + self.comm + self.other


class VirtualClock:
    """Modeled time of a run.

    ``param_scale`` prices gradient-sized messages as if the model had ``scale`` times more
    parameters (``network.model_params``), so a small model can pay a paper-sized model's
    communication. With ``conditions=None`` (loopback) there is no model: the measured wall time
    of the step's communication is charged instead.
    """

    def __init__(
        self, world_size: int, conditions: ConditionsSource | None, param_scale: float = 1.0
    ) -> None:
        self.world_size = world_size
        self.source = conditions
        self.param_scale = param_scale
        self.now = 0.0

    def conditions(self, step: int, epoch: int) -> NetworkConditions | None:
        return None if self.source is None else self.source.at(step, epoch, self.now)

    def price(self, records: Iterable[PricedCollective], cond: NetworkConditions) -> float:
        total = 0.0
        for r in records:
            nbytes = r.nbytes * self.param_scale if r.scalable else r.nbytes
            total += cost_model.price(r.kind, r.algo, nbytes, self.world_size, cond.alpha,
                                      cond.beta)
        return total

    def advance(
        self,
        step: int,
        epoch: int,
        compute_s: float,
        records: Iterable[PricedCollective],
        measured_comm_s: float = 0.0,
        other_s: float = 0.0,
    ) -> StepTime:
        cond = self.conditions(step, epoch)
        comm = measured_comm_s if cond is None else self.price(records, cond)
        t = StepTime(compute_s, comm, other_s, cond)
        self.now += t.total
        return t

    def state_dict(self) -> dict:
        return {"now": self.now}

    def load_state_dict(self, state: dict) -> None:
        self.now = float(state["now"])
