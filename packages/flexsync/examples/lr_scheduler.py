"""A torch learning-rate scheduler over DistributedOptimizer (warm-up, then cosine decay).

    python examples/lr_scheduler.py                # 2 forked gloo workers, AR-Topk
    torchrun --standalone --nproc_per_node=2 examples/lr_scheduler.py

DistributedOptimizer is a ``torch.optim.Optimizer`` sharing the wrapped optimizer's
``param_groups``, so any scheduler (``StepLR``, ``CosineAnnealingLR``, ``OneCycleLR``,
``SequentialLR``, …) takes it and sets the rate the strategy's update uses. Strategies that
rescale the rate for a step (ScaDLES) do so on top of the scheduled value. The script also
saves and restores the optimizer and scheduler mid-run, as a checkpoint would.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from _common import launch, make_data, replicas_identical
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

import flexsync

BATCH = 32


def train(args: argparse.Namespace) -> None:
    rank, world = dist.get_rank(), dist.get_world_size()
    x, y = make_data()
    shard = torch.arange(rank, len(y), world)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
    opt = flexsync.DistributedOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9), model,
        strategy="artopk", ratio=0.05)
    warmup = max(1, args.steps // 10)
    sched = SequentialLR(opt, [LinearLR(opt, start_factor=0.1, total_iters=warmup),
                               CosineAnnealingLR(opt, T_max=args.steps - warmup)],
                         milestones=[warmup])
    g = torch.Generator().manual_seed(rank)
    lrs = []
    for step in range(args.steps):
        idx = shard[torch.randint(len(shard), (BATCH,), generator=g)]
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
        if step == args.steps // 2:                         # checkpoint and restore
            saved = {"opt": opt.state_dict(), "sched": sched.state_dict()}
            opt.load_state_dict(saved["opt"])
            sched.load_state_dict(saved["sched"])
    identical = replicas_identical(model)
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    if rank == 0:
        print(f"learning rate: {lrs[0]:.4f} after the first step, peak {max(lrs):.4f}, "
              f"{lrs[-1]:.4f} at the end")
        print(f"replicas identical: {identical}")
        print(f"final accuracy {accuracy:.3f}")

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=int(os.environ.get("EXAMPLE_STEPS", 100)))
    args = parser.parse_args()
    launch(train, args)


if __name__ == "__main__":
    main()
