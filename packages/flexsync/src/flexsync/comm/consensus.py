"""Make every rank take the same decision (docs/methods.md §0.6).

A decision that selects a collective or its size must be identical on all ranks, or the next
collective mismatches and the job hangs. These helpers turn local values into agreed ones with
a tiny collective. They are accounted (tag "consensus", never scaled by ``model_params``) because
they are part of the algorithm's real traffic.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from flexsync.comm.collectives import Communicator


def _vec(comm: Communicator, values: Sequence[float]) -> torch.Tensor:
    return torch.tensor(list(values), dtype=torch.float64, device=comm.device)


def agree_mean(comm: Communicator, values: Sequence[float], accounted: bool = True) -> list[float]:
    """Element-wise mean over ranks of a short vector of floats."""
    t = comm.allreduce(_vec(comm, values), "sum", accounted=accounted, scalable=False,
                       tag="consensus")
    return (t / comm.world_size).tolist()


def agree_max(comm: Communicator, values: Sequence[float], accounted: bool = True) -> list[float]:
    t = comm.allreduce(_vec(comm, values), "max", accounted=accounted, scalable=False,
                       tag="consensus")
    return t.tolist()


def agree_any(comm: Communicator, flag: bool, accounted: bool = True) -> bool:
    """True on every rank iff ``flag`` is true on at least one rank (allreduce-MAX of 0/1)."""
    return agree_max(comm, [1.0 if flag else 0.0], accounted)[0] > 0.5


def gather_scalars(
    comm: Communicator, values: Sequence[float], accounted: bool = True
) -> torch.Tensor:
    """Every rank's short vector, as a (world, len) float64 tensor identical on all ranks."""
    return comm.allgather(_vec(comm, values), accounted=accounted, scalable=False,
                          tag="consensus").cpu()


def agree_argmax(comm: Communicator, value: float, accounted: bool = True) -> int:
    """The rank holding the largest value; the lowest such rank wins ties (VAR-Topk rule)."""
    vals = gather_scalars(comm, [value], accounted)[:, 0]
    return int(torch.nonzero(vals == vals.max())[0, 0])


def agree_from(comm: Communicator, values: Sequence[float], src: int = 0,
               accounted: bool = True) -> list[float]:
    """Rank ``src``'s values on every rank (a decision computed in one place, then shared)."""
    t = comm.broadcast(_vec(comm, values), src, accounted=accounted, scalable=False,
                       tag="consensus")
    return t.tolist()


def check_agreed(comm: Communicator, values: Sequence[float], what: str) -> None:
    """Raise if ranks disagree on ``values`` (a debugging guard; not accounted)."""
    table = gather_scalars(comm, values, accounted=False)
    if not torch.all(table == table[0]):
        raise RuntimeError(f"ranks disagree on {what}: {table.tolist()}")
