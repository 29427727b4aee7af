"""Mixed precision (AMP) through DistributedOptimizer: the plain torch GradScaler recipe.

    python examples/amp.py                         # 2 forked gloo workers, top-k 5 %
    torchrun --standalone --nproc_per_node=2 examples/amp.py

``scaler.scale(loss).backward(); scaler.step(opt); scaler.update()`` works as written: the
wrapper unscales each rank's gradients before aggregating them, and when any rank's gradients
overflowed it skips the step on *every* rank, so no collective is left unmatched and the
replicas stay identical. The script makes rank 1's gradients overflow once (``--overflow-at``)
to show it. On CPU autocast runs in bfloat16; on a GPU use ``torch.autocast("cuda")`` (float16),
where the scaler matters most.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from _common import launch, make_data, replicas_identical

import flexsync

BATCH = 32


def train(args: argparse.Namespace) -> None:
    rank, world = dist.get_rank(), dist.get_world_size()
    x, y = make_data()
    shard = torch.arange(rank, len(y), world)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
    opt = flexsync.DistributedOptimizer(torch.optim.AdamW(model.parameters(), lr=1e-2), model,
                                        strategy="topk", ratio=0.05)
    scaler = torch.amp.GradScaler("cpu")
    g = torch.Generator().manual_seed(rank)
    for step in range(args.steps):
        idx = shard[torch.randint(len(shard), (BATCH,), generator=g)]
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x[idx]), y[idx])
        scaler.scale(loss).backward()
        if step == args.overflow_at and rank == 1:          # simulate an fp16 overflow
            model[0].weight.grad[0, 0] = float("inf")
        scaler.step(opt)               # unscale, agree on skipping, aggregate, update
        scaler.update()
    identical = replicas_identical(model)
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    if rank == 0:
        print(f"skipped steps: {opt.skipped_steps} (on every rank); scale {scaler.get_scale()}")
        print(f"replicas identical: {identical}")
        print(f"final accuracy {accuracy:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=int(os.environ.get("EXAMPLE_STEPS", 100)))
    parser.add_argument("--overflow-at", type=int, default=3)
    args = parser.parse_args()
    launch(train, args)


if __name__ == "__main__":
    main()
