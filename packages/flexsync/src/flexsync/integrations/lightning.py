"""PyTorch Lightning: a DDP strategy whose gradient buckets go through flexsync's hook.

    from flexsync.integrations.lightning import FlexsyncDDPStrategy

    trainer = Trainer(accelerator="cpu", devices=2,
                      strategy=FlexsyncDDPStrategy("artopk", ratio=0.01, index="star"))
    trainer.fit(lit_module, loader)
    trainer.strategy.flexsync_state.comm.total_bytes     # what this rank sent

It is Lightning's own ``DDPStrategy`` (process launch, samplers, checkpointing, precision
and everything else unchanged) that, once Lightning has wrapped the module in
``DistributedDataParallel``, registers :func:`flexsync.integrations.ddp_hook.flexsync_hook` on
it, on CPU (gloo) and GPU (NCCL) alike (Lightning's own ``ddp_comm_hook`` argument is applied
on CUDA only). Everything said in :mod:`~flexsync.integrations.ddp_hook` holds: top-k,
AR-Topk or the flexible choice per bucket, error feedback keyed by parameter names, a dense
first step, static ratios, accounting in ``flexsync_state.comm``. The hook state's options
are validated when the strategy is built, before any process starts.

Works with the ``lightning`` package (``lightning.pytorch``) or ``pytorch_lightning``,
whichever is installed (``pip install flexsync[lightning]``); the Trainer must come from the
same one.
"""

from __future__ import annotations

from typing import Any

from flexsync.errors import ConfigError
from flexsync.integrations.ddp_hook import (
    HOOK_STRATEGIES,
    FlexsyncHookState,
    register_flexsync_hook,
)
from flexsync.strategies import validate_options

try:                                   # the unified package first, then the standalone one
    from lightning.pytorch.strategies import DDPStrategy
except ImportError:                    # pragma: no cover - depends on what is installed
    from pytorch_lightning.strategies import DDPStrategy


class FlexsyncDDPStrategy(DDPStrategy):
    """Lightning's DDP strategy with flexsync's compression hook on the gradient buckets.

    Args:
        strategy: "topk", "artopk" or "flexible" (see :data:`HOOK_STRATEGIES`).
        ratio: keep fraction c in (0, 1].
        hook_options: keywords of :class:`~flexsync.integrations.ddp_hook.FlexsyncHookState`
            (``index``, ``selector``, ``conditions``, ``start_iter``, …).
        **ddp_kwargs: Lightning ``DDPStrategy`` arguments (``process_group_backend``,
            ``start_method``, ``timeout``, and DDP's own such as ``bucket_cap_mb``).
    """

    def __init__(self, strategy: str = "topk", ratio: float = 0.01,
                 hook_options: dict[str, Any] | None = None, **ddp_kwargs: Any) -> None:
        hook_options = dict(hook_options or {})
        if strategy not in HOOK_STRATEGIES:
            raise ConfigError(f"strategy must be one of {list(HOOK_STRATEGIES)} for the "
                              f"Lightning DDP hook, got {strategy!r}")
        state_keys = {"conditions", "priced_params", "start_iter", "comm", "process_group"}
        validate_options(strategy, {"ratio": ratio, **{k: v for k, v in hook_options.items()
                                                       if k not in state_keys}})
        super().__init__(**ddp_kwargs)
        self.flexsync_options: dict[str, Any] = {"strategy": strategy, "ratio": ratio,
                                                 **hook_options}
        self.flexsync_state: FlexsyncHookState | None = None

    def _register_ddp_hooks(self) -> None:
        """Called by Lightning right after it wrapped the module in DDP."""
        self.flexsync_state = register_flexsync_hook(self.model, **self.flexsync_options)


__all__ = ["FlexsyncDDPStrategy"]
