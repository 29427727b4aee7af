"""One worker's sparsifier: a selector, its random generator, the layer sizes it may need
and the error-feedback memory, set up the same way for every sparse strategy and the DDP
hook (GRACE's compressor + memory, without the communicator)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from flexsync.compress.residual import ErrorFeedback
from flexsync.compress.threshold import AdaptiveThreshold
from flexsync.compress.topk import SELECTORS, select
from flexsync.compress.wire import value_dtype
from flexsync.net.cost_model import topk_count


class Sparsifier:
    """Selects entries of an error-fed flat vector and remembers what was not sent.

    Args:
        numel: length of the flat vector.
        selector: one of :data:`~flexsync.compress.topk.SELECTORS`.
        sizes: the layer sizes of the flat vector ("layerwise" selects per layer).
        seed, rank: the generator (random-k, sampled thresholds) is seeded with
            ``seed·7919 + rank``, so ranks draw differently and a run is reproducible.
        generator: share an existing generator instead (the DDP hook uses one across buckets).
        values: the wire coding of sent values, "fp32", "fp16" or "bf16"
            (:mod:`flexsync.compress.wire`; the rounding error stays in the residual).
    """

    def __init__(self, numel: int, selector: str = "adaptive", sizes: Sequence[int] = (),
                 seed: int = 0, rank: int = 0, *, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32,
                 generator: torch.Generator | None = None, values: str = "fp32") -> None:
        if selector not in SELECTORS:
            raise ValueError(f"selector must be one of {SELECTORS}, got {selector!r}")
        self.selector = selector
        value_dtype(values)                      # refuse an unknown coding here
        self.values = values
        self.sizes = list(sizes)
        self.ef = ErrorFeedback(numel, device, dtype)
        self.generator = generator or torch.Generator().manual_seed(seed * 7919 + rank)
        # "adaptive" keeps its threshold (and two work buffers) from step to step.
        self.adaptive = (AdaptiveThreshold(numel, self.generator, device=device, dtype=dtype)
                         if selector == "adaptive" else None)
        self.select_s = 0.0      # CPU seconds spent in select() (a caller may reset it)

    def feed(self, grad: torch.Tensor) -> torch.Tensor:
        """g_ef = g + r."""
        return self.ef.feed(grad)

    def feed_(self, grad: torch.Tensor) -> torch.Tensor:
        """g_ef = g + r in place, in the residual (:meth:`ErrorFeedback.feed_`)."""
        return self.ef.feed_(grad)

    def select(self, fed: torch.Tensor, ratio: float) -> torch.Tensor:
        """Indices to send at keep fraction ``ratio``; adds the call's thread CPU time to
        :attr:`select_s` (the selection cost the ``auto`` strategy weighs against dense)."""
        t0 = time.thread_time()
        if self.adaptive is not None:
            idx = self.adaptive(fed, topk_count(fed.numel(), ratio))
        else:
            idx = select(self.selector, fed, ratio, sizes=self.sizes, generator=self.generator)
        self.select_s += time.thread_time() - t0
        return idx

    def state_dict(self) -> dict[str, Any]:
        out = {"ef": self.ef.state_dict(), "generator": self.generator.get_state()}
        if self.adaptive is not None:
            out["selector"] = self.adaptive.state_dict()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ef.load_state_dict(state["ef"])
        self.generator.set_state(state["generator"])
        if self.adaptive is not None:
            self.adaptive.load_state_dict(state.get("selector", {}))
