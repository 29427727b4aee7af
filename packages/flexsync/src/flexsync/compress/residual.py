"""Error feedback (docs/methods.md §0.2): what a worker did not send is added to its next
gradient, so compression delays information instead of losing it."""

from __future__ import annotations

import torch


class ErrorFeedback:
    """Residual memory for one flat gradient. Starts at zero (the original code used
    uninitialised memory); invariant after :meth:`absorb`: sent + residual == error-fed."""

    def __init__(self, numel: int, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        self.residual = torch.zeros(numel, device=device, dtype=dtype)

    def feed(self, grad: torch.Tensor) -> torch.Tensor:
        """g_ef = g + r (a new tensor)."""
        return grad + self.residual

    def feed_(self, grad: torch.Tensor) -> torch.Tensor:
        """g_ef = g + r computed *into the residual*, which is returned: no allocation and
        no copy-back in :meth:`absorb` (``residual.copy_(fed)`` is then a no-op). The DDP
        hook's per-bucket path, where a fresh gradient-sized tensor per call (and its page
        faults) was a large part of the hook's cost. The returned tensor is the residual:
        read the values to send before :meth:`absorb` rewrites it."""
        return self.residual.add_(grad)

    def absorb(self, fed: torch.Tensor, sent_indices: torch.Tensor,
               sent_values: torch.Tensor | None = None) -> None:
        """r ← g_ef with what was sent removed: the sent positions zeroed, or, when the
        values went out rounded (fp16/bf16 on the wire, :mod:`flexsync.compress.wire`),
        left holding the rounding error ``fed[i] − sent_values`` (``sent_values`` in
        ``sent_indices``' order), so nothing is lost over steps."""
        self.residual.copy_(fed)
        if sent_values is None:
            self.residual[sent_indices] = 0
        else:
            self.residual[sent_indices] = fed[sent_indices] - sent_values

    def reset(self) -> None:
        """A dense step sends everything: the residual becomes zero."""
        self.residual.zero_()

    def state_dict(self) -> dict:
        return {"residual": self.residual.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.residual.copy_(state["residual"])
