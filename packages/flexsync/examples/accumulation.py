"""Gradient accumulation through DistributedOptimizer: N backward passes, one aggregation.

    python examples/accumulation.py                # 2 forked gloo workers, top-k 5 %
    python examples/accumulation.py --strategy ddp
    torchrun --standalone --nproc_per_node=2 examples/accumulation.py

As with a plain torch optimizer: divide each micro-batch's loss by N, call ``backward()`` N
times, then ``step()`` once. Gradients accumulate locally and are aggregated once, so
accumulating 4 micro-batches of 8 trains like one batch of 32 and sends a quarter of the
bytes. ``backward_passes_per_step=N`` (Horovod's name) tells the ``ddp`` strategy to skip
DDP's allreduce on the first N-1 passes; the other strategies aggregate at ``step()`` anyway.
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
    options = {"ratio": 0.05} if args.strategy in ("topk", "artopk") else {}
    opt = flexsync.DistributedOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), model,
        strategy=args.strategy, backward_passes_per_step=args.micro, **options)
    g = torch.Generator().manual_seed(rank)
    for _ in range(args.steps):
        idx = shard[torch.randint(len(shard), (BATCH * args.micro,), generator=g)]
        opt.zero_grad()
        for part in idx.split(BATCH):                       # micro-batches
            loss = F.cross_entropy(opt.model(x[part]), y[part]) / args.micro
            loss.backward()                                 # accumulates in p.grad
        opt.step()                                          # one aggregation per step
    opt.close()
    identical = replicas_identical(model)
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    if rank == 0:
        print(f"{args.steps} steps of {args.micro} micro-batches: "
              f"{opt.comm.total_bytes} bytes sent per worker")
        print(f"replicas identical: {identical}")
        print(f"final accuracy {accuracy:.3f}")

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=int(os.environ.get("EXAMPLE_STEPS", 100)))
    parser.add_argument("--strategy", default="topk", choices=sorted(flexsync.STRATEGIES))
    parser.add_argument("--micro", type=int, default=4, help="micro-batches per step")
    args = parser.parse_args()
    launch(train, args)


if __name__ == "__main__":
    main()
