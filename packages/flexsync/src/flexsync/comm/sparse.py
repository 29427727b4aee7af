"""The two ways to aggregate a sparsified gradient (docs/methods.md §1.1–1.2).

* **Allgather** (AG-Topk): every worker sends its own k values and k indices; the sum
  is scattered from the N·k gathered pairs. Cost grows with N.
* **Index broadcast + allreduce** (AR-Topk): one rank's index set is broadcast, everybody
  sends its values at those positions, and one allreduce sums them: bandwidth-optimal.

Values and indices travel compactly (:mod:`flexsync.compress.wire`: fp16 values by default,
block-coded positions). Small extra floats (``extras``: e.g. each worker's compression gain)
ride along in the same message, so agreeing on them costs no extra collective (AR-Topk with
16-bit values: one tiny one, see :func:`allreduce_values`).
"""

from __future__ import annotations

import torch

from flexsync.comm.collectives import Communicator
from flexsync.compress.wire import (
    ascending,
    decode_indices,
    encode_indices,
    encode_values,
    index_nbytes,
    value_dtype,
)

_EMPTY = torch.empty(0)


def _bytes(t: torch.Tensor) -> torch.Tensor:
    """``t`` as bytes, padded to a multiple of 4 so the next section of a message (and the
    next rank's message in a gathered buffer) starts 4-byte aligned for its typed view."""
    b = t.contiguous().view(torch.uint8)
    pad = (-b.numel()) % 4
    return b if pad == 0 else torch.cat([b, b.new_zeros(pad)])


def _padded(nbytes: int) -> int:
    return nbytes + (-nbytes) % 4


def allgather_nbytes(numel: int, k: int, extras: int = 0, coding: str = "fp32") -> int:
    """Bytes one rank sends in :func:`allgather_sparse`: k values in ``coding``, k coded
    positions and ``extras`` float32, each section padded to 4 bytes."""
    return (_padded(k * value_dtype(coding).itemsize) + _padded(index_nbytes(numel, k))
            + 4 * extras)


