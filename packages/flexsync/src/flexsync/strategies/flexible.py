"""Flexible communication (AR-Topk paper §III-B; docs/methods.md §1.2): each step the
aggregation collective — AG, ART-Ring or ART-Tree — is the α-β cost-model argmin for the
current network conditions, model size, worker count and keep fraction.

The choice is a pure function of inputs every rank shares (the step's agreed network
conditions and the agreed ratio), so all ranks pick the same collective without talking.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import torch
from pydantic import Field

from flexsync.comm import Communicator
from flexsync.net import cost_model
from flexsync.net.conditions import NetworkConditions
from flexsync.strategies.base import StepContext
from flexsync.strategies.sparse import SparseOptions, SparseStrategy

Collective = Literal["allgather", "art_ring", "art_tree"]


class FlexibleOptions(SparseOptions):
    name: Literal["flexible"] = "flexible"
    collectives: list[Collective] = Field(["allgather", "art_ring", "art_tree"], min_length=1,
                                          description="the candidates of the cost-model choice")

    def network_aware(self) -> bool:
        return True                 # the collective is the α-β argmin


class Flexible(SparseStrategy):
    name = "flexible"
    Options = FlexibleOptions

    def __init__(self, params: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                 comm: Communicator, **options: Any) -> None:
        super().__init__(params, optimizer, comm, **options)
        self.candidates = tuple(c for c in cost_model.COMPRESSED_COLLECTIVES
                                if c in self.opts.collectives)

    def _choice(self, ratio: float, cond: NetworkConditions, ctx: StepContext
                ) -> cost_model.Choice:
        return cost_model.best_collective(self.priced_params(ctx), ratio, self.comm.world_size,
                                          cond.alpha, cond.beta, self.candidates)

    def collective(self, ctx: StepContext, ratio: float) -> str:
        if ctx.conditions is None:
            raise ValueError("the flexible strategy needs network conditions (a modeled or "
                             "scheduled network), not 'loopback'")
        return self._choice(ratio, ctx.conditions, ctx).collective

    def cost(self, ratio: float, cond: NetworkConditions | None, ctx: StepContext) -> float:
        if cond is None:
            return ratio
        choice = self._choice(ratio, cond, ctx)
        return choice.costs[choice.collective]
