"""What every rank must agree on before a wrapper step aggregates (docs/methods.md §0.6).

One small unaccounted allgather per step carries, from every rank:

* whether its gradients hold an inf or NaN, so that every rank skips the same step (a rank
  that skipped alone would leave its peers' next collective unmatched);
* which parameters received a gradient, so that a parameter no rank used is left alone by
  the optimizer, as torch does (a zero gradient would still move it under weight decay);
* its previous step's duration (GraVAC's throughput table wants the slowest rank's);
* its live (α, β) fit when the conditions are measured (the ranks take the median);
* the state of the overlapped dense path (:mod:`.overlap`): 1 when the gradients it sent
  from backward went stale, so that every rank aggregates after backward this step; 2 when
  it must stop overlapping (a GradScaler, whose ``unscale_`` the staleness check cannot see
  and whose scale may differ between ranks), so that every rank stops at the same step.

The gradient mask is bit-packed (62 parameters per int64 word) and the floats ride as their
int64 bit patterns, so the message stays a few dozen bytes per rank even for large models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from flexsync.comm import Communicator

_BITS = 62
_FLOATS = 5       # nonfinite, step seconds, alpha, beta, overlap state


@dataclass(frozen=True)
class StepAgreement:
    """The agreed view of one step, identical on every rank."""

    nonfinite_ranks: tuple[int, ...]      # ranks whose gradients were not finite
    used: tuple[bool, ...]                # per parameter: some rank produced a gradient
    step_s: float | None                  # the slowest rank's previous step, if measured
    fit: tuple[float, float] | None       # median (α s, β s/byte) over ranks that fitted
    overlap: int = 0                      # max over ranks: 0 fine, 1 stale, 2 stop


def _pack(flags: list[bool], device: torch.device) -> torch.Tensor:
    words = max(1, math.ceil(len(flags) / _BITS))
    bits = torch.zeros(words * _BITS, dtype=torch.int64, device=device)
    bits[:len(flags)] = torch.tensor(flags, dtype=torch.int64, device=device)
    weights = 2 ** torch.arange(_BITS, dtype=torch.int64, device=device)
    return (bits.view(words, _BITS) * weights).sum(dim=1)


def _unpack(words: torch.Tensor, n: int) -> torch.Tensor:
    shifts = torch.arange(_BITS, dtype=torch.int64, device=words.device)
    return ((words.unsqueeze(-1) >> shifts) & 1).flatten(-2)[..., :n].bool()


def agree_step(comm: Communicator, nonfinite: bool, used: list[bool], step_s: float | None,
               fit: tuple[float, float] | None, overlap: int = 0) -> StepAgreement:
    """Exchange this rank's view (see the module docstring) and return the agreed one."""
    nan = float("nan")
    floats = torch.tensor([1.0 if nonfinite else 0.0, nan if step_s is None else step_s,
                           *(fit or (nan, nan)), float(overlap)],
                          dtype=torch.float64, device=comm.device)
    own = torch.cat([floats.view(torch.int64), _pack(used, comm.device)])
    table = comm.allgather(own, accounted=False, scalable=False, tag="agreement").cpu()
    values = table[:, :_FLOATS].contiguous().view(torch.float64)
    mask = _unpack(table[:, _FLOATS:], len(used)).any(dim=0)
    steps = values[:, 1][~values[:, 1].isnan()]
    fits = values[:, 2:4][~values[:, 2:4].isnan().any(dim=1)]
    med = fits.median(dim=0).values if len(fits) else None
    return StepAgreement(
        nonfinite_ranks=tuple(int(r) for r in torch.nonzero(values[:, 0] > 0).flatten()),
        used=tuple(bool(u) for u in mask),
        step_s=float(steps.max()) if len(steps) else None,
        fit=None if med is None else (float(med[0]), float(med[1])),
        overlap=int(values[:, 4].max()))
