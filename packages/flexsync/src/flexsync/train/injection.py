"""Data injection for non-IID training (docs/methods.md §2.4 and §4.5), shared by SelSync and
ScaDLES.

Each step some workers share part of their current mini-batch with peers, so every worker's
batch mixes in foreign labels. Two selection modes, both drawn from a generator seeded by
(seed, step) that every rank builds identically, so all ranks agree on who sends to whom
without talking (§0.6):

* ``sender_selection`` (SelSync's wording, §2.4): a shared random set A of ⌈α·N⌉ workers is
  chosen; each sends its share to *all* other workers — one broadcast per sender.
* ``receiver_choice`` (ScaDLES's wording, §4.5): every worker d picks ⌈α·(N−1)⌉ random peers
  and sends them its share. With collectives this is one allgather of every worker's share, of
  which each receiver keeps the blocks addressed to it (the accounting therefore charges the
  allgather, an upper bound on the point-to-point traffic).

A worker's share is the first ⌊β·b_own⌋ samples of its own (already random) batch. To keep the
effective batch near b, SelSync shrinks the own batch to b′ = b / (1 + α·β·N), rounded half up
(:func:`own_batch_size`). Shared samples travel as raw bytes (inputs and labels packed into one
uint8 block per sender) through the :class:`~flexsync.comm.Communicator`, so they are accounted
and priced as communication (tag "injection", never scaled by ``model_params``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from flexsync.comm import Communicator

INJECTION_MODES = ("sender_selection", "receiver_choice")


def own_batch_size(batch_size: int, alpha: float, beta: float, world_size: int) -> int:
    """b′ = b / (1 + α·β·N), rounded half up, at least 1 (§2.4). E.g. b = 32, α = β = 0.5:
    N = 8 gives 11, N = 10 gives 9."""
    return max(1, math.floor(batch_size / (1.0 + alpha * beta * world_size) + 0.5))


def share_size(own_batch: int, beta: float) -> int:
    """⌊β·b_own⌋ samples shared by a sending worker."""
    return math.floor(beta * own_batch + 1e-9)


def _generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def sender_selection(step: int, world_size: int, alpha: float, seed: int) -> list[int]:
    """The ⌈α·N⌉ senders of ``step`` (sorted), identical on every rank."""
    m = min(world_size, math.ceil(alpha * world_size - 1e-9))
    return sorted(torch.randperm(world_size, generator=_generator(seed, step))[:m].tolist())


def receiver_choice(step: int, world_size: int, alpha: float, seed: int) -> dict[int, list[int]]:
    """For every worker d, the ⌈α·(N−1)⌉ peers it sends to in ``step`` (sorted), identical on
    every rank: one shared generator, drawn in rank order."""
    m = min(world_size - 1, math.ceil(alpha * (world_size - 1) - 1e-9))
    g = _generator(seed, step)
    out = {}
    for d in range(world_size):
        peers = [p for p in range(world_size) if p != d]
        pick = torch.randperm(len(peers), generator=g)[:m].tolist()
        out[d] = sorted(peers[i] for i in pick)
    return out


@dataclass(frozen=True)
class InjectionPlan:
    """Who sends to whom in one step: (sender, receivers) pairs, senders ascending."""

    step: int
    routes: tuple[tuple[int, tuple[int, ...]], ...]

    @property
    def senders(self) -> list[int]:
        return [s for s, _ in self.routes]

    def sources_for(self, rank: int) -> list[int]:
        """The senders whose samples ``rank`` receives, ascending."""
        return [s for s, receivers in self.routes if rank in receivers]


def plan_injection(step: int, world_size: int, alpha: float, mode: str = "sender_selection",
                   seed: int = 0) -> InjectionPlan:
    if mode == "sender_selection":
        routes = tuple((s, tuple(r for r in range(world_size) if r != s))
                       for s in sender_selection(step, world_size, alpha, seed))
    elif mode == "receiver_choice":
        routes = tuple((d, tuple(peers)) for d, peers in
                       receiver_choice(step, world_size, alpha, seed).items())
    else:
        raise ValueError(f"injection mode must be one of {INJECTION_MODES}, got {mode!r}")
    return InjectionPlan(step, routes)


def _pack(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    k = len(x)
    return torch.cat([x.reshape(k, -1).contiguous().view(torch.uint8),
                      y.reshape(k, -1).contiguous().view(torch.uint8)], dim=1)


def _unpack(block: torch.Tensor, x_like: torch.Tensor, y_like: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
    k = len(block)
    nx = x_like[:1].numel() * x_like.element_size()
    x = block[:, :nx].contiguous().view(x_like.dtype).reshape(k, *x_like.shape[1:])
    y = block[:, nx:].contiguous().view(y_like.dtype).reshape(k, *y_like.shape[1:])
    return x, y


class DataInjector:
    """Runs one step's injection on this rank: call :meth:`exchange` with the own batch
    (every rank, every step, same ``step``) and train on what it returns."""

    def __init__(self, comm: Communicator, alpha: float, beta: float, share: int,
                 mode: str = "sender_selection", seed: int = 0) -> None:
        if not 0 <= alpha <= 1 or not 0 <= beta <= 1:
            raise ValueError(f"alpha and beta must be in [0, 1], got {alpha}, {beta}")
        if mode not in INJECTION_MODES:
            raise ValueError(f"injection mode must be one of {INJECTION_MODES}, got {mode!r}")
        if share < 0:
            raise ValueError(f"share must be >= 0, got {share}")
        self.comm = comm
        self.alpha, self.beta, self.share, self.mode, self.seed = alpha, beta, share, mode, seed
        self.last_samples = 0      # samples received in the last step
        self.last_bytes = 0        # accounted payload of the last step's injection collectives
        self.total_bytes = 0

    def exchange(self, step: int, x: torch.Tensor, y: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """The own batch followed by the samples received this step (in sender order)."""
        world, rank = self.comm.world_size, self.comm.rank
        self.last_samples = self.last_bytes = 0
        if world == 1 or self.share == 0 or self.alpha == 0:
            return x, y
        if len(x) < self.share:
            raise ValueError(f"a batch of {len(x)} samples cannot share {self.share}")
        plan = plan_injection(step, world, self.alpha, self.mode, self.seed)
        block = _pack(x[:self.share], y[:self.share])
        received: list[torch.Tensor] = []
        if self.mode == "sender_selection":
            for s in plan.senders:
                buf = block.clone() if s == rank else torch.empty_like(block)
                self.comm.broadcast(buf, s, scalable=False, tag="injection")
                self.last_bytes += buf.numel()
                if s != rank:
                    received.append(buf)
        else:
            blocks = self.comm.allgather(block, scalable=False, tag="injection")
            self.last_bytes += block.numel()
            received = [blocks[s] for s in plan.sources_for(rank)]
        self.total_bytes += self.last_bytes
        if not received:
            return x, y
        xs, ys = zip(*(_unpack(b, x, y) for b in received), strict=True)
        self.last_samples = sum(len(v) for v in xs)
        return torch.cat([x, *xs]), torch.cat([y, *ys])

    def signals(self) -> dict[str, Any]:
        return {"injected_samples": self.last_samples, "injected_bytes": self.last_bytes}
