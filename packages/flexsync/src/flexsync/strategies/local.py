"""Shared machinery of strategies whose replicas step locally and are averaged now and then
(SelSync, FedAvg, local SGD; docs/methods.md §2.2 step 6 and §2.5).

* **Parameter averaging (PA)**: w_n ← (1/|S|)·Σ_{m∈S} w_m with one allreduce-SUM of the
  flattened parameters. Floating buffers (e.g. BatchNorm statistics) ride in the same message
  when ``average_buffers`` (recommended in §2.2; the authors' code lets them diverge), and the
  optimizer's floating state (momentum, Adam moments) when ``sync_optimizer_state`` (off by
  default: the paper keeps it local). For a subset S (FedAvg's fraction C) ranks outside S
  contribute zeros and keep their weights; the collective is still world-wide, so it is priced
  as a full allreduce (an upper bound on a subset allreduce).
* **Compact averaging** (``sync_values``: fp16, bf16 or int8; fp32 by default): a sync over
  every worker starts from identical replicas (the previous sync made them so), so averaging the
  weights equals averaging each worker's change since that sync, w ← w_sync + mean_m(w_m −
  w_sync). The change is small and smooth, so it survives a low-bit wire type where the weights
  themselves would not; what the codec loses is error-fed into the next sync. fp16/bf16 halve
  the message, int8 (one agreed scale per 2048 entries, :mod:`flexsync.comm.lowbit`)
  quarters it. Not with FedAvg subsets (their replicas differ at a sync) nor with
  ``sync_optimizer_state`` (the optimizer's state appears after the first step).
* **Evaluation** (``eval_model``): between syncs the replicas differ, and the loop evaluates each
  rank's replica on its own slice of the test set, which would mix models. With "average" (the
  default) :meth:`before_eval` swaps in the replica mean w̄ and :meth:`after_eval` restores the
  local weights, so the reported accuracy is that of one model (the one a user would deploy) and
  training is unchanged. That exchange is experiment bookkeeping, so it is not accounted
  (not in bytes, not in modeled time). "local" evaluates the replicas as they are.
* **Counters**: sync and local steps, giving LSSR = local / (local + sync) and the
  communication reduction vs. BSP, 1 / (1 − LSSR) (§2.2 step 7), in :meth:`summary`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import torch
from pydantic import Field, model_validator

from flexsync.comm import Communicator
from flexsync.comm.consensus import agree_mean
from flexsync.comm.lowbit import encode
from flexsync.compress.quantize import int8_levels
from flexsync.strategies.base import Strategy
from flexsync.strategies.options import Options

EVAL_MODELS = ("average", "local")
INT8_CHUNK = 2048           # int8 sync: entries sharing one scale (DiLoCo's default too)


class LocalUpdateOptions(Options):
    """Options shared by the strategies that step locally and average parameters."""

    average_buffers: bool = True
    sync_optimizer_state: bool = False
    eval_model: Literal["average", "local"] = "average"
    divergence_every: int = Field(0, ge=0, description="log replica divergence every N steps")
    sync_values: Literal["fp32", "fp16", "bf16", "int8"] = Field(
        "fp32", description="wire type of a sync: fp32 averages the weights; fp16, bf16 and "
        "int8 average the change since the last sync, error-fed")

    @model_validator(mode="after")
    def _compact_needs_plain_state(self) -> LocalUpdateOptions:
        if self.sync_values != "fp32" and self.sync_optimizer_state:
            raise ValueError("\x1fsync_values\x1fcompact averaging sends the change since the "
                             "last sync; use fp32 with sync_optimizer_state")
        return self


class LocalUpdateStrategy(Strategy):
    """Base class; subclasses call :meth:`average_parameters` and :meth:`count` in ``step``."""

    def __init__(self, params: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                 comm: Communicator, **options: Any) -> None:
        super().__init__(params, optimizer, comm, **options)
        o = self.opts
        self.average_buffers = o.average_buffers
        self.sync_optimizer_state = o.sync_optimizer_state
        self.eval_model = o.eval_model
        self.divergence_every = o.divergence_every
        self.steps_sync = 0
        self.steps_local = 0
        self.in_sync = True          # replicas identical (true at start: rank 0 broadcasts)
        self._stash: list[torch.Tensor] | None = None
        self.sync_values = o.sync_values
        self.sync_anchor: torch.Tensor | None = None    # compact: the weights at the last sync
        self.sync_residual: torch.Tensor | None = None  # compact: what the codec held back
        if self.sync_values != "fp32":
            if self.sync_values == "int8":
                int8_levels(comm.world_size)         # refuse worlds the codes cannot sum
            self.sync_anchor = self._flat_model()
            self.sync_residual = torch.zeros_like(self.sync_anchor)

    # -- what a PA sync carries --------------------------------------------------------------
    def _model_tensors(self) -> list[torch.Tensor]:
        return self.params + (self.buffers if self.average_buffers else [])

    def _optimizer_tensors(self) -> list[torch.Tensor]:
        out = []
        for p in self.params:
            for v in self.optimizer.state.get(p, {}).values():
                if torch.is_tensor(v) and v.is_floating_point() and v.shape == p.shape:
                    out.append(v)
        return out

    def _synced_tensors(self) -> list[torch.Tensor]:
        extra = self._optimizer_tensors() if self.sync_optimizer_state else []
        return self._model_tensors() + extra

    def _flat_model(self) -> torch.Tensor:
        return torch.cat([t.detach().reshape(-1) for t in self._model_tensors()])

    def average_parameters(self, members: Sequence[int] | None = None) -> None:
        """PA over ``members`` (all ranks when None): one accounted allreduce."""
        if self.sync_values != "fp32":
            if members is not None and len(members) < self.comm.world_size:
                raise ValueError(f"sync_values {self.sync_values!r} averages the change since "
                                 "the last sync, which needs every worker in every sync")
            self._average_change()
            return
        tensors = self._synced_tensors()
        flat = torch.cat([t.detach().reshape(-1) for t in tensors])
        member = members is None or self.comm.rank in members
        if not member:
            flat.zero_()
        self.comm.allreduce(flat, tag="parameters")
        if member:
            flat.div_(self.comm.world_size if members is None else len(members))
            _assign(tensors, flat)
        self.in_sync = members is None or len(members) == self.comm.world_size

    def _average_change(self) -> None:
        """w ← w_sync + mean_m(w_m − w_sync) with the change in the configured wire type."""
        n = self.comm.world_size
        fed = self._flat_model().sub_(self.sync_anchor).add_(self.sync_residual)
        wire, decode = encode(self.comm, fed, self.sync_values, INT8_CHUNK, n)
        self.sync_residual = fed.sub_(decode(wire))
        self.comm.allreduce(wire, tag="parameters")
        self.sync_anchor.add_(decode(wire).div_(n))
        _assign(self._model_tensors(), self.sync_anchor)
        self.in_sync = True

    def count(self, synced: bool) -> None:
        if synced:
            self.steps_sync += 1
        else:
            self.steps_local += 1
            self.in_sync = False

    @property
    def lssr(self) -> float:
        total = self.steps_sync + self.steps_local
        return self.steps_local / total if total else 0.0

    # -- diagnostics ------------------------------------------------------------------------
    def divergence(self) -> float:
        """Mean over ranks of ‖w_n − w̄‖ (§0.8); bookkeeping, not accounted."""
        flat = torch.cat([p.detach().reshape(-1) for p in self.params])
        mean = self.comm.allreduce(flat.clone(), accounted=False) / self.comm.world_size
        return agree_mean(self.comm, [float(torch.linalg.vector_norm(flat - mean))],
                          accounted=False)[0]

    def base_signals(self, step: int, synced: bool) -> dict[str, Any]:
        sig: dict[str, Any] = {"sync": int(synced), "lssr": self.lssr,
                               "collective": "allreduce-ring" if synced else "none"}
        if self.divergence_every and (step + 1) % self.divergence_every == 0:
            sig["divergence"] = 0.0 if self.in_sync else self.divergence()
        return sig

    # -- evaluation -------------------------------------------------------------------------
    def before_eval(self) -> None:
        if self.eval_model != "average" or self.in_sync:
            return
        tensors = self._model_tensors()
        self._stash = [t.detach().clone() for t in tensors]
        flat = torch.cat([t.detach().reshape(-1) for t in tensors])
        self.comm.allreduce(flat, accounted=False)
        _assign(tensors, flat.div_(self.comm.world_size))

    def after_eval(self) -> None:
        if self._stash is None:
            return
        with torch.no_grad():
            for t, saved in zip(self._model_tensors(), self._stash, strict=True):
                t.copy_(saved)
        self._stash = None

    # -- reporting and state ----------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        lssr = self.lssr
        return {"lssr": lssr, "sync_steps": self.steps_sync, "local_steps": self.steps_local,
                "comm_reduction": None if lssr >= 1.0 else 1.0 / (1.0 - lssr)}

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"steps_sync": self.steps_sync,
                                 "steps_local": self.steps_local, "in_sync": self.in_sync}
        if self.sync_anchor is not None:
            state.update(sync_anchor=self.sync_anchor.clone(),
                         sync_residual=self.sync_residual.clone())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps_sync = int(state["steps_sync"])
        self.steps_local = int(state["steps_local"])
        self.in_sync = bool(state["in_sync"])
        if self.sync_anchor is not None:
            self.sync_anchor.copy_(state["sync_anchor"])
            self.sync_residual.copy_(state["sync_residual"])


def _assign(tensors: Sequence[torch.Tensor], flat: torch.Tensor) -> None:
    chunks = torch.split(flat, [t.numel() for t in tensors])
    with torch.no_grad():
        for t, c in zip(tensors, chunks, strict=True):
            t.copy_(c.view_as(t))
