"""Compress plain PyTorch DDP: register flexsync's communication hook on your DDP model.

Runs as written on CPU (forks its own gloo workers)::

    python examples/ddp_hook.py                                  # AR-Topk, 2 workers
    python examples/ddp_hook.py --strategy topk --ratio 0.02 --workers 3

The first step is a dense allreduce (DDP rebuilds its buckets after it); from the second
step every bucket is error-fed, sparsified and aggregated by the chosen strategy.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

import flexsync
from flexsync.integrations.ddp_hook import HOOK_STRATEGIES, register_flexsync_hook
from flexsync.net.conditions import NetworkConditions


def train(args: argparse.Namespace) -> None:
    rank = dist.get_rank()
    g = torch.Generator().manual_seed(0)
    w_true = torch.randn(32, 1, generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 128), nn.Tanh(), nn.Linear(128, 1))
    ddp = nn.parallel.DistributedDataParallel(model)
    state = register_flexsync_hook(
        ddp, strategy=args.strategy, ratio=args.ratio,
        conditions=NetworkConditions(alpha=1e-3, bandwidth=12.5e6))   # for "flexible"
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05)
    data = torch.Generator().manual_seed(100 + rank)          # every rank its own samples
    for step in range(args.steps):
        x = torch.randn(64, 32, generator=data)
        loss = F.mse_loss(ddp(x), x @ w_true)
        opt.zero_grad()
        loss.backward()                   # the hook aggregates each bucket in here
        opt.step()
        if rank == 0 and (step + 1) % max(1, args.steps // 5) == 0:
            print(f"step {step + 1:4d}  loss {loss.item():.4f}  buckets {state.signals()}")
    if rank == 0:
        print(f"final loss {loss.item():.4f}, bytes sent per worker {state.comm.total_bytes}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="artopk", choices=HOOK_STRATEGIES)
    parser.add_argument("--ratio", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=int(os.environ.get("EXAMPLE_STEPS", 100)))
    args = parser.parse_args()
    flexsync.run_local(train, args.workers, (args,))


if __name__ == "__main__":
    main()
