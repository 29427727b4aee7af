"""Partitioners and the per-rank batch samplers (objects with ``next()``,
``steps_per_epoch`` and ``state_dict``); :func:`make_sampler` picks one by name.

DefDP: a seeded random permutation split into N equal shards (the remainder is dropped so
every rank runs the same number of steps per epoch, which BSP requires). SelDP (rotated
chunks, docs/methods.md §2.3) and non-IID label shards (§2.4) follow below.
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


class EpochSampler:
    """Walks an epoch's sample order in batches and builds a new order every epoch.
    Subclasses define ``steps_per_epoch`` and ``_order_for_epoch``; the order depends only on
    (seed, rank, epoch), so ``state_dict`` is just the position. Checkpointable."""

    def __init__(self, batch_size: int, seed: int, rank: int) -> None:
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.epoch = 0
        self.position = 0
        self._order = self._order_for_epoch()

    @property
    def steps_per_epoch(self) -> int:
        raise NotImplementedError

    def _order_for_epoch(self) -> torch.Tensor:
        raise NotImplementedError

    def next(self) -> torch.Tensor:
        if self.position >= self.steps_per_epoch:
            self.epoch += 1
            self.position = 0
            self._order = self._order_for_epoch()
        b = self.batch_size
        out = self._order[self.position * b:(self.position + 1) * b]
        self.position += 1
        return out

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._order_for_epoch()


class ShardSampler(EpochSampler):
    """Yields batches of indices from one rank's shard, reshuffled every epoch with a
    generator derived from (seed, rank, epoch) — never the global RNG."""

    def __init__(self, indices: torch.Tensor, batch_size: int, seed: int, rank: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(indices) < batch_size:
            raise ValueError(
                f"a shard of {len(indices)} samples is smaller than batch_size={batch_size}"
            )
        self.indices = indices
        super().__init__(batch_size, seed, rank)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.indices) // self.batch_size

    def _order_for_epoch(self) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.rank * 7919 + self.epoch)
        return self.indices[torch.randperm(len(self.indices), generator=g)]


PARTITIONS = ("defdp", "seldp", "noniid")
SELDP_MODES = ("rotate", "permute")


class SelDPSampler(EpochSampler):
    """SelDP, the rotated-chunk partitioning of SelSync (docs/methods.md §2.3).

    D is split (seeded, shared by all ranks) into N equal chunks DP_0..DP_{N−1}. In data-epoch e
    each chunk is shuffled with a generator seeded by (seed, e, chunk id), the same on every
    rank, and worker n walks the chunks in the rotated order DP_n, DP_{n+1}, …, DP_{n−1}. Since
    all workers take the same steps, at step i worker n is in chunk (n + ⌊i·b/|chunk|⌋) mod N,
    so the workers' batches of a step are disjoint (b ≤ |chunk|), and each worker covers all
    of D every epoch. The chunk size is the largest c ≤ |D|/N with N·c divisible by b, so no
    partial batch is ever dropped (at most a few samples per chunk are left out of D).
    """

    def __init__(self, n_samples: int, world_size: int, batch_size: int, seed: int,
                 rank: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        chunk = n_samples // world_size
        while chunk > 0 and (chunk * world_size) % batch_size:
            chunk -= 1
        if chunk < batch_size:
            raise ValueError(f"{n_samples} samples cannot give {world_size} SelDP chunks of at "
                             f"least batch_size={batch_size}")
        perm = torch.randperm(n_samples, generator=torch.Generator().manual_seed(seed))
        self.chunks = [perm[k * chunk:(k + 1) * chunk].clone() for k in range(world_size)]
        self.world_size = world_size
        super().__init__(batch_size, seed, rank)

    @property
    def steps_per_epoch(self) -> int:
        return self.world_size * len(self.chunks[0]) // self.batch_size

    def _order_for_epoch(self) -> torch.Tensor:
        parts = []
        for j in range(self.world_size):
            k = (self.rank + j) % self.world_size
            g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 65_537 + k)
            parts.append(self.chunks[k][torch.randperm(len(self.chunks[k]), generator=g)])
        return torch.cat(parts)



def owned_labels(num_classes: int, world_size: int,
                 labels_per_worker: int | None = None) -> list[list[int]]:
    """Label sets of the non-IID split (docs/methods.md §2.4): worker n owns the contiguous
    (cyclic) run of labels starting at ⌊n·C/N⌋. By default the run ends where the next worker's
    starts (disjoint blocks of ⌊C/N⌋ or ⌈C/N⌉ labels; one label each when N > C, shared by
    several workers); ``labels_per_worker`` = L fixes the run length (runs may overlap).
    """
    out = []
    for n in range(world_size):
        start = n * num_classes // world_size
        length = labels_per_worker if labels_per_worker is not None else \
            max(1, (n + 1) * num_classes // world_size - start)
        if not 1 <= length <= num_classes:
            raise ValueError(f"labels_per_worker must be in [1, {num_classes}], got {length}")
        out.append([(start + j) % num_classes for j in range(length)])
    return out


def label_shards(labels: torch.Tensor, world_size: int, seed: int,
                 labels_per_worker: int | None = None) -> list[torch.Tensor]:
    """Disjoint, equal-sized non-IID shards: worker n gets only samples of its
    :func:`owned_labels`. A label owned by several workers has its samples split evenly
    (seeded) between them. Shards are then trimmed (seeded) to the smallest one so every rank
    takes the same number of steps per epoch, which lock-step training needs. Works for any
    worker count, whether or not it divides the number of classes."""
    if labels.dim() != 1:
        raise ValueError("non-IID label shards need one class label per sample")
    num_classes = int(labels.max()) + 1
    owners: dict[int, list[int]] = {}
    for n, owned in enumerate(owned_labels(num_classes, world_size, labels_per_worker)):
        for c in owned:
            owners.setdefault(c, []).append(n)
    missing = sorted(set(range(num_classes)) - owners.keys())
    if missing:
        raise ValueError(f"labels_per_worker={labels_per_worker} leaves labels {missing} "
                         f"without a worker; use at least {-(-num_classes // world_size)}")
    g = torch.Generator().manual_seed(seed)
    parts: list[list[torch.Tensor]] = [[] for _ in range(world_size)]
    for c in range(num_classes):
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        for piece, n in zip(torch.tensor_split(idx, len(owners[c])), owners[c], strict=True):
            parts[n].append(piece)
    shards = [torch.cat(p) for p in parts]
    size = min(len(s) for s in shards)
    if size == 0:
        raise ValueError("a non-IID shard is empty")
    return [s[torch.randperm(len(s), generator=g)[:size]].sort().values for s in shards]


def make_sampler(partition: str, labels: torch.Tensor, world_size: int, rank: int,
                 batch_size: int, seed: int, seldp_mode: str = "rotate",
                 labels_per_worker: int | None = None) -> ShardSampler | SelDPSampler:
    """This rank's batch sampler for ``partition``: "defdp" (random equal split, worker n
    uses DP_n only), "seldp" (§2.3; ``seldp_mode`` "rotate", or "permute": the authors' code
    form, an independent per-rank permutation of all of D) or "noniid" (:func:`label_shards`)."""
    n = len(labels)
    if partition == "defdp":
        return ShardSampler(random_equal_split(n, world_size, seed)[rank], batch_size, seed, rank)
    if partition == "seldp":
        if seldp_mode == "rotate":
            return SelDPSampler(n, world_size, batch_size, seed, rank)
        if seldp_mode == "permute":
            return ShardSampler(torch.arange(n), batch_size, seed, rank)
        raise ValueError(f"seldp_mode must be one of {SELDP_MODES}, got {seldp_mode!r}")
    if partition == "noniid":
        shard = label_shards(labels, world_size, seed, labels_per_worker)[rank]
        return ShardSampler(shard, batch_size, seed, rank)
    raise ValueError(f"partition must be one of {PARTITIONS}, got {partition!r}")
