"""Compress Hugging Face Accelerate training: flexsync's hook on the DDP model it prepares.

Run with several processes (CPU shown; drop ``--cpu`` on GPUs)::

    torchrun --standalone --nproc_per_node=2 examples/accelerate_hook.py
    accelerate launch --cpu --num_processes 2 examples/accelerate_hook.py --strategy topk

The first step is dense (DDP rebuilds its buckets after it); then every gradient bucket is
error-fed, sparsified and aggregated by the chosen strategy. At the end the ranks check that
their weights are identical.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from accelerate import Accelerator

from flexsync.integrations.accelerate import register_accelerate_hook
from flexsync.integrations.ddp_hook import HOOK_STRATEGIES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="artopk", choices=HOOK_STRATEGIES)
    parser.add_argument("--ratio", type=float, default=0.05)
    parser.add_argument("--steps", type=int, default=int(os.environ.get("EXAMPLE_STEPS", 100)))
    args = parser.parse_args()

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    g = torch.Generator().manual_seed(0)
    w_true = torch.randn(32, 1, generator=g)
    torch.manual_seed(0)                                     # same initial weights everywhere
    model = nn.Sequential(nn.Linear(32, 128), nn.Tanh(), nn.Linear(128, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    model, opt = accelerator.prepare(model, opt)
    state = register_accelerate_hook(accelerator, model, strategy=args.strategy,
                                     ratio=args.ratio)
    data = torch.Generator().manual_seed(100 + accelerator.process_index)
    for step in range(args.steps):
        x = torch.randn(64, 32, generator=data).to(accelerator.device)
        loss = F.mse_loss(model(x), x.cpu().matmul(w_true).to(accelerator.device))
        opt.zero_grad()
        accelerator.backward(loss)
        opt.step()
        if accelerator.is_main_process and (step + 1) % max(1, args.steps // 5) == 0:
            print(f"step {step + 1:4d}  loss {loss.item():.4f}")
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    spread = accelerator.reduce(flat, "max") - accelerator.reduce(flat, "mean")
    sent = state.comm.total_bytes if state is not None else 0
    if accelerator.is_main_process:
        print(f"final loss {loss.item():.4f}, bytes sent per worker {sent}, "
              f"replicas identical: {bool(spread.abs().max() == 0)}")
    # the DDP wrapper holds the process group: release it (and Accelerate's own references)
    # before the group is destroyed, or its threads can abort the process at exit
    del model, opt, state
    accelerator.free_memory()
    accelerator.wait_for_everyone()
    accelerator.end_training()


if __name__ == "__main__":
    main()
