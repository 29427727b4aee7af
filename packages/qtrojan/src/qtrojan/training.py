"""Training loop for the QNN (design qtrojan.md §1: Adam, lr 0.05, batch 64, cross-entropy).

The same loop trains the clean victim, the DPBA-poisoned model and the clean fine-tuning step
(design §3), so all three follow one protocol. Shuffling uses a seeded generator.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from qtrojan.qnn import QNN


@dataclass
class TrainResult:
    """Per-epoch mean loss and the wall time of the loop."""

    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def train(model: QNN, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float = 0.05,
          batch_size: int = 64, seed: int = 0) -> TrainResult:
    """Minimise softmax cross-entropy of ``model(x)`` against ``y`` with Adam, in place."""
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y differ in length: {x.shape[0]} vs {y.shape[0]}")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    result = TrainResult()
    t0 = time.perf_counter()
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(x.shape[0], generator=gen)
        total, count = 0.0, 0
        for i in range(0, x.shape[0], batch_size):
            idx = perm[i:i + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * idx.shape[0]
            count += idx.shape[0]
        result.losses.append(total / max(count, 1))
    model.eval()
    result.seconds = time.perf_counter() - t0
    return result
