"""A thin accounting layer over ``torch.distributed``.

Every strategy communicates through a :class:`Communicator`, which records each collective's
kind, per-worker payload in bytes and element count. The virtual clock prices these records
with the α-β model, and the run's ``bytes_sent`` is their sum. ``nbytes`` is what one worker
contributes (X in the cost model): the tensor for allreduce/broadcast, one worker's part for
allgather.

Bookkeeping traffic that exists only to run the experiment (loss logging, evaluation, clock
agreement) passes ``accounted=False`` and is neither priced nor counted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from flexsync.net.cost_model import latency_terms

_OPS = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}


@dataclass(frozen=True)
class CommRecord:
    kind: str            # allreduce | allgather | broadcast | barrier
    nbytes: int          # per-worker payload (X of the cost model)
    elements: int
    algo: str | None = None   # ring | tree | ps: a pricing hint (gloo/NCCL pick their own)
    scalable: bool = True     # gradient-sized: scaled by network.model_params when priced
    tag: str = ""             # free-form label, e.g. "values", "indices", "consensus"


class Communicator:
    """Collectives over a process group, recording what each one sends.

    Works with any initialised process group (gloo or NCCL); with world size 1 every
    collective is the identity and records nothing.
    """

    def __init__(self, group: dist.ProcessGroup | None = None, device: torch.device | None = None):
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError(
                "flexsync needs an initialised torch.distributed process group "
                "(use flexsync.launch, torchrun, or dist.init_process_group first)"
            )
        self.group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        if device is None:
            device = (
                torch.device("cuda", torch.cuda.current_device())
                if dist.get_backend(group) == "nccl"
                else torch.device("cpu")
            )
        self.device = device
        self.records: list[CommRecord] = []
        # Emulated per-message latency (seconds): each collective first waits α times its
        # latency terms, so wall-clock time carries the α of the α-β model on links whose
        # kernel cannot delay packets (no netem). 0 = none.
        self.added_latency = 0.0
        # (kind, algo, nbytes, seconds) of every collective, accounted or not: the raw
        # material of live α-β estimation.
        self.timings: list[tuple[str, str | None, int, float]] = []
        self.total_bytes = 0
        self.total_collectives = 0
        # True while this object is issuing a collective: code that counts torch.distributed
        # calls made outside it (the DDP baselines' hooks) must not count these again.
        self.issuing = False

    # -- accounting -------------------------------------------------------------------------
    def record(self, rec: CommRecord, accounted: bool = True) -> None:
        """Account a collective that ran outside this object (e.g. inside DDP)."""
        self._record(rec, accounted)

    def _record(self, rec: CommRecord, accounted: bool) -> None:
        if accounted and self.world_size > 1:
            self.records.append(rec)
            self.total_bytes += rec.nbytes
            self.total_collectives += 1

    def take_timings(self) -> list[tuple[str, str | None, int, float]]:
        out, self.timings = self.timings, []
        return out

    def _delay(self, kind: str, algo: str | None) -> None:
        if self.added_latency > 0:
            time.sleep(self.added_latency * latency_terms(kind, algo, self.world_size))

    def _run(self, rec: CommRecord, accounted: bool, collective: Callable[[], Any]) -> None:
        """Account ``rec``, then (with more than one worker) wait the emulated latency, run
        ``collective`` and keep its wall time for the live α-β estimator."""
        self._record(rec, accounted)
        if self.world_size > 1:
            t0 = time.perf_counter()
            self._delay(rec.kind, rec.algo)
            self.issuing = True
            try:
                collective()
            finally:
                self.issuing = False
            self.timings.append((rec.kind, rec.algo, rec.nbytes, time.perf_counter() - t0))

    def state_dict(self) -> dict[str, int]:
        """The run's accounting totals (what a resumed run continues from)."""
        return {"total_bytes": self.total_bytes, "total_collectives": self.total_collectives}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.total_bytes = int(state["total_bytes"])
        self.total_collectives = int(state["total_collectives"])

    def take_records(self) -> list[CommRecord]:
        """Return and clear the records since the last call (one training step's worth)."""
        out, self.records = self.records, []
        return out

    # -- collectives ------------------------------------------------------------------------
    def allreduce(
        self,
        tensor: torch.Tensor,
        op: str = "sum",
        algo: str = "ring",
        accounted: bool = True,
        scalable: bool = True,
        tag: str = "",
    ) -> torch.Tensor:
        """In-place allreduce with ``op`` ∈ {sum, max, min}; returns the tensor."""
        if op not in _OPS:
            raise ValueError(f"allreduce op must be one of {sorted(_OPS)}, got {op!r}")
        self._run(CommRecord("allreduce", _nbytes(tensor), tensor.numel(), algo, scalable, tag),
                  accounted, lambda: dist.all_reduce(tensor, op=_OPS[op], group=self.group))
        return tensor

    def allgather(
        self, tensor: torch.Tensor, accounted: bool = True, scalable: bool = True, tag: str = ""
    ) -> torch.Tensor:
        """Gather equal-sized tensors from every rank; returns shape ``(world, *tensor.shape)``."""
        out = torch.empty(
            (self.world_size, *tensor.shape), dtype=tensor.dtype, device=tensor.device
        )
        if self.world_size == 1:
            out[0].copy_(tensor)
        self._run(CommRecord("allgather", _nbytes(tensor), tensor.numel(), None, scalable, tag),
                  accounted, lambda: dist.all_gather(list(out.unbind(0)), tensor.contiguous(),
                                                     group=self.group))
        return out

    def broadcast(
        self,
        tensor: torch.Tensor,
        src: int,
        accounted: bool = True,
        scalable: bool = True,
        tag: str = "",
    ) -> torch.Tensor:
        """In-place broadcast from rank ``src``; returns the tensor."""
        if not 0 <= src < self.world_size:
            raise ValueError(f"broadcast src must be in [0, {self.world_size}), got {src}")
        self._run(CommRecord("broadcast", _nbytes(tensor), tensor.numel(), None, scalable, tag),
                  accounted, lambda: dist.broadcast(tensor, src=_global_rank(self.group, src),
                                                    group=self.group))
        return tensor

    # -- asynchronous collectives (the DDP hook's overlap with backward) ---------------------
    def _launch(self, rec: CommRecord, accounted: bool, work: Callable[[], Any],
                result: torch.Tensor) -> torch.futures.Future[torch.Tensor]:
        """Account ``rec`` and start ``work`` (a collective with ``async_op=True``); the
        future holds ``result`` once the collective is done (and, with emulated latency,
        that much later: a timer thread completes it, so neither the caller's thread nor the
        backend's worker thread waits out the delay; a callback attached to an already
        finished collective runs inline, which a sleep would block). With one worker it is
        complete at once."""
        self._record(rec, accounted)
        if self.world_size == 1:
            done: torch.futures.Future[torch.Tensor] = torch.futures.Future()
            done.set_result(result)
            return done
        t0 = time.perf_counter()
        delay = (self.added_latency * latency_terms(rec.kind, rec.algo, self.world_size)
                 if self.added_latency > 0 else 0.0)
        out: torch.futures.Future[torch.Tensor] = torch.futures.Future()

        def complete() -> None:
            self.timings.append((rec.kind, rec.algo, rec.nbytes, time.perf_counter() - t0))
            out.set_result(result)

        def finish(f: torch.futures.Future) -> None:
            try:
                f.wait()                               # a failed collective fails the future
            except Exception as e:                     # noqa: BLE001 - handed to the waiter
                out.set_exception(e)
                return
            if delay:
                threading.Timer(delay, complete).start()
            else:
                complete()

        self.issuing = True
        try:
            work().get_future().add_done_callback(finish)
        finally:
            self.issuing = False
        return out

    def allreduce_async(self, tensor: torch.Tensor, op: str = "sum", algo: str = "ring",
                        accounted: bool = True, scalable: bool = True, tag: str = ""
                        ) -> torch.futures.Future[torch.Tensor]:
        """:meth:`allreduce` started with ``async_op=True``; the future holds the tensor."""
        if op not in _OPS:
            raise ValueError(f"allreduce op must be one of {sorted(_OPS)}, got {op!r}")
        rec = CommRecord("allreduce", _nbytes(tensor), tensor.numel(), algo, scalable, tag)
        return self._launch(rec, accounted, lambda: dist.all_reduce(
            tensor, op=_OPS[op], group=self.group, async_op=True), tensor)

    def allgather_async(self, tensor: torch.Tensor, accounted: bool = True,
                        scalable: bool = True, tag: str = ""
                        ) -> torch.futures.Future[torch.Tensor]:
        """:meth:`allgather` started with ``async_op=True``; the future holds the
        ``(world, *tensor.shape)`` result."""
        out = torch.empty(
            (self.world_size, *tensor.shape), dtype=tensor.dtype, device=tensor.device
        )
        if self.world_size == 1:
            out[0].copy_(tensor)
        rec = CommRecord("allgather", _nbytes(tensor), tensor.numel(), None, scalable, tag)
        return self._launch(rec, accounted, lambda: dist.all_gather(
            list(out.unbind(0)), tensor.contiguous(), group=self.group, async_op=True), out)

    def barrier(self, accounted: bool = False) -> None:
        self._record(CommRecord("barrier", 0, 0, None, False, "barrier"), accounted)
        if self.world_size > 1:
            dist.barrier(group=self.group)


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _global_rank(group: dist.ProcessGroup | None, rank: int) -> int:
    return rank if group is None else dist.get_global_rank(group, rank)
