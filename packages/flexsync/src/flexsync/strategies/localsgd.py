"""Local SGD (ddl-methods.md §2.5): every worker steps on its own gradients; SelSync with
δ = ∞. ``average_every`` = H > 0 adds periodic parameter averaging every H steps (the common
local-SGD variant); the default 0 never averages during training (the paper's baseline), and
evaluation sees the replica mean (``eval_model``, see :mod:`~flexsync.strategies.local`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from flexsync.comm import Communicator
from flexsync.strategies.base import StepContext
from flexsync.strategies.local import LocalUpdateStrategy


class LocalSGD(LocalUpdateStrategy):
    name = "localsgd"

    def __init__(self, params: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                 comm: Communicator, average_every: int = 0, **base: Any) -> None:
        super().__init__(params, optimizer, comm, **base)
        if average_every < 0:
            raise ValueError(f"average_every must be >= 0, got {average_every}")
        self.average_every = average_every

    def step(self, ctx: StepContext) -> None:
        self.optimizer.step()
        synced = self.average_every > 0 and (ctx.step + 1) % self.average_every == 0
        if synced:
            self.average_parameters()
        self.count(synced)
        self._signals = self.base_signals(ctx.step, synced)
