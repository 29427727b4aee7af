"""Move gradients between parameters and one flat vector, so a step needs one collective."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def flatten_grads(params: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate every parameter's gradient (zeros where a parameter got none)."""
    return torch.cat([
        (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params
    ])


def assign_grads(params: Sequence[torch.Tensor], flat: torch.Tensor) -> None:
    """Write slices of ``flat`` back as each parameter's gradient."""
    chunks = torch.split(flat, [p.numel() for p in params])
    for p, g in zip(params, chunks, strict=True):
        g = g.view_as(p)
        if p.grad is None:
            p.grad = g.clone()
        else:
            p.grad.copy_(g)


def flatten_params(params: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in params])


def assign_params(params: Sequence[torch.Tensor], flat: torch.Tensor) -> None:
    chunks = torch.split(flat, [p.numel() for p in params])
    with torch.no_grad():
        torch._foreach_copy_(list(params), [c.view_as(p) for p, c in zip(params, chunks,
                                                                          strict=True)])
