"""Split a strategy's step into "aggregate now" and "update later" without changing the strategy.

Every strategy aggregates and then calls ``self.optimizer.step()`` itself (docs/methods.md;
``Strategy.step``). To offer Horovod's ``synchronize()`` (aggregate, let the user unscale or
clip the combined gradients, then ``step()``), the wrapper hands the strategy a
:class:`StepGate` in place of the optimizer. The gate forwards everything (``state``,
``param_groups``, ``state_dict``, …) to the real optimizer; only ``step()`` differs: while
deferring, it records the call instead of stepping, together with any hyperparameter the
strategy changed for that step (ScaDLES scales the learning rate around its step), and
:meth:`StepGate.apply` later performs exactly that step. A ``load_state_dict`` after the
recorded step (the MOO controller restoring an exploration snapshot) discards the step, as
the restore would have undone it. Outside deferral the gate steps at once, after the
wrapper's ``before_step`` hook (which clears the gradients of parameters no rank used).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def _hyperparameters(group: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in group.items() if k not in ("params", "param_names")}


def _same(a: Any, b: Any) -> bool:
    if torch.is_tensor(a) or torch.is_tensor(b):
        return a is b
    return a == b


class StepGate:
    """The optimizer as a strategy sees it; see the module docstring.

    Args:
        optimizer: the real optimizer.
        before_step: called right before every real ``optimizer.step()``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, before_step: Callable[[], None]) -> None:
        self._optimizer = optimizer
        self._before_step = before_step
        self._deferring = False
        self._baseline: list[dict[str, Any]] = []
        self.pending: list[dict[str, Any]] | None = None   # per group: overrides for the step

    def __getattr__(self, name: str) -> Any:        # state, param_groups, state_dict, ...
        return getattr(self._optimizer, name)

    def begin(self) -> None:
        """Start deferring: the strategy's next ``step()`` is recorded, not performed."""
        self._deferring = True
        self.pending = None
        self._baseline = [_hyperparameters(g) for g in self._optimizer.param_groups]

    def end(self) -> None:
        self._deferring = False

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        if not self._deferring:
            self._before_step()
            return self._optimizer.step(closure)
        if closure is not None:
            raise RuntimeError("a strategy stepped with a closure; it cannot be deferred")
        self.pending = [
            {k: v for k, v in _hyperparameters(g).items() if not _same(base.get(k), v)}
            for g, base in zip(self._optimizer.param_groups, self._baseline, strict=True)]
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pending = None        # a restore undoes the step recorded before it
        self._optimizer.load_state_dict(state)

    def discard(self) -> None:
        """Drop the recorded step (a skipped step: non-finite gradients)."""
        self.pending = None

    def apply(self) -> bool:
        """Perform the recorded step with the strategy's overrides in force, then restore the
        current hyperparameters. Returns whether there was a step to perform."""
        pending, self.pending = self.pending, None
        if pending is None:
            return False
        groups = self._optimizer.param_groups
        saved = [{k: g[k] for k in over} for g, over in zip(groups, pending, strict=True)]
        for g, over in zip(groups, pending, strict=True):
            g.update(over)
        try:
            self._before_step()
            self._optimizer.step()
        finally:
            for g, old in zip(groups, saved, strict=True):
                g.update(old)
        return True
