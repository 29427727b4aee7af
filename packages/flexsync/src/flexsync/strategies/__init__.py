"""Communication strategies: one file per method, all on :class:`Strategy`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from flexsync.comm import Communicator
from flexsync.errors import ConfigError
from flexsync.strategies.accordion import Accordion
from flexsync.strategies.artopk import ARTopK
from flexsync.strategies.auto import Auto
from flexsync.strategies.base import ContextBuilder, StepContext, Strategy
from flexsync.strategies.ddp import DDPBaseline
from flexsync.strategies.dense import Dense
from flexsync.strategies.diloco import DiLoCo
from flexsync.strategies.fedavg import FedAvg
from flexsync.strategies.flexible import Flexible
from flexsync.strategies.gravac import GraVAC
from flexsync.strategies.localsgd import LocalSGD
from flexsync.strategies.options import Options
from flexsync.strategies.postlocalsgd import PostLocalSGD
from flexsync.strategies.scadles import ScaDLES
from flexsync.strategies.selsync import SelSync
from flexsync.strategies.topk import TopK
from flexsync.strategies.torchft_peer import TorchFT

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (Dense, DDPBaseline, TopK, ARTopK, Flexible, SelSync, FedAvg,
                              LocalSGD, GraVAC, Accordion, ScaDLES, DiLoCo, PostLocalSGD,
                              Auto)
}

#: Other libraries' methods run inside flexsync's loop for comparison only (torchft's DiLoCo
#: and LocalSGD, issue #19). Kept out of STRATEGIES: they need an optional extra, and the
#: suites that cover every strategy (checkpoints, the optimizer wrapper, CUDA, config fuzz)
#: do not apply to them; a config still names them like any strategy.
PEERS: dict[str, type[Strategy]] = {TorchFT.name: TorchFT}


def strategy_class(name: Any) -> type[Strategy]:
    """The registered strategy called ``name``; :class:`ConfigError` naming the choices."""
    known = {**STRATEGIES, **PEERS}
    if not isinstance(name, str) or name not in known:
        raise ConfigError(f"unknown strategy {name!r}; expected one of {sorted(known)}")
    return known[name]


def validate_options(name: str, options: dict[str, Any]) -> Options:
    """Validate keyword ``options`` of strategy ``name`` with its own options model."""
    return strategy_class(name).Options.parse(name, options)


def build_strategy(
    name: str, params: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
    comm: Communicator, **options: Any,
) -> Strategy:
    """Construct a registered strategy by name with its keyword options."""
    return strategy_class(name)(params, optimizer, comm, **options)


__all__ = [
    "Strategy", "StepContext", "ContextBuilder", "Dense", "TopK", "ARTopK", "Flexible",
    "SelSync", "FedAvg", "LocalSGD", "DiLoCo", "GraVAC", "Accordion", "ScaDLES", "DDPBaseline",
    "PostLocalSGD", "Auto", "TorchFT", "STRATEGIES", "PEERS", "Options", "build_strategy",
    "strategy_class", "validate_options",
]
