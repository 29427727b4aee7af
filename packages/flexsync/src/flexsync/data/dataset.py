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


_CACHE: dict[tuple, Dataset] = {}


def load_dataset(name: str, seed: int, **options: Any) -> Dataset:
    """Build (or fetch from this process's cache) a built-in dataset.

    The local launcher calls this before forking, so workers share the tensors copy-on-write
    instead of generating them N times.
    """
    from flexsync.data import bundled, stdlib_text, synthetic

    key = (name, seed, tuple(sorted(options.items())))
    if key not in _CACHE:
        builders = {
            "synthetic-images": synthetic.synthetic_images,
            "synthetic-text": synthetic.synthetic_text,
            "digits": bundled.digits,
            "mnist": bundled.mnist,
            "stdlib-text": stdlib_text.stdlib_text,
        }
        if name not in builders:
            raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(builders)}")
        _CACHE[key] = builders[name](seed=seed, **options)
    return _CACHE[key]
