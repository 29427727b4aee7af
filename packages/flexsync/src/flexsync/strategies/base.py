"""The strategy interface: how every method plugs into training.

A strategy is called once per training step, after ``loss.backward()``. It owns aggregation
and the optimizer step (some methods step before averaging), exposes its per-step signals for
logging, and carries checkpointable state. It talks to other workers only through its
:class:`~flexsync.comm.Communicator`, so every byte it sends is accounted and priced.
Modeled on the small-object style of PyTorch's DDP communication hooks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from flexsync.comm import Communicator
from flexsync.net.conditions import ConditionsSource, NetworkConditions
from flexsync.strategies.options import Options


@dataclass(frozen=True)
class StepContext:
    """What a strategy may know about the current step; identical on every rank."""

    step: int
    epoch: float
    conditions: NetworkConditions | None = None   # modeled network now (None on loopback)
    priced_params: int | None = None   # model size the cost model prices (network.model_params)
    steps_per_epoch: int | None = None            # for periods given in epochs (FedAvg's E)
    prev_step_s: float | None = None   # modeled duration of the previous step (None at the first)
    batch_size: int | None = None      # samples this rank trains on per step
    total_steps: int | None = None     # the run's step budget (None: unknown, e.g. a wrapper)
    streaming: bool = False            # batches come from per-device streams (``stream:``)


@dataclass(frozen=True)
class ContextBuilder:
    """Builds each step's :class:`StepContext` the same way for the training loop and the
    optimizer wrapper: the epoch from ``steps_per_epoch``, the network from ``conditions``
    at the step's (agreed) time."""

    conditions: ConditionsSource | None = None
    steps_per_epoch: int | None = None
    priced_params: int | None = None
    total_steps: int | None = None
    streaming: bool = False

    def context(self, step: int, time_s: float = 0.0, prev_step_s: float | None = None,
                batch_size: int | None = None) -> StepContext:
        spe = self.steps_per_epoch
        epoch = step / spe if spe else 0.0
        cond = None if self.conditions is None else self.conditions.at(step, int(epoch), time_s)
        return StepContext(step, epoch, cond, self.priced_params, steps_per_epoch=spe,
                           prev_step_s=prev_step_s, batch_size=batch_size,
                           total_steps=self.total_steps, streaming=self.streaming)


class Strategy(ABC):
    """Base class. Subclasses set ``name`` and ``Options`` (their options model, declared
    beside them) and implement :meth:`step`; keyword ``options`` are validated by
    ``Options`` into ``self.opts``."""

    name: ClassVar[str] = ""
    Options: ClassVar[type[Options]] = Options

    def __init__(
        self, params: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
        comm: Communicator, *, buffers: Iterable[torch.Tensor] = (), **options: Any,
    ) -> None:
        self.opts = self.Options.parse(self.name, options)
        self.params = [p for p in params if p.requires_grad]
        self.buffers = list(buffers)   # floating model buffers (e.g. BatchNorm statistics)
        if not self.params:
            raise ValueError("the strategy got no trainable parameters")
        self.optimizer = optimizer
        self.comm = comm
        self.num_params = sum(p.numel() for p in self.params)
        self._signals: dict[str, Any] = {}

    @abstractmethod
    def step(self, ctx: StepContext) -> None:
        """Aggregate this step's gradients across workers and update the parameters."""

    def signals(self) -> dict[str, Any]:
        """The last step's method-specific signals (ratio, collective, gain, …) for the log."""
        return dict(self._signals)

    def wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module the training loop runs forward/backward through (default: the model
        itself; the DDP baseline wraps it)."""
        return model

    def close(self) -> None:
        """Release anything the strategy installed (called once when training ends)."""
        return None

    def before_eval(self) -> None:
        """Called on every rank before the periodic test evaluation (e.g. to average
        replicas that drifted apart). Default: nothing."""
        return None

    def after_eval(self) -> None:
        """Called on every rank after that evaluation (e.g. to restore the local replicas
        that :meth:`before_eval` replaced). Default: nothing."""
        return None

    def summary(self) -> dict[str, Any]:
        """Run-level figures merged into ``summary.json`` (e.g. a sync ratio). Default: none."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"strategy {self.name!r} has no state, got keys {sorted(state)}")
