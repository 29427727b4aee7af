"""Metrics (design qtrojan.md §4).

* CDA – accuracy on the clean test set with the backdoor disabled.
* ASR – fraction of attacked test inputs predicted as the target class, over (a) all test
  samples or (b) non-target-class samples only (the stricter DPBA convention).
* Shot ASR – the same with logits from finite-shot ``<Z>`` estimates.
"""

from __future__ import annotations

import torch


def accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``pred == y`` (CDA when evaluated on clean test data)."""
    if pred.shape != y.shape:
        raise ValueError(f"pred and y shapes differ: {tuple(pred.shape)} vs {tuple(y.shape)}")
    if y.numel() == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float((pred == y).float().mean())


def attack_success_rate(pred: torch.Tensor, target: int, y: torch.Tensor | None = None,
                        non_target_only: bool = False) -> float:
    """Fraction of ``pred`` equal to ``target``; optionally only where ``y != target``."""
    if non_target_only:
        if y is None:
            raise ValueError("non_target_only needs the true labels y")
        pred = pred[y != target]
    if pred.numel() == 0:
        raise ValueError("attack success rate of an empty set is undefined")
    return float((pred == target).float().mean())


def target_margin(logits: torch.Tensor, target: int) -> torch.Tensor:
    """``logit_t - max_{c != t} logit_c`` per row (positive iff the prediction is ``t``)."""
    others = torch.cat([logits[..., :target], logits[..., target + 1:]], dim=-1)
    return logits[..., target] - others.max(dim=-1).values
