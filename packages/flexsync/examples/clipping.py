"""Clip the combined gradient, not each rank's own: ``synchronize()`` then ``step()``.

    python examples/clipping.py                    # 2 forked gloo workers, dense allreduce
    torchrun --standalone --nproc_per_node=2 examples/clipping.py --strategy artopk

Horovod's pattern: ``opt.synchronize()`` aggregates now, so ``p.grad`` holds the gradient all
ranks agreed on; ``clip_grad_norm_`` then clips that (its norm is the same on every rank), and
``opt.step()`` inside ``with opt.skip_synchronize():`` only updates. Clipping before a plain
``opt.step()`` would clip each rank's local gradient instead. With AMP, unscale first:
``scaler.unscale_(opt); opt.synchronize(); clip_grad_norm_(...)``, then
``with opt.skip_synchronize(): scaler.step(opt)``.
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
    options = {} if args.strategy == "dense" else {"ratio": 0.05}
    opt = flexsync.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model,
                                        strategy=args.strategy, **options)
    g = torch.Generator().manual_seed(rank)
    norms = []
    for _ in range(args.steps):
        idx = shard[torch.randint(len(shard), (BATCH,), generator=g)]
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.synchronize()                                   # p.grad: the combined gradient
        norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)))
        with opt.skip_synchronize():
            opt.step()                                      # update only
    # Every rank clipped the same gradient, so every rank saw the same norms.
    table = torch.tensor(norms)
    first = table.clone()
    dist.broadcast(first, 0)
    same_norms = torch.tensor([float(torch.equal(table, first))])
    dist.all_reduce(same_norms, op=dist.ReduceOp.MIN)
    identical = replicas_identical(model)
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    if rank == 0:
        print(f"gradient norms before clipping: first {norms[0]:.3f}, last {norms[-1]:.3f}; "
              f"identical on every rank: {bool(same_norms.item())}")
        print(f"replicas identical: {identical}")
        print(f"final accuracy {accuracy:.3f}")

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=int(os.environ.get("EXAMPLE_STEPS", 100)))
    parser.add_argument("--strategy", default="dense", choices=sorted(flexsync.STRATEGIES))
    args = parser.parse_args()
    launch(train, args)


if __name__ == "__main__":
    main()
