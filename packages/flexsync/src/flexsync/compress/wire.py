"""Compact sparse messages (docs/methods.md §0.2, "Compact messages"): what a kept entry costs
on the wire.

* **Values** travel as ``fp16`` (the default of the sparse strategies), ``bf16`` or ``fp32``.
  A cast is lossy, so the rounding error is returned to error feedback with everything else
  that was not sent (:meth:`~flexsync.compress.ErrorFeedback.absorb`'s ``kept``): over steps
  nothing is lost, as with the 1-bit / fp16 error-compensated schemes (Seide et al. 2014,
  1-bit SGD §2). fp16 values are clipped to ±65504/summands so that neither a value nor a sum
  of ``summands`` of them overflows; the clipped excess stays in the residual too.
* **Indices** of ascending positions are *block-coded* when that is smaller than int32: the
  low 16 bits of each position, plus one int32 count per block of 65 536 positions
  (2·k + 4·⌈n/65536⌉ bytes instead of 4·k; smaller whenever k > n/32768, i.e. any keep
  fraction above 3·10⁻⁵). The size depends only on (n, k), so every rank's message has the
  same length, as allgather and broadcast need, and the code is exact.

Pure tensor code: the collectives live in :mod:`flexsync.comm.sparse`.
"""

from __future__ import annotations

import math

import torch

VALUE_DTYPES: dict[str, torch.dtype] = {"fp16": torch.float16, "bf16": torch.bfloat16,
                                        "fp32": torch.float32}
BLOCK = 1 << 16
_FP16_MAX = 65504.0


def value_dtype(name: str) -> torch.dtype:
    """The torch dtype of a value coding name ("fp16", "bf16", "fp32")."""
    try:
        return VALUE_DTYPES[name]
    except KeyError:
        raise ValueError(f"values must be one of {sorted(VALUE_DTYPES)}, got {name!r}") from None


def encode_values(values: torch.Tensor, name: str, summands: int = 1) -> torch.Tensor:
    """``values`` in the wire dtype ``name``; fp16 is clipped to ±65504/``summands`` first
    (a sum of that many wire values stays finite)."""
    dtype = value_dtype(name)
    if dtype == torch.float16:
        bound = _FP16_MAX / max(1, summands)
        values = values.clamp(-bound, bound)
    return values.to(dtype)


def index_coding(numel: int, k: int) -> str:
    """"block16" when block coding is smaller than int32 for k of ``numel`` positions, else
    "int32"."""
    return "block16" if 2 * k + 4 * math.ceil(numel / BLOCK) < 4 * k else "int32"


def index_nbytes(numel: int, k: int) -> int:
    """Bytes of the coded positions (the same on every rank for the same n and k)."""
    if index_coding(numel, k) == "block16":
        return 2 * k + 4 * math.ceil(numel / BLOCK)
    return 4 * k


def encode_indices(indices: torch.Tensor, numel: int) -> torch.Tensor:
    """Ascending int positions < ``numel`` (< 2**31) as a uint8 message of
    :func:`index_nbytes` bytes."""
    if numel >= 2**31:
        raise ValueError("indices are coded for vectors of fewer than 2**31 entries")
    k = indices.numel()
    if index_coding(numel, k) == "int32":
        return indices.to(torch.int32).view(torch.uint8)
    idx = indices.to(torch.int64)
    counts = torch.bincount(idx >> 16, minlength=math.ceil(numel / BLOCK)).to(torch.int32)
    low = ((idx & (BLOCK - 1)) - (BLOCK // 2)).to(torch.int16)
    return torch.cat([counts.view(torch.uint8), low.view(torch.uint8)])


def decode_indices(message: torch.Tensor, numel: int, k: int) -> torch.Tensor:
    """The int64 positions of an :func:`encode_indices` message."""
    if index_coding(numel, k) == "int32":
        return message.view(torch.int32).long()
    blocks = math.ceil(numel / BLOCK)
    counts = message[:4 * blocks].view(torch.int32).long()
    low = message[4 * blocks:].view(torch.int16).long() + BLOCK // 2
    high = torch.repeat_interleave(torch.arange(blocks, device=message.device), counts)
    return (high << 16) + low


def ascending(values: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, indices) reordered by ascending index (a no-op when already ascending, the
    order the adaptive selector returns)."""
    if indices.numel() < 2 or bool((indices[1:] > indices[:-1]).all()):
        return values, indices
    order = torch.argsort(indices)
    return values[order], indices[order]
