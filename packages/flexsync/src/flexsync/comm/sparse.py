"""The two ways to aggregate a sparsified gradient (docs/methods.md §1.1–1.2).

* **Allgather** (AG-Topk): every worker sends its own k values and k int32 indices; the sum
  is scattered from the N·k gathered pairs. Cost grows with N.
* **Index broadcast + allreduce** (AR-Topk): one rank's index set is broadcast, everybody
  sends its values at those positions, and one allreduce sums them: bandwidth-optimal.

Small extra floats (``extras``: e.g. each worker's compression gain) ride along in the same
message, so agreeing on them costs no extra collective or latency.
"""

from __future__ import annotations

import torch

from flexsync.comm.collectives import Communicator

_EMPTY = torch.empty(0)


def allgather_sparse(
    comm: Communicator, values: torch.Tensor, indices: torch.Tensor, numel: int,
    extras: torch.Tensor = _EMPTY,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over ranks of each rank's sparse vector, and the sum of ``extras``.

    Values and int32 indices travel as one fp32 buffer (indices bit-cast), so one collective
    carries 8 bytes per kept entry, as the cost model assumes.
    """
    k = values.numel()
    if indices.numel() != k:
        raise ValueError(f"{k} values but {indices.numel()} indices")
    if numel >= 2**31:
        raise ValueError("int32 indices cannot address a vector of 2**31 entries or more")
    payload = torch.cat([values.float(), indices.to(torch.int32).view(torch.float32),
                         extras.to(values.device, torch.float32)])
    gathered = comm.allgather(payload, tag="values+indices")
    vals = gathered[:, :k].reshape(-1)
    idx = gathered[:, k:2 * k].contiguous().view(torch.int32).reshape(-1).long()
    out = torch.zeros(numel, device=values.device, dtype=values.dtype)
    out.index_add_(0, idx, vals.to(values.dtype))
    return out, gathered[:, 2 * k:].sum(0)


def broadcast_indices(
    comm: Communicator, indices: torch.Tensor | None, k: int, src: int,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Rank ``src``'s k indices on every rank (int32 on the wire; int64 returned)."""
    if comm.rank == src:
        if indices is None or indices.numel() != k:
            raise ValueError(f"the broadcaster must supply exactly k={k} indices")
        buf = indices.to(torch.int32)
    else:
        buf = torch.empty(k, dtype=torch.int32, device=device)
    comm.broadcast(buf, src, tag="indices")
    return buf.long()


def allreduce_values(
    comm: Communicator, values: torch.Tensor, algo: str = "ring",
    extras: torch.Tensor = _EMPTY,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of every rank's values (same positions everywhere), and the sum of ``extras``."""
    k = values.numel()
    payload = torch.cat([values, extras.to(values.device, values.dtype)])
    comm.allreduce(payload, algo=algo, tag="values")
    return payload[:k], payload[k:]
