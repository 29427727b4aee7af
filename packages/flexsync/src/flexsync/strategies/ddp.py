"""The peer a PyTorch user would pick instead: plain DistributedDataParallel, optionally with
PyTorch's own fp16 or PowerSGD communication hooks (``hook: none`` is DDP's built-in C++
allreduce). A comparison baseline for benchmarks.

DDP overlaps bucketed allreduces with the backward pass, so aggregation happens inside
``loss.backward()`` and :meth:`step` only steps the optimizer. So that its traffic is counted
and priced like every other strategy's, the allreduces DDP's Python hooks issue are recorded
on the run's Communicator (by wrapping ``torch.distributed.all_reduce`` in this worker
process for the lifetime of the strategy).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any, Literal

import torch
import torch.distributed as dist
import torch.nn as nn
from pydantic import Field

from flexsync.comm import CommRecord, Communicator
from flexsync.strategies.base import StepContext, Strategy
from flexsync.strategies.options import Options

HOOKS = ("none", "allreduce", "fp16", "powersgd")


class DDPOptions(Options):
    """``hook``: none (DDP's built-in C++ allreduce), allreduce, fp16 or powersgd (PyTorch's
    own hooks); PowerSGD's rank and warm-up as its users would tune them."""

    name: Literal["ddp"] = "ddp"
    hook: Literal["none", "allreduce", "fp16", "powersgd"] = "none"
    powersgd_rank: int = Field(2, ge=1)
    powersgd_start_iter: int = Field(10, ge=1)
    bucket_cap_mb: float = Field(25.0, gt=0)

    def resume_refusal(self) -> str | None:
        """Why a resumed run would not continue this one exactly (None: it would). PyTorch's
        PowerSGD hook keeps state flexsync cannot restore bit for bit: its iteration count,
        error-feedback and P/Q matrices keyed by DDP bucket index, and its RNG; a fresh DDP
        wrapper also rebuilds its buckets on the first step, so the keys may not line up."""
        if self.hook == "powersgd":
            return ("strategy ddp with hook powersgd cannot resume exactly (PyTorch's PowerSGD "
                    "hook state: error feedback, Q matrices, RNG, iteration count, is not "
                    "checkpointed); a resumed run would be approximate, so it is refused: "
                    "start a new run, or use hook none/allreduce/fp16")
        return None


class DDPBaseline(Strategy):
    name = "ddp"
    Options = DDPOptions

    def __init__(self, params: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                 comm: Communicator, **options: Any) -> None:
        super().__init__(params, optimizer, comm, **options)
        o = self.opts
        self.hook = o.hook
        self.powersgd_rank = o.powersgd_rank
        self.powersgd_start_iter = o.powersgd_start_iter
        self.bucket_cap_mb = o.bucket_cap_mb
        self._state: Any = None
        self._original = None

    def wrap_model(self, model: nn.Module) -> nn.Module:
        from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
        from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook as psgd

        # Buffers are not re-synced every forward (flexsync's strategies do not either);
        # newer torch names the flag forward_sync_buffers.
        params = inspect.signature(nn.parallel.DistributedDataParallel).parameters
        no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in params
                   else {"broadcast_buffers": False})
        ddp = nn.parallel.DistributedDataParallel(
            model, bucket_cap_mb=self.bucket_cap_mb, **no_sync)
        if self.hook == "none":          # DDP's built-in C++ allreduce: counted in step()
            return ddp
        if self.hook == "allreduce":
            ddp.register_comm_hook(None, default_hooks.allreduce_hook)
        elif self.hook == "fp16":
            ddp.register_comm_hook(None, default_hooks.fp16_compress_hook)
        else:
            self._state = psgd.PowerSGDState(
                process_group=None, matrix_approximation_rank=self.powersgd_rank,
                start_powerSGD_iter=self.powersgd_start_iter, random_seed=0)
            ddp.register_comm_hook(self._state, psgd.powerSGD_hook)
        self._count_allreduces()
        return ddp

    def _count_allreduces(self) -> None:
        if self._original is not None:
            return
        original, comm = dist.all_reduce, self.comm

        def counted(tensor: torch.Tensor, *args: Any, **kwargs: Any):
            if comm.issuing:             # flexsync's own collective: it accounts for itself
                return original(tensor, *args, **kwargs)
            comm.record(CommRecord("allreduce", tensor.numel() * tensor.element_size(),
                                    tensor.numel(), "ring", True, f"ddp-{self.hook}"))
            return original(tensor, *args, **kwargs)

        self._original = original
        dist.all_reduce = counted

    def close(self) -> None:
        if self._original is not None:
            dist.all_reduce = self._original
            self._original = None

    def step(self, ctx: StepContext) -> None:
        if self.hook == "none" and self.comm.world_size > 1:
            n = self.num_params
            self.comm.record(CommRecord("allreduce", 4 * n, n, "ring", True, "ddp"))
        self.optimizer.step()
        self._signals = {"collective": f"ddp-{self.hook}"}
