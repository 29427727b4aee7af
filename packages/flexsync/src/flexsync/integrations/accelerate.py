"""Hugging Face Accelerate: compress the gradients of the DDP model ``accelerator.prepare`` made.

    accelerator = Accelerator()
    model, opt, loader = accelerator.prepare(model, opt, loader)
    state = register_accelerate_hook(accelerator, model, strategy="artopk", ratio=0.01)
    for x, y in loader:
        opt.zero_grad()
        accelerator.backward(loss_fn(model(x), y))     # buckets compressed here
        opt.step()

With several processes (``accelerate launch`` or ``torchrun``; CPU or GPU) Accelerate wraps the
model in ``DistributedDataParallel``, and this registers :func:`flexsync.integrations.ddp_hook.
flexsync_hook` on that wrapper: everything said there (dense first step, error feedback keyed by
parameter names, static ratio, accounting in ``state.comm``) holds. With one process there is
nothing to communicate and it returns None. Accelerate itself is not a dependency of flexsync:
this module only reads the accelerator's attributes.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from flexsync.integrations.ddp_hook import FlexsyncHookState, register_flexsync_hook


def register_accelerate_hook(accelerator: Any, model: nn.Module, strategy: str = "topk",
                             ratio: float = 0.01, **options: Any) -> FlexsyncHookState | None:
    """Register the flexsync DDP hook on ``model`` as returned by ``accelerator.prepare``.

    ``options`` are :class:`~flexsync.integrations.ddp_hook.FlexsyncHookState` keywords
    (``index``, ``selector``, ``conditions``, ``start_iter``, …). Returns the hook state, or
    None when the accelerator runs a single process."""
    if getattr(accelerator, "num_processes", 1) == 1:
        return None
    if not isinstance(model, nn.parallel.DistributedDataParallel):
        kind = getattr(accelerator, "distributed_type", "unknown")
        raise TypeError(f"model must be the DistributedDataParallel module returned by "
                        f"accelerator.prepare (got {type(model).__name__}; Accelerate "
                        f"distributed_type {kind}): pass the prepared model, and use a "
                        "plain multi-process setup (not FSDP or DeepSpeed)")
    return register_flexsync_hook(model, strategy, ratio, **options)


__all__ = ["register_accelerate_hook"]
