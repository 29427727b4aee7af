"""AG top-k: the common baseline (every worker allgathers its own k values and indices)."""

from __future__ import annotations

from typing import Literal

from flexsync.net import cost_model
from flexsync.net.conditions import NetworkConditions
from flexsync.strategies.base import StepContext
from flexsync.strategies.sparse import SparseOptions, SparseStrategy


class TopkOptions(SparseOptions):
    name: Literal["topk"] = "topk"


class TopK(SparseStrategy):
    """Top-k (fused, layer-wise, random-k or sampled-threshold) with error feedback,
    aggregated by allgather. Its cost grows with the number of workers (AR-Topk paper §II)."""

    name = "topk"
    Options = TopkOptions

    def collective(self, ctx: StepContext, ratio: float) -> str:
        return "allgather"

    def cost(self, ratio: float, cond: NetworkConditions | None, ctx: StepContext) -> float:
        if cond is None:
            return ratio
        return cost_model.ag_topk(self.priced_params(ctx), ratio, self.comm.world_size,
                                  cond.alpha, cond.beta)