def allgather_sparse(
    comm: Communicator, values: torch.Tensor, indices: torch.Tensor, numel: int,
    extras: torch.Tensor = _EMPTY, coding: str = "fp32",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sum over ranks of each rank's sparse vector, the sum of ``extras``, and the values as
    this rank sent them (in ``indices``' order, after the ``coding`` round trip: what error
    feedback must subtract).

    One uint8 message per rank carries the k values in ``coding`` ("fp16", "bf16", "fp32"),
    the k positions block-coded or int32 (:mod:`flexsync.compress.wire`) and the float32
    extras, so one collective carries 2–8 bytes per kept entry and the accounted bytes are
    the bytes on the wire.
    """
    fut, sent = allgather_sparse_async(comm, values, indices, numel, extras, coding)
    out, ex = fut.wait()
    return out, ex, sent


def allgather_sparse_async(
    comm: Communicator, values: torch.Tensor, indices: torch.Tensor, numel: int,
    extras: torch.Tensor = _EMPTY, coding: str = "fp32", out: torch.Tensor | None = None,
    scale: float = 1.0,
) -> tuple[torch.futures.Future[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    """:func:`allgather_sparse` started asynchronously: (a future of (sum, extras' sum), the
    values as sent). The sum is decoded on the thread that completes the collective, into
    ``out`` (zeroed first) when given, and multiplied by ``scale`` (each rank's k values as
    they are added, not the whole vector): the DDP hook decodes its bucket's mean in place,
    saving a vector-sized allocation, a copy and a division per call."""
    k = values.numel()
    if indices.numel() != k:
        raise ValueError(f"{k} values but {indices.numel()} indices")
    vals, idx = ascending(values, indices)
    wire = encode_values(vals, coding)
    payload = torch.cat([_bytes(wire), _bytes(encode_indices(idx, numel)),
                         _bytes(extras.to(values.device, torch.float32))])
    vb, ib = _padded(k * wire.element_size()), _padded(index_nbytes(numel, k))
    dtype, out_dtype, n_ex = value_dtype(coding), values.dtype, extras.numel()

    def decode(fut: torch.futures.Future[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        gathered = fut.value()
        total = (torch.zeros(numel, device=gathered.device, dtype=out_dtype) if out is None
                 else out.zero_())
        ex = torch.zeros(n_ex, dtype=torch.float32, device=gathered.device)
        for row in gathered:             # rank order: the same summation on every rank
            total.index_add_(0, decode_indices(row[vb:vb + index_nbytes(numel, k)], numel, k),
                             row[:vb].view(dtype)[:k].to(out_dtype), alpha=scale)
            ex += row[vb + ib:].view(torch.float32)
        return total, ex

    fut = comm.allgather_async(payload, tag="values+indices").then(decode)
    sent = wire.to(values.dtype)
    if vals is not values:               # back to the caller's order
        sent = sent[torch.argsort(torch.argsort(indices))]
    return fut, sent


def broadcast_indices(
    comm: Communicator, indices: torch.Tensor | None, k: int, src: int,
    device: torch.device | str = "cpu", numel: int | None = None,
) -> torch.Tensor:
    """Rank ``src``'s k indices on every rank, ascending (int64). With ``numel`` (the vector
    length) they travel block-coded when that is smaller; otherwise as int32."""
    n = numel if numel is not None else 2**31 - 1
    nbytes = index_nbytes(n, k) if numel is not None else 4 * k
    if comm.rank == src:
        if indices is None or indices.numel() != k:
            raise ValueError(f"the broadcaster must supply exactly k={k} indices")
        idx = indices.sort().values
        buf = encode_indices(idx, n) if numel is not None else _bytes(idx.to(torch.int32))
    else:
        buf = torch.empty(nbytes, dtype=torch.uint8, device=device)
    comm.broadcast(buf, src, tag="indices")
    return decode_indices(buf, n, k) if numel is not None else buf.view(torch.int32).long()


def allreduce_values(
    comm: Communicator, values: torch.Tensor, algo: str = "ring",
    extras: torch.Tensor = _EMPTY, coding: str = "fp32",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sum of every rank's values (same positions everywhere), the sum of ``extras``, and
    the values as this rank sent them (after the ``coding`` round trip).

    In fp32 the extras ride in the values' message. In fp16/bf16 a sum of casts is summed in
    that type, too coarse for the extras (gains, statistics), so they take a second, tiny
    fp32 allreduce (one more latency term, accounted, never scaled by the model size).
    """
    fut, sent = allreduce_values_async(comm, values, algo, extras, coding)
    total, ex = fut.wait()
    return total, ex, sent


def allreduce_values_async(
    comm: Communicator, values: torch.Tensor, algo: str = "ring",
    extras: torch.Tensor = _EMPTY, coding: str = "fp32",
) -> tuple[torch.futures.Future[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    """:func:`allreduce_values` started asynchronously: (a future of (sum, extras' sum), the
    values as sent)."""
    k = values.numel()
    wire = encode_values(values, coding, summands=comm.world_size)
    ex = extras.to(values.device, torch.float32)
    if coding == "fp32" or ex.numel() == 0:
        payload = torch.cat([wire, ex.to(wire.dtype)])
        fut = comm.allreduce_async(payload, algo=algo, tag="values").then(
            lambda f: (f.value()[:k].to(values.dtype), f.value()[k:].float()))
        return fut, wire
    f_vals = comm.allreduce_async(wire.clone(), algo=algo, tag="values")
    f_ex = comm.allreduce_async(ex, algo=algo, scalable=False, tag="extras")
    both = torch.futures.collect_all([f_vals, f_ex]).then(
        lambda f: (f.value()[0].value().to(values.dtype), f.value()[1].value()))
    return both, wire.to(values.dtype)
