"""Low-bit values for an Allreduce-compatible message (docs/methods.md §5.3).

Pure tensor code, like the rest of :mod:`flexsync.compress`: the caller agrees on the scales
and runs the collective. ``fp16`` and ``bf16`` are plain casts (a sum of casts is summed in
that type on the wire). ``int8`` uses one scale per chunk of ``chunk`` consecutive entries,
s = (max |x| over the chunk and over every rank) / L with L integer levels per side: with
L = ⌊127 / N⌋ the *sum* of N ranks' codes still fits in int8, so the codes can be summed by an
ordinary allreduce (each rank's resolution shrinks with N; error feedback keeps the rest).
"""

from __future__ import annotations

import torch

VALUE_CODECS = ("fp32", "fp16", "bf16", "int8")
_CASTS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def chunk_absmax(x: torch.Tensor, chunk: int) -> torch.Tensor:
    """max |x| over each chunk of ``chunk`` consecutive entries (the last may be shorter)."""
    n = x.numel()
    pad = (-n) % chunk
    padded = torch.cat([x.detach().abs().float(), x.new_zeros(pad, dtype=torch.float32)])
    return padded.view(-1, chunk).amax(dim=1)


def int8_levels(summands: int) -> int:
    """Levels per side so that ``summands`` codes add up without leaving int8."""
    if not 1 <= summands <= 127:
        raise ValueError(f"int8 values support 1 to 127 summands, got {summands}")
    return 127 // summands


def _per_entry(scale: torch.Tensor, chunk: int, n: int) -> torch.Tensor:
    return scale.repeat_interleave(chunk)[:n]


def quantize_int8(x: torch.Tensor, absmax: torch.Tensor, chunk: int, levels: int
                  ) -> torch.Tensor:
    """Codes round(x / s) in [−levels, levels] with s = absmax / levels per chunk."""
    s = _per_entry(absmax / levels, chunk, x.numel())
    q = torch.where(s > 0, x.float() / s.clamp_min(torch.finfo(torch.float32).tiny),
                    torch.zeros_like(s))
    return q.round().clamp_(-levels, levels).to(torch.int8)


def dequantize_int8(q: torch.Tensor, absmax: torch.Tensor, chunk: int, levels: int
                    ) -> torch.Tensor:
    """The float32 values of int8 codes (or of a sum of codes) at scale absmax / levels."""
    return q.float() * _per_entry(absmax / levels, chunk, q.numel())


def cast(x: torch.Tensor, codec: str) -> torch.Tensor:
    """``x`` in the wire type of a float codec (fp32, fp16, bf16)."""
    if codec not in _CASTS:
        raise ValueError(f"codec must be one of {tuple(_CASTS)} to cast, got {codec!r}")
    return x.to(_CASTS[codec])
