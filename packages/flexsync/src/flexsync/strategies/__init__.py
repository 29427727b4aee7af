"""Communication strategies: one file per method, all on :class:`Strategy`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from flexsync.comm import Communicator
from flexsync.strategies.base import StepContext, Strategy
from flexsync.strategies.dense import Dense

STRATEGIES: dict[str, type[Strategy]] = {cls.name: cls for cls in (Dense,)}


def build_strategy(
    name: str, params: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
    comm: Communicator, **options: Any,
) -> Strategy:
    """Construct a registered strategy by name with its plain keyword options."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; expected one of {sorted(STRATEGIES)}")
    return STRATEGIES[name](params, optimizer, comm, **options)


__all__ = ["Strategy", "StepContext", "Dense", "STRATEGIES", "build_strategy"]
