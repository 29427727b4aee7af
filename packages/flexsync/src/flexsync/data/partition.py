"""Partitioners and the per-rank batch sampler.

DefDP: a seeded random permutation split into N equal shards (the remainder is dropped so
every rank runs the same number of steps per epoch, which BSP requires).
"""

from __future__ import annotations

import torch


def random_equal_split(n_samples: int, world_size: int, seed: int) -> list[torch.Tensor]:
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    per = n_samples // world_size
    if per == 0:
        raise ValueError(f"{n_samples} samples cannot be split over {world_size} workers")
    perm = torch.randperm(n_samples, generator=torch.Generator().manual_seed(seed))
    return [perm[r * per:(r + 1) * per].clone() for r in range(world_size)]


class ShardSampler:
    """Yields batches of indices from one rank's shard, reshuffled every epoch with a
    generator derived from (seed, rank, epoch) — never the global RNG. Checkpointable."""

    def __init__(self, indices: torch.Tensor, batch_size: int, seed: int, rank: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(indices) < batch_size:
            raise ValueError(
                f"a shard of {len(indices)} samples is smaller than batch_size={batch_size}"
            )
        self.indices = indices
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.epoch = 0
        self.position = 0
        self._order = self._shuffle()

    @property
    def steps_per_epoch(self) -> int:
        return len(self.indices) // self.batch_size

    def _shuffle(self) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.rank * 7919 + self.epoch)
        return self.indices[torch.randperm(len(self.indices), generator=g)]

    def next(self) -> torch.Tensor:
        if self.position >= self.steps_per_epoch:
            self.epoch += 1
            self.position = 0
            self._order = self._shuffle()
        b = self.batch_size
        out = self._order[self.position * b:(self.position + 1) * b]
        self.position += 1
        return out

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._shuffle()
