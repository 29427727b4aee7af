"""ScaDLES (docs/methods.md §4.2 and §4.4): training on streams of unequal rates.

Each device trains on the batch its stream delivered (b_i, chosen by the stream sampler);
the aggregate weights every device by its actual, post-injection batch size,
g̃ = Σ_i b_i·g_i / Σ_j b_j, and the learning rate follows the linear scaling rule for that
step only, η = η_base·Σ_j b_j / B. One collective carries b_i·g_i together with b_i and the
device's compression vote, so the weights and the vote are agreed without extra messages.

Adaptive compression: each device measures ρ_i = 1 − gain of top-k on its error-fed
gradient (paper form; ``metric="code"`` uses |‖g‖ − ‖C(g+r)‖| / ‖g‖), smooths it with an EWMA
and votes "compress" when ρ_i ≤ δ. The next step sends top-k (allgather) iff at least ⌊N/2⌋
devices voted so (the original code's majority rule), else dense — and a dense step resets
the residual.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import torch
from pydantic import Field

from flexsync.comm import Communicator
from flexsync.compress import Sparsifier, candidate_gains
from flexsync.strategies.base import StepContext, Strategy
from flexsync.strategies.grads import assign_grads, flatten_grads
from flexsync.strategies.options import Options
from flexsync.strategies.smoothing import EWMA
from flexsync.strategies.sparse import aggregate


def step_scaled(optimizer: torch.optim.Optimizer, scale: float) -> None:
    """One ``optimizer.step()`` with every group's learning rate multiplied by ``scale``
    (§4.2's linear scaling rule, η·Σ_j b_j / B), restored afterwards: the scaled rate is
    for this step only."""
    saved = [g["lr"] for g in optimizer.param_groups]
    for g in optimizer.param_groups:
        g["lr"] = g["lr"] * scale
    try:
        optimizer.step()
    finally:
        for g, lr in zip(optimizer.param_groups, saved, strict=True):
            g["lr"] = lr


class ScaDLESOptions(Options):
    """ScaDLES; pair it with a ``stream:`` section. ``base_batch`` is B of the LR rule
    (null: 64·N); ``ratio`` the top-k keep fraction (null: always dense)."""

    name: Literal["scadles"] = "scadles"
    base_batch: int | None = Field(None, ge=1, description="B of the LR rule; null = 64·N")
    lr_scaling: bool = True
    ratio: float | None = Field(0.1, gt=0, lt=1, description="top-k keep fraction; null = dense")
    delta: float = Field(0.3, ge=0)
    metric: Literal["paper", "code"] = "paper"
    smoothing: float = Field(0.1, gt=0, le=1)

    def network_aware(self) -> bool:
        return True          # stream arrivals follow the modeled clock


class ScaDLES(Strategy):
    name = "scadles"
    Options = ScaDLESOptions

    def __init__(self, params: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                 comm: Communicator, **options: Any) -> None:
        super().__init__(params, optimizer, comm, **options)
        o = self.opts
        self.base_batch = o.base_batch or 64 * comm.world_size
        self.lr_scaling = o.lr_scaling
        self.ratio, self.delta, self.metric = o.ratio, o.delta, o.metric
        self.rho = EWMA(o.smoothing)
        self.sparsifier = Sparsifier(self.num_params, "topk", device=self.params[0].device,
                                     dtype=self.params[0].dtype)
        self.compress_next = False          # agreed at the end of the previous step
        self.steps = self.compressed_steps = 0

    def _rho(self, grad: torch.Tensor, fed: torch.Tensor) -> float:
        if self.metric == "paper":
            return 1.0 - candidate_gains(fed, [self.ratio])[0]
        idx = self.sparsifier.select(fed, self.ratio)
        raw = float(grad.norm())
        return abs(raw - float(fed[idx].norm())) / raw if raw > 0 else 0.0

    def step(self, ctx: StepContext) -> None:
        if ctx.batch_size is None:
            raise ValueError("scadles needs the step's batch size (StepContext.batch_size)")
        b = float(ctx.batch_size)
        world = self.comm.world_size
        grad = flatten_grads(self.params)
        fed = self.sparsifier.feed(grad)
        vote = 0.0
        if self.ratio is not None:
            vote = 1.0 if self.rho.update(self._rho(grad, fed)) <= self.delta else 0.0
        compressed = self.compress_next and self.ratio is not None
        res = aggregate(self.comm, fed, self.sparsifier, self.ratio if compressed else 1.0,
                        "allgather", step=ctx.step, gain_norm=None,
                        extras={"batch": [b], "vote": [vote]}, weight=b)
        total = res.total
        sum_b, votes = float(res.extras["batch"][0]), float(res.extras["vote"][0])
        assign_grads(self.params, total / sum_b)

        scale = sum_b / self.base_batch if self.lr_scaling else 1.0
        step_scaled(self.optimizer, scale)

        self.steps += 1
        self.compressed_steps += int(compressed)
        self.compress_next = self.ratio is not None and votes >= world // 2
        self._signals = {"compressed": compressed, "global_batch": sum_b, "lr_scale": scale,
                         "votes": votes, "weight": b / sum_b,
                         "collective": "allgather" if compressed else "allreduce-ring"}
        if self.rho.value is not None:
            self._signals["rho"] = self.rho.value

    def summary(self) -> dict[str, Any]:
        return {"cnc_ratio": self.compressed_steps / max(1, self.steps)}

    def state_dict(self) -> dict[str, Any]:
        return {"ef": self.sparsifier.ef.state_dict(), "rho": self.rho.state_dict(),
                "compress_next": self.compress_next, "steps": self.steps,
                "compressed_steps": self.compressed_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sparsifier.ef.load_state_dict(state["ef"])
        self.rho.load_state_dict(state["rho"])
        self.compress_next = bool(state["compress_next"])
        self.steps, self.compressed_steps = int(state["steps"]), int(state["compressed_steps"])
