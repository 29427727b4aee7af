"""What the recipe examples share: their toy data, the replica check, and the launch that
works both as a plain script (forked gloo workers) and under torchrun. Each example imports it
from this folder; copy it along with an example you take elsewhere."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.nn as nn

import flexsync


def make_data(n: int = 512, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A small separable 4-class problem (the same on every rank)."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(4, 16, generator=g) * 2
    y = torch.randint(4, (n,), generator=g)
    return centers[y] + torch.randn(n, 16, generator=g), y


def replicas_identical(model: nn.Module) -> bool:
    """True on every rank iff every rank holds rank 0's parameters bit for bit."""
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    ref = flat.clone()
    dist.broadcast(ref, 0)
    same = torch.tensor([float(torch.equal(flat, ref))])
    dist.all_reduce(same, op=dist.ReduceOp.MIN)
    return bool(same.item())


def launch(train: Callable[[argparse.Namespace], object], args: argparse.Namespace) -> None:
    """Run ``train(args)`` on this rank under torchrun, else fork ``args.workers`` workers."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:       # started by torchrun
        dist.init_process_group("gloo")
        try:
            train(args)
        finally:
            dist.destroy_process_group()
    else:
        flexsync.run_local(train, args.workers, (args,))
