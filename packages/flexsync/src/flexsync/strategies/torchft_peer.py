"""torchft's own DiLoCo and LocalSGD as a peer for DiLoCo (issue #19, docs/methods.md §5.6).

torchft (``pip install torchft``, the ``torchft`` extra; never needed by CI) implements
DiLoCo (and Streaming DiLoCo) and LocalSGD around its fault-tolerant ``Manager``. This
strategy runs them unchanged inside flexsync's loop so that they train the same workload,
data shards, inner optimizer and schedule as :class:`~flexsync.strategies.diloco.DiLoCo`:

* rank 0 starts torchft's ``LighthouseServer`` (``min_replicas`` = the world size) and sends
  its address to the other ranks over the run's own process group;
* every rank is one torchft replica group of one process: its own ``TCPStore``, a ``Manager``
  with torchft's ``ProcessGroupGloo``, a synchronous quorum (DiLoCo requires it) and
  ``init_sync: false`` (the loop has already broadcast rank 0's weights; with torchft's default
  the first quorum would also overwrite every other replica's first H steps and optimizer
  state by rank 0's, a "heal" of a replica that is not behind);
* ``algorithm: diloco`` wraps the parameters in torchft's ``DiLoCo`` with an outer
  ``torch.optim.SGD`` (lr, momentum, Nesterov: the paper's 0.7 / 0.9 by default);
  ``algorithm: localsgd`` in torchft's ``LocalSGD``. Both register optimizer hooks: every
  ``sync_every``-th ``optimizer.step()`` torchft takes a quorum, allreduces (one collective
  per parameter tensor, fp32, no bucketing: torchft's defaults) and commits.

Those allreduces are torchft's, not the Communicator's, so each is recorded on the run's
Communicator at the step torchft syncs (detected from its own step counter), one record per
parameter tensor, and priced like every other collective. torchft's quorum and commit RPCs to
the lighthouse are not priced (a few hundred bytes per sync). No checkpoints: torchft heals
from a live peer, not from flexsync's state, so resume is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any, Literal

import torch
import torch.distributed as dist
from pydantic import AliasChoices, Field

from flexsync.comm import CommRecord, Communicator
from flexsync.strategies.base import StepContext
from flexsync.strategies.local import LocalUpdateOptions, LocalUpdateStrategy


class TorchFTOptions(LocalUpdateOptions):
    name: Literal["torchft"] = "torchft"
    algorithm: Literal["diloco", "localsgd"] = "diloco"
    sync_every: int = Field(10, ge=1, validation_alias=AliasChoices("sync_every", "h"),
                            description="H: torchft's sync_every")
    outer_lr: float = Field(0.7, gt=0, description="diloco: the outer SGD's lr")
    outer_momentum: float = Field(0.9, ge=0, lt=1, description="diloco: its momentum")
    nesterov: bool = True
    timeout_s: float = Field(120.0, gt=0, description="torchft's quorum/collective timeouts")


class TorchFT(LocalUpdateStrategy):
    name = "torchft"
    Options = TorchFTOptions

    def __init__(self, params: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                 comm: Communicator, **options: Any) -> None:
        try:
            from torchft import Manager, ProcessGroupGloo
            from torchft._torchft import LighthouseServer
            from torchft.local_sgd import DiLoCo, LocalSGD
        except ImportError as e:        # pragma: no cover - the extra is optional
            raise ImportError("strategy 'torchft' needs torchft: pip install "
                              "'flexsync[torchft]'") from e
        super().__init__(params, optimizer, comm, **options)
        o = self.opts
        timeout = timedelta(seconds=o.timeout_s)
        self.lighthouse = (LighthouseServer(bind="[::]:0", min_replicas=comm.world_size)
                           if comm.rank == 0 else None)
        address = [self.lighthouse.address() if self.lighthouse is not None else None]
        src = 0 if comm.group is None else dist.get_global_rank(comm.group, 0)
        dist.broadcast_object_list(address, src=src, group=comm.group)
        self.store = dist.TCPStore("localhost", 0, 1, is_master=True, wait_for_workers=False)
        self.module = torch.nn.Module()
        self.module.params = torch.nn.ParameterList(self.params)

        def load(state: dict[str, Any]) -> None:
            self.module.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])

        self.manager = Manager(
            pg=ProcessGroupGloo(timeout=timeout), min_replica_size=comm.world_size,
            load_state_dict=load,
            state_dict=lambda: {"model": self.module.state_dict(),
                                "optimizer": optimizer.state_dict()},
            replica_id=str(comm.rank), store_addr="localhost", store_port=self.store.port,
            rank=0, world_size=1, lighthouse_addr=address[0], use_async_quorum=False,
            init_sync=False,            # flexsync already broadcast rank 0's weights
            timeout=timeout, quorum_timeout=timeout, connect_timeout=timeout)
        if o.algorithm == "diloco":
            self.outer = torch.optim.SGD(self.params, lr=o.outer_lr, momentum=o.outer_momentum,
                                         nesterov=o.nesterov and o.outer_momentum > 0)
            self.wrapper = DiLoCo(self.manager, [self.module], optimizer, self.outer,
                                  sync_every=o.sync_every, pin_memory=False)
        else:
            self.wrapper = LocalSGD(self.manager, self.module, optimizer,
                                    sync_every=o.sync_every)
        self.wrapper.__enter__()
        self.sizes = [(p.numel() * p.element_size(), p.numel()) for p in self.params]

    def step(self, ctx: StepContext) -> None:
        self.optimizer.step()                    # torchft's hooks sync every H-th call
        synced = self.wrapper._local_step == 0 and self.comm.world_size > 1
        if synced:
            for nbytes, numel in self.sizes:
                self.comm.record(CommRecord("allreduce", nbytes, numel, "ring", True,
                                            "torchft"))
        self.count(synced)
        self.in_sync = synced
        self._signals = self.base_signals(ctx.step, synced)

    def close(self) -> None:
        self.wrapper.__exit__(None, None, None)
        self.manager.shutdown(wait=False)
        dist.barrier(group=self.comm.group)       # every manager gone before the lighthouse
        if self.lighthouse is not None:
            self.lighthouse.shutdown()

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError("strategy 'torchft' cannot be checkpointed: torchft heals "
                                  "from a live replica, not from flexsync's state")
