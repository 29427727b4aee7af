"""Use a flexsync strategy from your own training loop with DistributedOptimizer.

Runs as written on CPU: it forks its own gloo workers with ``flexsync.run_local``::

    python examples/optimizer_wrapper.py                       # 2 workers, AR-Topk STAR
    python examples/optimizer_wrapper.py --strategy topk --ratio 0.05 --workers 3

or one process per rank under torchrun (the same script detects it)::

    torchrun --standalone --nproc_per_node=2 examples/optimizer_wrapper.py --strategy dense
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from _common import launch, make_data

import flexsync
from flexsync import NetworkConditions

BATCH = 32
RATIO_STRATEGIES = ("topk", "artopk", "flexible", "scadles")     # take a keep fraction


def train(args: argparse.Namespace) -> float:
    """One rank's training; the process group is already initialised."""
    rank, world = dist.get_rank(), dist.get_world_size()
    x, y = make_data()
    shard = torch.arange(rank, len(y), world)            # this rank's part of the data
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
    options = {"ratio": args.ratio} if args.strategy in RATIO_STRATEGIES else {}
    opt = flexsync.DistributedOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), model,
        strategy=args.strategy,
        conditions=NetworkConditions.parse(alpha="1ms", bandwidth="100mbit"),
        steps_per_epoch=len(shard) // BATCH, batch_size=BATCH,       # fedavg, scadles, gravac
        **options)
    g = torch.Generator().manual_seed(rank)
    for step in range(args.steps):
        idx = shard[torch.randint(len(shard), (BATCH,), generator=g)]
        opt.zero_grad()
        loss = F.cross_entropy(opt.model(x[idx]), y[idx])
        loss.backward()
        opt.step()                                        # aggregate, then update
        if rank == 0 and (step + 1) % max(1, args.steps // 5) == 0:
            print(f"step {step + 1:4d}  loss {loss.item():.4f}  {opt.signals()}")
    opt.close()
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    if rank == 0:
        print(f"final accuracy {accuracy:.3f}, bytes sent per worker {opt.comm.total_bytes}")
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="artopk", choices=sorted(flexsync.STRATEGIES))
    parser.add_argument("--ratio", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=int(os.environ.get("EXAMPLE_STEPS", 100)))
    args = parser.parse_args()
    launch(train, args)


if __name__ == "__main__":
    main()
