"""The peer a PyTorch user would pick for periodic averaging: PyTorch's own
``torch.distributed.optim.PostLocalSGDOptimizer`` with a ``PeriodicModelAverager``
(docs/methods.md §5.6). A comparison baseline for DiLoCo (issue #19): the same H, no outer
optimizer, no compression.

Every worker steps its optimizer on its own gradients; the averager replaces the parameters
by their mean with one ``torch.distributed.all_reduce`` of the flattened parameters when
``(step − warmup_steps) mod period == 0`` (its own counter, from 0). PyTorch's warm-up phase
leaves gradient averaging to DDP's post-local-SGD hook; there is no DDP here, so the warm-up
is 0. That allreduce is PyTorch's, so it is recorded on the run's Communicator at the same
condition, and its bytes are counted and priced like every other strategy's. Evaluation
sees the replica mean, as for the other local-update strategies
(:mod:`~flexsync.strategies.local`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any, Literal

import torch
from pydantic import Field

from flexsync.comm import CommRecord, Communicator
from flexsync.strategies.base import StepContext
from flexsync.strategies.local import LocalUpdateOptions, LocalUpdateStrategy


class PostLocalSGDOptions(LocalUpdateOptions):
    name: Literal["postlocalsgd"] = "postlocalsgd"
    period: int = Field(10, ge=1, description="H: average every H steps")


class PostLocalSGD(LocalUpdateStrategy):
    name = "postlocalsgd"
    Options = PostLocalSGDOptions

    def __init__(self, params: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                 comm: Communicator, **options: Any) -> None:
        from torch.distributed.algorithms.model_averaging.averagers import (
            PeriodicModelAverager,
        )
        from torch.distributed.optim import PostLocalSGDOptimizer

        super().__init__(params, optimizer, comm, **options)
        o = self.opts
        with warnings.catch_warnings():          # PyTorch warns that period 1 is plain DP
            warnings.simplefilter("ignore", UserWarning)
            self.averager = PeriodicModelAverager(period=o.period, warmup_steps=0)
        self.wrapped = PostLocalSGDOptimizer(optim=optimizer, averager=self.averager)
        tensors = [p for g in optimizer.param_groups for p in g["params"]]
        self.numel = sum(p.numel() for p in tensors)
        self.nbytes = sum(p.numel() * p.element_size() for p in tensors)

    def _averages_now(self) -> bool:
        a = self.averager
        return a.step >= a.warmup_steps and (a.step - a.warmup_steps) % a.period == 0

    def step(self, ctx: StepContext) -> None:
        synced = self._averages_now() and self.comm.world_size > 1
        if synced:
            self.comm.record(CommRecord("allreduce", self.nbytes, self.numel, "ring",
                                        True, "postlocalsgd"))
        self.wrapped.step()
        self.count(synced)
        if synced:
            self.in_sync = True
        self._signals = self.base_signals(ctx.step, synced)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "averager_step": self.averager.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.averager.step = int(state["averager_step"])
