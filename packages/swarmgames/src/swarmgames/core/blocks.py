"""Splitting B environment copies into blocks that are stepped one after another.

A batched step's pair arrays grow as B·N²; stepping at most ``block`` copies at a time keeps
them cache-sized, which measured faster than one big block (``benchmarks/results/``). Shared
by the batched flocking and air-mobility environments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def make_blocks(seeds: Iterable[int], block: int,
                build: Callable[[list[int]], T]) -> tuple[list[int], list[T]]:
    """The seeds as ints and ``build`` applied to consecutive runs of at most ``block`` of
    them. Refuses an empty seed list and a block below 1."""
    seeds = [int(s) for s in seeds]
    if len(seeds) < 1:
        raise ValueError("seeds must name at least one environment")
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    return seeds, [build(seeds[i: i + block]) for i in range(0, len(seeds), block)]
