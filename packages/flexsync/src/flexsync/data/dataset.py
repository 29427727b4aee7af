"""The dataset bundle every run trains on, and the registry of built-in datasets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Dataset:
    """In-memory train/test tensors plus what a model needs to know about them.

    ``task`` is "classification" (``y`` holds class ids, one per sample) or "language"
    (``x``/``y`` are token windows shifted by one; the loss is per token).
    A user can build one from their own tensors and pass it to :func:`flexsync.train`.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int                      # classes, or vocabulary size for language tasks
    task: str = "classification"
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in ("classification", "language"):
            raise ValueError(f"task must be 'classification' or 'language', got {self.task!r}")
        if len(self.train_x) != len(self.train_y) or len(self.test_x) != len(self.test_y):
            raise ValueError("x and y must have the same number of samples")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])
