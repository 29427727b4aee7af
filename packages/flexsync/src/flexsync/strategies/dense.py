"""Dense BSP: allreduce-mean of the whole flattened gradient, then the optimizer step."""

from __future__ import annotations

from typing import Literal

from flexsync.strategies.base import StepContext, Strategy
from flexsync.strategies.grads import assign_grads, flatten_grads
from flexsync.strategies.options import Options


class DenseOptions(Options):
    name: Literal["dense"] = "dense"
    algo: Literal["ring", "tree", "ps"] = "ring"


class Dense(Strategy):
    """Bulk-synchronous data parallelism, the baseline every method is measured against.

    ``algo`` ("ring", "tree" or "ps") only chooses how the cost model prices the allreduce;
    the backend picks its own algorithm.
    """

    name = "dense"
    Options = DenseOptions

    def step(self, ctx: StepContext) -> None:
        algo = self.opts.algo
        flat = flatten_grads(self.params)
        self.comm.allreduce(flat, algo=algo, tag="gradients")
        flat.div_(self.comm.world_size)
        assign_grads(self.params, flat)
        self.optimizer.step()
        self._signals = {"collective": f"allreduce-{algo}"}

    def step_averaged(self, ctx: StepContext, buckets: int) -> None:
        """Step on gradients that already hold the cluster mean: the optimizer wrapper
        allreduced them in ``buckets`` buckets during backward
        (:mod:`flexsync.integrations.overlap`), the same sum as :meth:`step`'s one
        collective."""
        self.optimizer.step()
        self._signals = {"collective": f"allreduce-{self.opts.algo}", "buckets": buckets}
