"""Local SGD (docs/methods.md §2.5): every worker steps on its own gradients; SelSync with
δ = ∞. ``average_every`` = H > 0 adds periodic parameter averaging every H steps (the common
local-SGD variant); the default 0 never averages during training (the paper's baseline), and
evaluation sees the replica mean (``eval_model``, see :mod:`~flexsync.strategies.local`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import torch
from pydantic import Field

from flexsync.comm import Communicator
from flexsync.strategies.base import StepContext
from flexsync.strategies.local import LocalUpdateOptions, LocalUpdateStrategy


class LocalSGDOptions(LocalUpdateOptions):
    name: Literal["localsgd"] = "localsgd"
    average_every: int = Field(0, ge=0, description="0: never average (SelSync with δ = ∞)")


class LocalSGD(LocalUpdateStrategy):
    name = "localsgd"
    Options = LocalSGDOptions

    def __init__(self, params: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                 comm: Communicator, **options: Any) -> None:
        super().__init__(params, optimizer, comm, **options)
        self.average_every = self.opts.average_every

    def step(self, ctx: StepContext) -> None:
        self.optimizer.step()
        synced = self.average_every > 0 and (ctx.step + 1) % self.average_every == 0
        if synced:
            self.average_parameters()
        self.count(synced)
        self._signals = self.base_signals(ctx.step, synced)
