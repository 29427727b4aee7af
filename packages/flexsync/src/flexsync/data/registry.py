"""The registry of built-in datasets, and the per-process cache of built ones."""

from __future__ import annotations

from typing import Any

from flexsync.data import bundled, hard_images, stdlib_text, synthetic
from flexsync.data.dataset import Dataset

BUILDERS = {
    "synthetic-images": synthetic.synthetic_images,
    "synthetic-images-hard": hard_images.synthetic_images_hard,
    "synthetic-text": synthetic.synthetic_text,
    "digits": bundled.digits,
    "mnist": bundled.mnist,
    "stdlib-text": stdlib_text.stdlib_text,
}
DATASETS = tuple(BUILDERS)
LANGUAGE_DATASETS = ("synthetic-text", "stdlib-text")

_CACHE: dict[tuple, Dataset] = {}


def load_dataset(name: str, seed: int, **options: Any) -> Dataset:
    """Build (or fetch from this process's cache) a built-in dataset.

    The local launcher calls this before forking, so workers share the tensors copy-on-write
    instead of generating them N times.
    """
    if name not in BUILDERS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(BUILDERS)}")
    key = (name, seed, tuple(sorted(options.items())))
    if key not in _CACHE:
        _CACHE[key] = BUILDERS[name](seed=seed, **options)
    return _CACHE[key]
