"""Low-bit values agreed across ranks, ready for a summing allreduce (docs/methods.md §5.3).

:mod:`flexsync.compress.quantize` holds the pure tensor codecs; this module adds the one thing a
codec needs from the other ranks: int8's per-chunk scales, agreed with a small allreduce-MAX so
every rank quantises on the same grid and the codes can be summed on the wire. DiLoCo's
pseudo-gradients and the averaged change of the local-update strategies (SelSync, local SGD,
FedAvg over every worker) travel through it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from flexsync.comm.collectives import Communicator
from flexsync.compress.quantize import (
    cast,
    chunk_absmax,
    dequantize_int8,
    int8_levels,
    quantize_int8,
)

Decoder = Callable[[torch.Tensor], torch.Tensor]


def encode(comm: Communicator, vals: torch.Tensor, codec: str, chunk: int, summands: int
           ) -> tuple[torch.Tensor, Decoder]:
    """(wire tensor, decoder to float32) of ``vals`` in ``codec`` (fp32, fp16, bf16, int8).

    int8 first agrees on the per-chunk scales (one accounted allreduce-MAX of
    ⌈n / chunk⌉ floats, tagged ``scales``) and uses ⌊127 / summands⌋ levels a side, so that
    ``summands`` ranks' codes add up without leaving int8. The decoder turns a rank's own
    codes, or the sum of every rank's, back into float32.
    """
    if codec != "int8":
        return cast(vals, codec), lambda w: w.float()
    absmax = comm.allreduce(chunk_absmax(vals, chunk), op="max", tag="scales", scalable=False)
    levels = int8_levels(summands)
    return (quantize_int8(vals, absmax, chunk, levels),
            lambda w: dequantize_int8(w, absmax, chunk, levels))
