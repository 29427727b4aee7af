"""The optimizer wrapper's dense path, overlapped with backward (issue 20).

Without it, :class:`~flexsync.integrations.optimizer.DistributedOptimizer` with
``strategy="dense"`` allreduces the whole flattened gradient in ``step()``, after backward has
finished, so no communication overlaps computation (torch DDP starts each bucket's allreduce as
soon as its gradients are ready). :class:`DenseOverlap` does what DDP's reducer does, in Python:

* **Buckets.** The first step runs the plain (synchronous) dense path while post-accumulate-
  grad hooks (``Tensor.register_post_accumulate_grad_hook``) record the order in which the
  gradients become ready and how many backward passes each parameter saw. Rank 0's order is
  broadcast (bucket layouts must be identical on every rank, as DDP's rebuilt buckets are) and
  cut into buckets of at most ``bucket_cap_mb`` (the first one 1 MB, so communication starts
  early), as DDP does after its first iteration.
* **Launch.** From the second step on, a parameter's hook counts its backward passes; when
  every parameter of a bucket has seen as many as last step (gradient accumulation: N passes
  per step, learnt, not configured) the bucket is flattened and its allreduce started
  (``async_op=True``). Buckets are started strictly in bucket order on every rank (a ready
  bucket waits for the ones before it), so the collectives pair up across ranks even when
  some parameter is unused on some rank; buckets still waiting when ``step()`` (or
  ``synchronize()``) comes are started there.
* **Wait.** ``step()`` waits for every bucket and writes the mean into ``.grad``.

Correctness does not rest on the launch guess: a bucket is *stale* when one of its parameters
got another backward pass after it was sent, or when its ``.grad`` was replaced or changed in
place since (``Tensor._version``: clipping, ``zero_grad``, any in-place op). The ranks
agree on staleness in the wrapper's per-step agreement, and a stale step discards the
overlapped result and runs the synchronous dense path on the gradients as they are, so the
result is always the non-overlapped one (to the summation order of the allreduce: bucket
boundaries change how a ring adds more than two ranks; with two ranks the result is
bit-identical). ``GradScaler.unscale_`` changes the gradients in place without bumping
``_version`` (``_amp_foreach_non_finite_check_and_unscale_``), and each rank's scaler keeps
its own scale, so under a GradScaler the wrapper stops overlapping as soon as it sees one (all
ranks at the same step, through the agreement). Accounting: each bucket's allreduce is
recorded like the dense strategy's one (tag "gradients"), so a step's bytes are the same; a
stale step sends twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from flexsync.comm import Communicator

#: The first bucket's cap (DDP's ``_DEFAULT_FIRST_BUCKET_BYTES``): small, so that the first
#: allreduce starts while most of backward is still to run.
FIRST_BUCKET_MB = 1.0


@dataclass
class _Bucket:
    """Parameters (positions in the wrapper's list) that travel in one allreduce."""

    members: list[int]
    expected: int = 0                   # hook calls that make the bucket ready
    remaining: int = 0                  # hook calls still to come this step
    flat: torch.Tensor | None = None    # the launched message (this rank's gradients)
    buffer: torch.Tensor | None = None  # ``flat``'s memory, reused every step (as DDP's
    #                                     buckets are: a fresh one per step page-faults)
    future: torch.futures.Future | None = None
    sent: list[tuple[torch.Tensor | None, int]] = field(default_factory=list)


def cut_buckets(order: Sequence[int], nbytes: Sequence[int], cap: int,
                first_cap: int) -> list[list[int]]:
    """Consecutive runs of ``order`` of at most ``cap`` bytes each (``first_cap`` for the
    first; a parameter larger than the cap gets a bucket of its own)."""
    buckets: list[list[int]] = [[]]
    size, limit = 0, first_cap
    for i in order:
        if buckets[-1] and size + nbytes[i] > limit:
            buckets.append([])
            size, limit = 0, cap
        buckets[-1].append(i)
        size += nbytes[i]
    return [b for b in buckets if b]


class DenseOverlap:
    """Bucketed allreduce-mean of ``params``' gradients launched from backward hooks; see the
    module docstring.

    Args:
        params: the parameters aggregated (the strategy's list; the order of ``.grad``).
        comm: the accounting communicator.
        bucket_cap_mb: largest bucket after the first, in MB of gradient.
        algo: the pricing hint of the allreduce records ("ring", "tree", "ps").
    """

    def __init__(self, params: Sequence[torch.Tensor], comm: Communicator,
                 bucket_cap_mb: float = 25.0, algo: str = "ring") -> None:
        self.params = list(params)
        self.comm = comm
        self.algo = algo
        self.cap = max(1, int(bucket_cap_mb * 2**20))
        self.counts = [0] * len(self.params)     # backward passes this step, per parameter
        self.arrival: list[int] = []              # first-ready order this step
        self.buckets: list[_Bucket] | None = None
        self.bucket_of: list[int] = []
        self.next_launch = 0                     # buckets 0..next_launch-1 are started
        self.stale = False                       # this rank saw a bucket go stale
        self.overlapped_steps = 0
        self.stale_steps = 0
        self._handles = [p.register_post_accumulate_grad_hook(self._hook_for(i))
                         for i, p in enumerate(self.params)]

    # -- hooks (called by autograd, on the backward thread) ---------------------------------
    def _hook_for(self, i: int):
        def hook(_param: torch.Tensor) -> None:
            self._ready(i)
        return hook

    def _ready(self, i: int) -> None:
        """Parameter ``i`` finished a backward pass: count it, and start every bucket that is
        complete and next in order."""
        if self.counts[i] == 0:
            self.arrival.append(i)
        self.counts[i] += 1
        if self.buckets is None:
            return                               # the learning step: record only
        b = self.buckets[self.bucket_of[i]]
        if self.bucket_of[i] < self.next_launch:
            self.stale = True                    # a pass after its bucket was sent
            return
        b.remaining -= 1
        while (self.next_launch < len(self.buckets)
               and self.buckets[self.next_launch].remaining <= 0):
            self._launch(self.buckets[self.next_launch])
            self.next_launch += 1

    def _launch(self, b: _Bucket) -> None:
        grads = [self.params[i].grad for i in b.members]
        b.sent = [(g, 0 if g is None else g._version) for g in grads]
        parts = [(g if g is not None else torch.zeros_like(self.params[i])).reshape(-1)
                 for i, g in zip(b.members, grads, strict=True)]
        if b.buffer is None:
            b.buffer = torch.cat(parts)
        else:
            torch.cat(parts, out=b.buffer)
        b.flat = b.buffer
        b.future = self.comm.allreduce_async(b.flat, algo=self.algo, tag="gradients")

    # -- the wrapper's side -------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Whether this step's gradients went (or go) through the buckets."""
        return self.buckets is not None

    def launch_rest(self) -> None:
        """Start the buckets not started yet, in order (a parameter unused on this rank, or
        fewer backward passes than last step), and note whether any sent gradient changed
        since it was sent."""
        assert self.buckets is not None
        while self.next_launch < len(self.buckets):
            self._launch(self.buckets[self.next_launch])
            self.next_launch += 1
        for b in self.buckets:
            for i, (g, version) in zip(b.members, b.sent, strict=True):
                now = self.params[i].grad
                if now is not g or (g is not None and g._version != version):
                    self.stale = True

    def wait(self) -> bool:
        """Wait for every bucket; divide each sum by the world size (in the message buffer,
        not yet in ``.grad``). Returns whether every mean is finite (the same answer on
        every rank: the sums are identical)."""
        assert self.buckets is not None
        world, finite = self.comm.world_size, True
        for b in self.buckets:
            assert b.future is not None and b.flat is not None
            b.future.wait()
            b.flat.div_(world)
            finite = finite and bool(torch.isfinite(b.flat.sum()))
        return finite

    def write_grads(self) -> None:
        """The waited means into every parameter's ``.grad`` (a new tensor where it was
        None: some other rank produced the gradient)."""
        assert self.buckets is not None
        for b in self.buckets:
            assert b.flat is not None
            views = torch.split(b.flat, [self.params[i].numel() for i in b.members])
            have = [(self.params[i].grad, v) for i, v in zip(b.members, views, strict=True)
                    if self.params[i].grad is not None]
            if have:
                torch._foreach_copy_([g for g, _ in have], [v.view_as(g) for g, v in have])
            for i, v in zip(b.members, views, strict=True):
                if self.params[i].grad is None:
                    self.params[i].grad = v.view_as(self.params[i]).clone()

    def end_step(self, build: bool) -> None:
        """Close the step: this step's pass counts become the next step's expectation; on
        the learning step (``build``) rank 0's ready order is broadcast and cut into
        buckets. Every rank must call it at the same point of the step."""
        if build:
            self._build()
        if self.buckets is not None:
            if any(self.counts):
                for b in self.buckets:
                    b.expected = sum(self.counts[i] for i in b.members)
            for b in self.buckets:
                b.remaining = b.expected
                b.flat, b.future, b.sent = None, None, []
        self.counts = [0] * len(self.params)
        self.arrival = []
        self.next_launch = 0
        self.stale = False

    def _build(self) -> None:
        n = len(self.params)
        seen = set(self.arrival)
        order = self.arrival + [i for i in reversed(range(n)) if i not in seen]
        message = torch.tensor(order, dtype=torch.int64, device=self.comm.device)
        self.comm.broadcast(message, 0, accounted=False, scalable=False, tag="bucket-order")
        order = message.tolist()
        nbytes = [p.numel() * p.element_size() for p in self.params]
        groups = cut_buckets(order, nbytes, self.cap, min(self.cap,
                                                           int(FIRST_BUCKET_MB * 2**20)))
        self.buckets = [_Bucket(members) for members in groups]
        self.bucket_of = [0] * n
        for j, members in enumerate(groups):
            for i in members:
                self.bucket_of[i] = j

    def close(self) -> None:
        """Remove the hooks."""
        for h in self._handles:
            h.remove()
        self._handles = []
