"""The optimizer-wrapper API: use any flexsync strategy from your own training loop.

    dist.init_process_group("gloo")           # or run under torchrun
    opt = DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.01), model,
                               strategy="dense")
    for x, y in my_loader:
        opt.zero_grad()
        loss_fn(opt.model(x), y).backward()    # opt.model is the model (DDP-wrapped for "ddp")
        opt.step()                             # aggregates across workers, then steps

Like Horovod's ``DistributedOptimizer``: the wrapped optimizer's ``step`` becomes the
strategy's step. Parameters are broadcast from rank 0 at construction, so every worker starts
from the same model.

Every registered strategy works through it. Strategy options are validated by the options
model declared beside each strategy, the same one a config file's ``strategy:`` section goes
through (so ``strategy="topk", ratio=0.01`` means exactly what
``strategy: {name: topk, ratio: 0.01}`` means in ``flexsync run``), and a bad value raises
:class:`~flexsync.errors.ConfigError` naming the option and its allowed values.
What some strategies need beyond gradients:

* ``flexible`` chooses its collective from the network: pass ``conditions`` (a
  :class:`~flexsync.net.conditions.NetworkConditions` or a conditions source).
* ``fedavg`` with a period in epochs needs ``steps_per_epoch``.
* ``scadles`` weights every worker by its batch: pass ``batch_size`` (here, or per step to
  :meth:`DistributedOptimizer.step` when it varies).
* ``gravac``'s throughput table needs each step's duration: the wrapper measures the wall
  time between consecutive ``step()`` calls and agrees on the slowest rank's (one tiny
  unaccounted allreduce per step, as the training loop agrees its clock).
* ``ddp`` aggregates inside ``backward()``: run the forward pass through ``opt.model``.
* ``selsync``, ``fedavg`` and ``localsgd`` keep replicas apart between syncs: evaluate inside
  ``with opt.evaluation():`` to see the replicas' mean.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn as nn

from flexsync.comm import Communicator
from flexsync.errors import ConfigError
from flexsync.net.conditions import ConditionsSource, FixedConditions, NetworkConditions
from flexsync.strategies import ContextBuilder, Strategy, build_strategy, validate_options


def _positive_int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be an int >= 1, got {value!r}")
    return value


class DistributedOptimizer:
    """Wrap ``optimizer`` (over ``model``'s parameters) so that :meth:`step` aggregates the
    gradients across workers with ``strategy`` and then steps.

    Args:
        optimizer: a torch optimizer over (a subset of) ``model``'s parameters.
        model: the local replica; rank 0's parameters and buffers are broadcast to all.
        strategy: a registered strategy name (see :data:`flexsync.STRATEGIES`) or a
            constructed :class:`~flexsync.strategies.Strategy`.
        comm: the accounting communicator (default: one on the default process group).
        conditions: the network the cost models price (``flexible`` needs it).
        steps_per_epoch: for periods given in epochs (``fedavg``) and the epoch counter.
        batch_size: samples this rank trains on per step (``scadles``, ``gravac``); a
            per-step value can be passed to :meth:`step`.
        **strategy_options: the strategy's options (its config section's keys).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        model: nn.Module,
        strategy: str | Strategy = "dense",
        comm: Communicator | None = None,
        conditions: NetworkConditions | ConditionsSource | None = None,
        steps_per_epoch: int | None = None,
        batch_size: int | None = None,
        **strategy_options: Any,
    ) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        owned = {id(p) for p in model.parameters()}
        if any(id(p) not in owned for g in optimizer.param_groups for p in g["params"]):
            raise ValueError("the optimizer holds parameters that are not the model's; "
                             "their gradients would never be aggregated")
        self.steps_per_epoch = _positive_int(steps_per_epoch, "steps_per_epoch")
        self.batch_size = _positive_int(batch_size, "batch_size")
        if isinstance(strategy, str):
            options = validate_options(strategy, strategy_options)
            self._check_needs(strategy, options, conditions, self.steps_per_epoch)
        elif isinstance(strategy, Strategy):
            if strategy_options:
                raise ValueError("pass strategy options to the strategy, not to the wrapper")
        else:
            raise TypeError(f"strategy must be a name or a Strategy, got "
                            f"{type(strategy).__name__}")
        self.optimizer = optimizer
        self.comm = comm or Communicator()
        for t in list(model.parameters()) + list(model.buffers()):
            self.comm.broadcast(t.data, 0, accounted=False)
        if isinstance(strategy, Strategy):
            self.strategy = strategy
        else:
            buffers = [b for b in model.buffers() if b.is_floating_point()]
            self.strategy = build_strategy(strategy, model.parameters(), optimizer, self.comm,
                                           buffers=buffers, **strategy_options)
        self.conditions: ConditionsSource | None = (
            FixedConditions(conditions) if isinstance(conditions, NetworkConditions)
            else conditions)
        self.contexts = ContextBuilder(self.conditions, self.steps_per_epoch)
        self.module = model
        self.model = self.strategy.wrap_model(model)     # what forward must run through
        self._forwards = 0
        if self.model is not model:
            self.model.register_forward_pre_hook(self._count_forward)
        self._timed = self.strategy.name == "gravac"
        self._last_start: float | None = None
        self.num_steps = 0

    @staticmethod
    def _check_needs(name: str, options: Any,
                     conditions: NetworkConditions | ConditionsSource | None,
                     steps_per_epoch: int | None) -> None:
        """Refuse now what the strategy would otherwise fail on at its first step."""
        if name == "flexible" and conditions is None:
            raise ConfigError("strategy 'flexible' needs conditions= (NetworkConditions or a "
                              "conditions source): it picks its collective from the network")
        if name == "fedavg" and options.period_epochs is not None and steps_per_epoch is None:
            raise ConfigError("strategy 'fedavg' with period_epochs needs steps_per_epoch= "
                              "(or give period_steps instead)")

    def _count_forward(self, module: nn.Module, args: Any) -> None:
        self._forwards += 1

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def _step_time(self) -> float | None:
        """The previous step's duration (from its ``step()`` call to this one: compute and
        aggregation), agreed over ranks as the slowest rank's."""
        now = time.perf_counter()
        last, self._last_start = self._last_start, now
        if not self._timed or last is None:
            return None
        local = now - last
        agreed = self.comm.allreduce(torch.tensor([local], dtype=torch.float64,
                                                  device=self.comm.device),
                                     op="max", accounted=False, scalable=False, tag="clock")
        return float(agreed[0])

    def step(self, batch_size: int | None = None) -> None:
        """Aggregate this step's gradients across workers (the strategy's step), then update
        the parameters. ``batch_size`` overrides the constructor's for this step."""
        if self.model is not self.module and self._forwards == 0:
            raise RuntimeError(f"strategy {self.strategy.name!r} aggregates inside backward(): "
                               "run the forward pass through opt.model, not the bare model")
        self._forwards = 0
        batch = _positive_int(batch_size, "batch_size") or self.batch_size
        prev = self._step_time()
        self.strategy.step(self.contexts.context(self.num_steps, prev_step_s=prev,
                                                 batch_size=batch))
        self.num_steps += 1

    def signals(self) -> dict[str, Any]:
        """The last step's strategy signals (ratio, collective, sync, …)."""
        return self.strategy.signals()

    def summary(self) -> dict[str, Any]:
        """Run-level figures of the strategy (e.g. SelSync's LSSR)."""
        return self.strategy.summary()

    @contextlib.contextmanager
    def evaluation(self) -> Iterator[None]:
        """Evaluate inside this block: strategies whose replicas drift apart (selsync,
        fedavg, localsgd) swap in the replicas' mean and restore the local weights after.
        Every rank must enter it (it communicates)."""
        self.strategy.before_eval()
        try:
            yield
        finally:
            self.strategy.after_eval()

    def close(self) -> None:
        """Release what the strategy installed (the ``ddp`` baseline's accounting wrapper)."""
        self.strategy.close()

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(),
                "strategy": self.strategy.state_dict(), "num_steps": self.num_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.strategy.load_state_dict(state["strategy"])
        self.num_steps = int(state["num_steps"])
