"""Dense BSP: allreduce-mean of the whole flattened gradient, then the optimizer step."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from flexsync.comm import Communicator
from flexsync.strategies.base import StepContext, Strategy
from flexsync.strategies.grads import assign_grads, flatten_grads


class Dense(Strategy):
    """Bulk-synchronous data parallelism, the baseline every method is measured against.

    ``algo`` ("ring", "tree" or "ps") only chooses how the cost model prices the allreduce;
    the backend picks its own algorithm.
    """

    name = "dense"

    def __init__(self, params: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                 comm: Communicator, algo: str = "ring", **base: Any) -> None:
        super().__init__(params, optimizer, comm, **base)
        if algo not in ("ring", "tree", "ps"):
            raise ValueError(f"dense algo must be 'ring', 'tree' or 'ps', got {algo!r}")
        self.algo = algo

    def step(self, ctx: StepContext) -> None:
        flat = flatten_grads(self.params)
        self.comm.allreduce(flat, algo=self.algo, tag="gradients")
        flat.div_(self.comm.world_size)
        assign_grads(self.params, flat)
        self.optimizer.step()
        self._signals = {"collective": f"allreduce-{self.algo}"}
