"""AR-Topk (AR-Topk paper Alg. 1; ddl-methods.md §1.1): one worker's top-k index set is
broadcast (STAR: round-robin; VAR: the largest local top-k norm), then every worker's values
at those positions are summed by one ring or tree allreduce. Bandwidth-optimal: a worker
sends k indices once every N steps and k values every step, whatever N is."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from flexsync.comm import Communicator
from flexsync.net import cost_model
from flexsync.net.conditions import NetworkConditions
from flexsync.strategies.base import StepContext
from flexsync.strategies.sparse import SparseStrategy


class ARTopK(SparseStrategy):
    name = "artopk"

    def __init__(self, params: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                 comm: Communicator, algo: str = "ring", **options: Any) -> None:
        super().__init__(params, optimizer, comm, **options)
        if algo not in ("ring", "tree"):
            raise ValueError(f"artopk algo must be 'ring' or 'tree', got {algo!r}")
        self.algo = algo

    def collective(self, ctx: StepContext, ratio: float) -> str:
        return f"art_{self.algo}"

    def cost(self, ratio: float, cond: NetworkConditions | None, ctx: StepContext) -> float:
        if cond is None:
            return ratio
        return cost_model.compressed_cost(f"art_{self.algo}", self.priced_params(ctx), ratio,
                                          self.comm.world_size, cond.alpha, cond.beta)
