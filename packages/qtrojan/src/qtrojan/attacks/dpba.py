"""DPBA: the data-poisoning backdoor baseline (BadNets-style; Gu et al. 2017, Liu et al. 2018).

Design qtrojan.md §3. The trigger is the paper's "1-qubit trigger": input angle ``x_k`` is set
to ``v`` (default ``k = 0``, ``v = pi``, which rotates qubit 0 to ``|1>`` under RY encoding).
Poisoning picks ``floor(r * N)`` training samples from the non-target classes without
replacement, stamps the trigger, relabels them to the target and appends them to the clean
set. ASR is measured on the non-target test samples with the trigger stamped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Trigger:
    """Set input feature ``feature`` (an encoding angle) to ``value``."""

    feature: int = 0
    value: float = math.pi

    def __post_init__(self) -> None:
        if self.feature < 0:
            raise ValueError(f"trigger feature must be >= 0, got {self.feature}")
        if not math.isfinite(self.value):
            raise ValueError(f"trigger value must be finite, got {self.value}")

    def stamp(self, x: torch.Tensor) -> torch.Tensor:
        """A copy of ``x`` with the trigger applied to every row."""
        if self.feature >= x.shape[1]:
            raise ValueError(f"trigger feature {self.feature} out of range for "
                             f"{x.shape[1]} features")
        out = x.clone()
        out[:, self.feature] = self.value
        return out


@dataclass(frozen=True)
class PoisonedSet:
    """Clean training set with the poisoned copies appended; ``indices`` are the sources."""

    x: torch.Tensor
    y: torch.Tensor
    indices: torch.Tensor
    n_clean: int

    @property
    def n_poison(self) -> int:
        return int(self.indices.shape[0])


def poison_count(rate: float, n_train: int) -> int:
    """``floor(rate * N)``, the number of poisoned samples (design §3)."""
    return math.floor(rate * n_train + 1e-9)


def poison(x: torch.Tensor, y: torch.Tensor, rate: float, target: int, trigger: Trigger,
           seed: int = 0) -> PoisonedSet:
    """Append ``floor(rate * N)`` triggered, relabelled copies of non-target samples."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"poison rate must be in [0, 1], got {rate}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y differ in length: {x.shape[0]} vs {y.shape[0]}")
    count = poison_count(rate, x.shape[0])
    candidates = torch.nonzero(y != target).flatten()
    if count > candidates.numel():
        raise ValueError(f"poison rate {rate} needs {count} non-target samples, only "
                         f"{candidates.numel()} exist")
    gen = torch.Generator().manual_seed(seed)
    chosen = candidates[torch.randperm(candidates.numel(), generator=gen)[:count]]
    xp = trigger.stamp(x[chosen])
    yp = torch.full((count,), target, dtype=y.dtype)
    return PoisonedSet(torch.cat([x, xp]), torch.cat([y, yp]), chosen, x.shape[0])


def triggered_test(x: torch.Tensor, y: torch.Tensor, target: int, trigger: Trigger,
                   non_target_only: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Test inputs with the trigger stamped (by default only those not of class ``target``)."""
    keep = y != target if non_target_only else torch.ones_like(y, dtype=torch.bool)
    return trigger.stamp(x[keep]), y[keep]
