"""Index selectors for sparsification (docs/methods.md §0.2).

Each selector returns the int64 positions of ``k`` entries of a flat vector to send. Selection
is by magnitude and unsorted (ties broken arbitrarily); values are read by the caller, so every
selector plugs into the same error-feedback and collectives.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from flexsync.compress.threshold import AdaptiveThreshold
from flexsync.net.cost_model import topk_count


def topk(x: torch.Tensor, k: int) -> torch.Tensor:
    """Exact top-k by magnitude over the whole (fused) vector."""
    k = min(max(1, k), x.numel())
    return torch.topk(x.abs(), k, sorted=False).indices


def layerwise_topk(x: torch.Tensor, sizes: Sequence[int], ratio: float) -> torch.Tensor:
    """Top-k inside each layer's slice, k_l = max(1, ⌊c·n_l⌋) (the LWTopk rule)."""
    out, offset = [], 0
    for n_l in sizes:
        idx = topk(x[offset:offset + n_l], topk_count(n_l, ratio))
        out.append(idx + offset)
        offset += n_l
    if offset != x.numel():
        raise ValueError(f"layer sizes sum to {offset}, vector has {x.numel()} entries")
    return torch.cat(out)


def randomk(n: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """k distinct positions uniformly at random from the caller's own generator (never the
    global RNG). Ranks sharing a seed draw the same set."""
    return torch.randperm(n, generator=generator)[:min(max(1, k), n)]


def threshold_topk(x: torch.Tensor, k: int, generator: torch.Generator,
                   sample_fraction: float = 0.01) -> torch.Tensor:
    """Approximate top-k from a sampled threshold (DGC-style): estimate the k-th largest
    magnitude on a random sample, keep entries above it, then trim to exactly k (the exact
    top-k among the survivors) so message sizes stay fixed; falls back to exact top-k when
    the estimate keeps fewer than k."""
    n = x.numel()
    k = min(max(1, k), n)
    m = max(k, int(n * sample_fraction), 256)
    if m >= n:
        return topk(x, k)
    mag = x.abs()
    sample = mag[torch.randint(n, (m,), generator=generator)]
    kk = max(1, int(round(k * m / n)))
    thr = torch.topk(sample, kk, sorted=True).values[-1]
    cand = torch.nonzero(mag >= thr).flatten()
    if cand.numel() < k:
        return topk(x, k)
    if cand.numel() == k:
        return cand
    return cand[torch.topk(mag[cand], k, sorted=False).indices]


def multilevel_topk(values: torch.Tensor, indices: torch.Tensor, k: int) -> tuple[
        torch.Tensor, torch.Tensor]:
    """Compress an already-sparse (values, indices) pair further: the top-k of the kept
    entries. Without ties this equals direct top-k at the higher compression, on a smaller
    tensor (GraVAC's multi-level compression)."""
    sub = topk(values, k)
    return values[sub], indices[sub]


SELECTORS = ("adaptive", "topk", "layerwise", "randomk", "threshold")


def select(kind: str, x: torch.Tensor, ratio: float, *, sizes: Sequence[int] = (),
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Dispatch by name; ``ratio`` is the keep fraction c (k = max(1, ⌊c·n⌋)).

    "adaptive" here is a one-off call (a fresh sampled estimate); its speed comes from the
    threshold a :class:`~flexsync.compress.Sparsifier` carries between steps."""
    k = topk_count(x.numel(), ratio)
    if kind == "topk":
        return topk(x, k)
    if kind == "layerwise":
        return layerwise_topk(x, sizes or [x.numel()], ratio)
    if kind in ("adaptive", "randomk", "threshold") and generator is None:
        raise ValueError(f"selector {kind!r} needs a torch.Generator")
    if kind == "randomk":
        return randomk(x.numel(), k, generator)
    if kind == "threshold":
        return threshold_topk(x, k, generator)
    if kind == "adaptive":
        return AdaptiveThreshold(x.numel(), generator, device=x.device, dtype=x.dtype)(x, k)
    raise ValueError(f"unknown selector {kind!r}; expected one of {SELECTORS}")
