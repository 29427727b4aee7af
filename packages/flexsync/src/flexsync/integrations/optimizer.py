"""The optimizer-wrapper API: use any flexsync strategy from your own training loop.

    dist.init_process_group("gloo")           # or run under torchrun
    opt = DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.01), model,
                               strategy="dense")
    for x, y in my_loader:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()                             # aggregates across workers, then steps

Like Horovod's ``DistributedOptimizer``: the wrapped optimizer's ``step`` becomes the
strategy's step. Parameters are broadcast from rank 0 at construction, so every worker starts
from the same model.
"""

from __future__ import annotations

from typing import Any

import torch

from flexsync.comm import Communicator
from flexsync.net.conditions import ConditionsSource
from flexsync.strategies import StepContext, Strategy, build_strategy


class DistributedOptimizer:
    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        model: torch.nn.Module,
        strategy: str | Strategy = "dense",
        comm: Communicator | None = None,
        conditions: ConditionsSource | None = None,
        steps_per_epoch: int | None = None,
        **strategy_options: Any,
    ) -> None:
        self.optimizer = optimizer
        self.model = model
        self.comm = comm or Communicator()
        for t in list(model.parameters()) + list(model.buffers()):
            self.comm.broadcast(t.data, 0, accounted=False)
        if isinstance(strategy, Strategy):
            if strategy_options:
                raise ValueError("pass strategy options to the strategy, not to the wrapper")
            self.strategy = strategy
        else:
            buffers = [b for b in model.buffers() if b.is_floating_point()]
            self.strategy = build_strategy(strategy, model.parameters(), optimizer, self.comm,
                                           buffers=buffers, **strategy_options)
        self.conditions = conditions
        self.steps_per_epoch = steps_per_epoch
        self.num_steps = 0

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        epoch = self.num_steps / self.steps_per_epoch if self.steps_per_epoch else 0.0
        cond = (self.conditions.at(self.num_steps, int(epoch), 0.0)
                if self.conditions is not None else None)
        self.strategy.step(StepContext(self.num_steps, epoch, cond,
                                       steps_per_epoch=self.steps_per_epoch))
        self.num_steps += 1

    def signals(self) -> dict[str, Any]:
        return self.strategy.signals()

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(),
                "strategy": self.strategy.state_dict(), "num_steps": self.num_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.strategy.load_state_dict(state["strategy"])
        self.num_steps = int(state["num_steps"])
