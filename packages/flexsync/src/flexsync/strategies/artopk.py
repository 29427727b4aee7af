"""AR-Topk (AR-Topk paper Alg. 1; docs/methods.md §1.1): one worker's top-k index set is
broadcast (STAR: round-robin; VAR: the largest local top-k norm), then every worker's values
at those positions are summed by one ring or tree allreduce. Bandwidth-optimal: a worker
sends k indices once every N steps and k values every step, whatever N is."""

from __future__ import annotations

from typing import Literal

from flexsync.net import cost_model
from flexsync.net.conditions import NetworkConditions
from flexsync.strategies.base import StepContext
from flexsync.strategies.sparse import SparseOptions, SparseStrategy


class ARTopkOptions(SparseOptions):
    name: Literal["artopk"] = "artopk"
    algo: Literal["ring", "tree"] = "ring"


class ARTopK(SparseStrategy):
    name = "artopk"
    Options = ARTopkOptions

    @property
    def algo(self) -> str:
        return self.opts.algo

    def collective(self, ctx: StepContext, ratio: float) -> str:
        return f"art_{self.algo}"

    def cost(self, ratio: float, cond: NetworkConditions | None, ctx: StepContext) -> float:
        if cond is None:
            return ratio
        return cost_model.compressed_cost(f"art_{self.algo}", self.priced_params(ctx), ratio,
                                          self.comm.world_size, cond.alpha, cond.beta)
