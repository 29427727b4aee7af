"""Seeded synthetic datasets (docs/methods.md §0.9).

* Images: C classes, K smooth random prototypes per class (a 4×4 Gaussian image upsampled
  bicubically to S×S, standardised). A sample is a random prototype of its class, rolled by up
  to ±2 pixels, scaled by U(0.8, 1.2), plus Gaussian noise of std σ. At C = 100, K = 3, σ = 0.8
  it is hard enough that communication strategies separate.
* Text: a sparse first-order Markov chain with Zipf-weighted transitions. Its entropy rate is
  known in closed form, so the best achievable perplexity is reported with the data.
"""

from __future__ import annotations

import bisect
import math

import numpy as np
import torch
import torch.nn.functional as F

from flexsync.data.dataset import Dataset


def synthetic_images(
    seed: int = 0,
    classes: int = 100,
    prototypes: int = 3,
    noise: float = 0.8,
    train_size: int = 20000,
    test_size: int = 4000,
    image_size: int = 16,
    channels: int = 3,
    max_shift: int = 2,
) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(classes * prototypes, channels, 4, 4, generator=g)
    protos = F.interpolate(base, size=(image_size, image_size), mode="bicubic", align_corners=False)
    mean = protos.mean(dim=(1, 2, 3), keepdim=True)
    std = protos.std(dim=(1, 2, 3), keepdim=True)
    protos = ((protos - mean) / std).view(classes, prototypes, channels, image_size, image_size)

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(classes, (n,), generator=g)
        k = torch.randint(prototypes, (n,), generator=g)
        x = protos[y, k].clone()
        shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=g)
        for dy in range(-max_shift, max_shift + 1):       # roll in groups: ≤ 25 tensor ops
            for dx in range(-max_shift, max_shift + 1):
                sel = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
                if sel.any() and (dy or dx):
                    x[sel] = torch.roll(x[sel], shifts=(dy, dx), dims=(2, 3))
        amp = torch.empty(n, 1, 1, 1).uniform_(0.8, 1.2, generator=g)
        x = x * amp + noise * torch.randn(x.shape, generator=g)
        return x.contiguous(), y

    train_x, train_y = sample(train_size)
    test_x, test_y = sample(test_size)
    return Dataset("synthetic-images", train_x, train_y, test_x, test_y, classes,
                   info={"prototypes": prototypes, "noise": noise})


def markov_chain(vocab: int, support: int, zipf: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Transition matrix P (vocab × vocab, each row with ``support`` non-zeros, Zipf weights)
    and its stationary distribution π."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, support + 1) ** zipf
    weights /= weights.sum()
    P = np.zeros((vocab, vocab))
    for i in range(vocab):
        P[i, rng.choice(vocab, size=support, replace=False)] = weights
    pi = np.full(vocab, 1.0 / vocab)
    for _ in range(2000):                              # power iteration
        nxt = pi @ P
        if np.abs(nxt - pi).sum() < 1e-13:
            break
        pi = nxt
    return P, pi / pi.sum()


def entropy_rate(P: np.ndarray, pi: np.ndarray) -> float:
    """H = Σ_i π_i · H(P_i) in nats: the lowest achievable per-token cross-entropy."""
    with np.errstate(divide="ignore", invalid="ignore"):
        row_h = -np.where(P > 0, P * np.log(P), 0.0).sum(axis=1)
    return float(pi @ row_h)


def synthetic_text(
    seed: int = 0,
    vocab: int = 1000,
    support: int = 20,
    zipf: float = 1.1,
    train_tokens: int = 200_000,
    test_tokens: int = 20_000,
    seq_len: int = 35,
) -> Dataset:
    P, pi = markov_chain(vocab, support, zipf, seed)
    rng = np.random.default_rng(seed + 1)
    cdf = np.cumsum(P, axis=1).tolist()
    total = train_tokens + test_tokens
    u = rng.random(total).tolist()
    toks = [int(rng.choice(vocab, p=pi))]
    for t in range(1, total):
        row = cdf[toks[-1]]
        toks.append(min(bisect.bisect_right(row, u[t] * row[-1]), vocab - 1))
    stream = torch.tensor(toks, dtype=torch.long)

    def windows(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = (len(s) - 1) // seq_len
        w = s[: n * seq_len + 1]
        x = w[:-1].view(n, seq_len)
        y = w[1:].view(n, seq_len)
        return x.contiguous(), y.contiguous()

    train_x, train_y = windows(stream[:train_tokens])
    test_x, test_y = windows(stream[train_tokens:])
    h = entropy_rate(P, pi)
    return Dataset("synthetic-text", train_x, train_y, test_x, test_y, vocab, task="language",
                   info={"entropy_rate_nats": h, "optimal_perplexity": math.exp(h)})
