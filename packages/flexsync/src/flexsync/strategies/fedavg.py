"""FedAvg(C, E): local SGD with periodic averaging over a random fraction C of the workers
(docs/methods.md §2.5).

Every E local epochs (``period_epochs``; E·|D_n|/b steps, which needs the loop's
``steps_per_epoch``) or every ``period_steps`` steps, the participants S — ⌈C·N⌉ ranks drawn
with a generator seeded by (seed, round), so every rank draws the same set without talking —
average their parameters. Non-participants keep their local weights (the paper does not say;
our decision, docs/methods.md §2.5). The paper's configurations are
(C, E) ∈ {1, 0.5} × {0.25, 0.125}; the authors' code uses C = 1 with a fixed 250-step period.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal

import torch
from pydantic import Field, model_validator

from flexsync.comm import Communicator
from flexsync.strategies.base import StepContext
from flexsync.strategies.local import LocalUpdateOptions, LocalUpdateStrategy


def fedavg_participants(round_: int, world_size: int, fraction: float, seed: int) -> list[int]:
    """The ⌈C·N⌉ ranks averaging in ``round_``, sorted; identical on every rank."""
    m = max(1, math.ceil(fraction * world_size - 1e-9))
    g = torch.Generator().manual_seed(seed * 1_000_003 + round_)
    return sorted(torch.randperm(world_size, generator=g)[:m].tolist())


class FedAvgOptions(LocalUpdateOptions):
    """FedAvg(C, E); the period defaults to E = 0.25 local epochs."""

    name: Literal["fedavg"] = "fedavg"
    fraction: float = Field(1.0, gt=0, le=1)
    period_epochs: float | None = Field(None, gt=0)
    period_steps: int | None = Field(None, ge=1)
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _one_period(self) -> FedAvgOptions:
        if self.period_epochs is not None and self.period_steps is not None:
            raise ValueError("give either 'period_epochs' or 'period_steps', not both")
        if self.period_epochs is None and self.period_steps is None:
            self.period_epochs = 0.25
        if self.fraction < 1 and self.sync_values != "fp32":
            raise ValueError("\x1fsync_values\x1fa fraction below 1 averages a subset whose "
                             "replicas differ; compact sync values need fraction 1")
        return self


class FedAvg(LocalUpdateStrategy):
    name = "fedavg"

    Options = FedAvgOptions

    def __init__(self, params: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                 comm: Communicator, **options: Any) -> None:
        super().__init__(params, optimizer, comm, **options)
        o = self.opts
        self.fraction = o.fraction
        self.period_epochs = o.period_epochs
        self.period_steps = o.period_steps
        self.seed = o.seed

    def _period(self, ctx: StepContext) -> float:
        if self.period_steps is not None:
            return float(self.period_steps)
        if not ctx.steps_per_epoch:
            raise ValueError("fedavg with period_epochs needs the steps per epoch; "
                             "pass steps_per_epoch or use period_steps")
        return max(1.0, self.period_epochs * ctx.steps_per_epoch)

    def step(self, ctx: StepContext) -> None:
        self.optimizer.step()
        period = self._period(ctx)
        round_ = math.floor((ctx.step + 1) / period + 1e-9)
        synced = round_ > math.floor(ctx.step / period + 1e-9)    # a period ended this step
        if synced:
            members = fedavg_participants(round_, self.comm.world_size, self.fraction, self.seed)
            self.average_parameters(None if len(members) == self.comm.world_size else members)
        self.count(synced)
        self._signals = self.base_signals(ctx.step, synced)
