"""A DDP communication hook for flexsync's compression strategies.

    ddp = torch.nn.parallel.DistributedDataParallel(model)
    state = register_flexsync_hook(ddp, strategy="artopk", ratio=0.01, index="star")
    for x, y in loader:
        opt.zero_grad()
        loss_fn(ddp(x), y).backward()       # each bucket is compressed and aggregated here
        opt.step()

In the style of PyTorch's ``ddp_comm_hooks``: a plain state object (:class:`FlexsyncHookState`)
and a pure function ``flexsync_hook(state, bucket) -> Future[Tensor]`` that DDP calls for every
gradient bucket, in bucket order, on every rank. Each bucket is error-fed, sparsified and
aggregated exactly as the top-k strategies do it (the shared core
:func:`flexsync.strategies.sparse.aggregate_fed`, so AG top-k, AR-Topk STAR/VAR and the
flexible cost-model choice behave the same as through
:class:`~flexsync.integrations.optimizer.DistributedOptimizer`), but per bucket: top-k is
"fused" within a bucket, and one bucket spanning the whole model (a large ``bucket_cap_mb``)
is the same computation as the strategy on the flattened model.

Tuning and lifecycle notes:

* **Warm-up and bucket rebuild.** DDP rebuilds its buckets after the first iteration (the
  parameter order and the bucket boundaries change), so steps before ``start_iter`` (default
  1, at least 1) use a plain dense allreduce-mean, as PowerSGD's ``start_powerSGD_iter``
  does. Residuals are created from the first compressed step on. With ``static_graph=True``
  DDP records the graph in the first iteration and rebuilds after the second, so
  :func:`register_flexsync_hook` starts compressing at step 2 there.
* **Error feedback** is kept per bucket and keyed by the names of the bucket's parameters
  (stable across steps, processes and checkpoints), not by bucket order or tensor identity.
  :meth:`FlexsyncHookState.state_dict` carries it.
* **Ratio** is static here; ``ratio="moo"`` (the multi-objective controller, which needs
  snapshot/restore of the model and optimizer) is available through the optimizer wrapper.
* **auto** (docs/methods.md §6) runs here without its skip part: a communication hook must
  return every bucket's aggregated gradient, so DDP cannot skip a bucket's communication,
  and SelSync's local steps average parameters after the optimizer step, which no gradient
  hook sees. What remains per bucket and step is the α-β collective (as ``flexible``) and
  the dense switch: the bucket goes dense when ``selection_s`` (default 0: the hook does not
  time its selections) plus the cheapest compressed aggregation is not below a dense ring
  allreduce. ``skip: true`` is refused; use :class:`DistributedOptimizer` for the whole
  strategy.
* **Accounting**: every collective goes through ``state.comm`` (a
  :class:`~flexsync.comm.Communicator`), so ``comm.total_bytes`` and ``comm.take_records()``
  report the hook's traffic.
* **Overlap**: the hook selects, updates the residual and *starts* the bucket's collective
  (``async_op=True``), then returns the collective's future chained with the decoding step
  (``get_future().then(...)``), as PyTorch's own hooks do; DDP waits for all futures at the
  end of backward. So bucket i's communication overlaps the backward of the buckets after it.
  AR-Topk's index broadcast is waited for inside the hook (its values' positions depend on
  it; a collective started from a completion callback could reach the ranks in different
  orders), its values' allreduce overlaps; VAR's score agreement is synchronous too.
"""

# No ``from __future__ import annotations``: DDP checks the hook's annotations at runtime
# (``bucket: dist.GradBucket``, ``-> torch.futures.Future[torch.Tensor]``).
import math
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

from flexsync.comm import Communicator
from flexsync.compress import Sparsifier
from flexsync.errors import ConfigError
from flexsync.net import cost_model
from flexsync.net.conditions import ConditionsSource, FixedConditions, NetworkConditions
from flexsync.strategies import validate_options
from flexsync.strategies.sparse import Aggregate, aggregate_async

HOOK_STRATEGIES = ("topk", "artopk", "flexible", "auto")


class FlexsyncHookState:
    """Everything :func:`flexsync_hook` needs between calls; one per DDP model.

    The strategy options (``ratio``, ``selector``, ``index``, …) are validated by the
    strategy's own options model, exactly as a config file's ``strategy:`` section.

    Args:
        strategy: "topk" (allgather), "artopk" (index broadcast + allreduce), "flexible"
            (per bucket and step, the α-β argmin of ``collectives`` under ``conditions``) or
            "auto" (flexible's choice, and dense when compression does not pay; no skipping).
        ratio: keep fraction c in (0, 1]; k = max(1, ⌊c·n⌋) per bucket of n entries.
        selector: "topk" (exact), "layerwise" (per parameter; allgather only), "randomk" or
            "threshold" (sampled, DGC-style).
        index: AR-Topk's broadcaster, "star" (round-robin) or "var" (largest score).
        var_score: VAR's score, "paper" (‖top-k of g_ef‖²) or "code" (‖g‖ of the raw bucket).
        algo: "ring" or "tree", the allreduce pricing of "artopk" (artopk only).
        collectives: the candidates of "flexible" (flexible only).
        gain_norm: "sq" or "l2", the compression-gain form logged per bucket.
        comm: the accounting communicator (default: a new one on ``process_group``).
        conditions: the network (fixed :class:`NetworkConditions` or any source with
            ``at(step, epoch, time)``); required by "flexible".
        model: names the parameters (residual keys); :func:`register_flexsync_hook` passes
            the DDP module. Without it residuals are keyed by bucket index.
        priced_params: price the whole model as if it had this many parameters (flexible's
            cost model), each bucket by its share.
        start_iter: first compressed step (>= 1); earlier steps are dense.
        seed: seeds the selectors' generator (random-k, thresholds).
        process_group: DDP's process group, for the default ``comm``.
    """

    __slots__ = ("strategy", "opts", "ratio", "candidates", "comm", "conditions",
                 "priced_params", "num_params", "start_iter", "iter", "sparsifiers",
                 "generator", "names", "last_signals")

    def __init__(self, strategy: str = "topk", ratio: float = 0.01, *,
                 comm: Communicator | None = None,
                 conditions: NetworkConditions | ConditionsSource | None = None,
                 model: nn.Module | None = None, priced_params: int | None = None,
                 start_iter: int = 1, process_group: dist.ProcessGroup | None = None,
                 **options: Any) -> None:
        if strategy not in HOOK_STRATEGIES:
            raise ConfigError(f"strategy must be one of {HOOK_STRATEGIES} for the DDP hook, got "
                              f"{strategy!r} (other strategies: use DistributedOptimizer)")
        if strategy == "auto":
            if options.get("skip", False):
                raise ConfigError("the DDP hook cannot skip a bucket's communication: "
                                  "strategy 'auto' runs here with skip: false (SelSync's "
                                  "local steps need DistributedOptimizer)")
            options = {**options, "skip": False}
        opts = validate_options(strategy, {"ratio": ratio, **options})
        if opts.ratio == "moo":
            raise ConfigError("ratio 'moo' is not available in the DDP hook (it restores model "
                              "and optimizer snapshots); use DistributedOptimizer")
        collectives = getattr(opts, "collectives", ())
        if strategy == "flexible" and conditions is None:
            raise ConfigError("strategy 'flexible' needs conditions= (NetworkConditions or a "
                              "conditions source) to choose its collective")
        uses_ar = strategy == "artopk" or {"art_ring", "art_tree"} & set(collectives)
        if opts.selector == "layerwise" and uses_ar:
            raise ConfigError("selector 'layerwise' gives a variable k, which AR-Topk cannot "
                              "share; use topk, randomk or threshold (or strategy 'topk')")
        if isinstance(start_iter, bool) or not isinstance(start_iter, int) or start_iter < 1:
            raise ConfigError(f"start_iter must be an int >= 1 (DDP rebuilds its buckets after "
                              f"the first iteration), got {start_iter!r}")
        if priced_params is not None and (isinstance(priced_params, bool) or priced_params < 1):
            raise ConfigError(f"priced_params must be >= 1, got {priced_params!r}")
        self.strategy, self.opts, self.ratio = strategy, opts, float(opts.ratio)
        self.candidates = tuple(c for c in cost_model.COMPRESSED_COLLECTIVES if c in collectives)
        self.comm = comm or Communicator(process_group)
        self.conditions: ConditionsSource | None = (
            FixedConditions(conditions) if isinstance(conditions, NetworkConditions)
            else conditions)
        self.priced_params = priced_params
        self.names: dict[int, str] = {}
        self.num_params = 0
        if model is not None:
            self.names = {id(p): n for n, p in model.named_parameters() if p.requires_grad}
            self.num_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        self.start_iter = start_iter
        self.iter = 0
        self.sparsifiers: dict[str, Sparsifier] = {}
        self.generator = torch.Generator().manual_seed(opts.seed * 7919 + self.comm.rank)
        self.last_signals: dict[int, dict[str, Any]] = {}

    # -- per bucket -------------------------------------------------------------------------
    def bucket_key(self, bucket: dist.GradBucket) -> str:
        """The residual key: the bucket's parameter names (or its index without a model)."""
        names = [self.names.get(id(p)) for p in bucket.parameters()]
        if self.names and all(n is not None for n in names):
            return ",".join(names)            # type: ignore[arg-type]
        return f"bucket{bucket.index()}"

    def sparsifier(self, key: str, bucket: dist.GradBucket) -> Sparsifier:
        """The bucket's sparsifier (its residual; the selector generator is shared)."""
        buf = bucket.buffer()
        sp = self.sparsifiers.get(key)
        if sp is None:
            sp = self.sparsifiers[key] = Sparsifier(
                buf.numel(), self.opts.selector, [p.numel() for p in bucket.parameters()],
                device=buf.device, dtype=buf.dtype, generator=self.generator,
                values=self.opts.values)
        elif sp.ef.residual.numel() != buf.numel():
            raise RuntimeError(f"bucket {key!r} has {buf.numel()} entries but its residual "
                               f"has {sp.ef.residual.numel()}; was the model changed?")
        return sp

    def collective(self, numel: int, step: int | None = None) -> str:
        """Step ``step``'s (default: the current one's) collective for a bucket of ``numel``
        entries (identical on all ranks: the inputs are the shared step, ratio and
        conditions)."""
        if self.strategy == "topk":
            return "allgather"
        if self.strategy == "artopk":
            return f"art_{self.opts.algo}"
        if self.conditions is None:            # auto without a network: nothing to price
            return self.candidates[0]
        cond = self.conditions.at(self.iter if step is None else step, 0, 0.0)
        priced = numel
        if self.priced_params and self.num_params:
            priced = max(1, math.ceil(self.priced_params * numel / self.num_params))
        choice = cost_model.best_collective(priced, self.ratio, self.comm.world_size,
                                            cond.alpha, cond.beta, self.candidates)
        if self.strategy == "auto" and self.opts.dense_switch:
            compressed = choice.costs[choice.collective] + (self.opts.selection_s or 0.0)
            if compressed >= cost_model.dense_ring(priced, self.comm.world_size, cond.alpha,
                                                   cond.beta):
                return "dense"
        return choice.collective

    # -- reporting and checkpoints ----------------------------------------------------------
    def signals(self) -> dict[int, dict[str, Any]]:
        """The last step's signals per bucket index (collective, ratio, k, gain,
        broadcaster)."""
        return {i: dict(s) for i, s in self.last_signals.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"iter": self.iter, "generator": self.generator.get_state(),
                "residuals": {k: sp.ef.state_dict() for k, sp in self.sparsifiers.items()},
                "sizes": {k: sp.sizes for k, sp in self.sparsifiers.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.iter = int(state["iter"])
        self.generator.set_state(state["generator"])
        self.sparsifiers = {}
        for key, ef_state in state["residuals"].items():
            res = ef_state["residual"]
            sp = Sparsifier(res.numel(), self.opts.selector, state["sizes"][key],
                            device=res.device, dtype=res.dtype, generator=self.generator,
                            values=self.opts.values)
            sp.ef.load_state_dict(ef_state)
            self.sparsifiers[key] = sp


def flexsync_hook(state: FlexsyncHookState, bucket: dist.GradBucket
                  ) -> torch.futures.Future[torch.Tensor]:
    """Aggregate one gradient bucket: dense allreduce-mean before ``state.start_iter``, then
    error-fed top-k through the state's collective. Returns the collective's future (still
    running when the hook returns), which yields the bucket's cluster-mean (sparse) gradient
    that DDP writes into the parameters' ``.grad``."""
    buf = bucket.buffer()
    comm, world, index = state.comm, state.comm.world_size, bucket.index()
    step = state.iter
    if bucket.is_last():
        state.iter += 1
    if step < state.start_iter:
        state.last_signals[index] = {"collective": "dense", "ratio": 1.0, "k": buf.numel()}
        return comm.allreduce_async(buf, tag="gradients").then(lambda f: f.value().div_(world))
    return _compressed(state, bucket, step)


def _compressed(state: FlexsyncHookState, bucket: dist.GradBucket, step: int
                ) -> torch.futures.Future[torch.Tensor]:
    """The hook's compressed path for step ``step``: start the bucket's sparse aggregation
    and chain the decoding into the bucket."""
    buf, world, index = bucket.buffer(), state.comm.world_size, bucket.index()
    o = state.opts
    sp = state.sparsifier(state.bucket_key(bucket), bucket)
    norm = float(buf.norm()) if o.var_score == "code" and o.index == "var" else 0.0
    fed = sp.feed_(buf)                  # into the residual: no bucket-sized allocation
    var_score = None if o.var_score == "paper" else (lambda _idx: norm)
    collective = state.collective(buf.numel(), step)
    ratio = 1.0 if collective == "dense" else state.ratio      # auto's dense switch
    fut = aggregate_async(state.comm, fed, sp, ratio, collective, step=step, index=o.index,
                          var_score=var_score, gain_norm=o.gain_norm, mean_out=buf)

    def finish(f: torch.futures.Future[Aggregate]) -> torch.Tensor:
        res = f.value()
        signals: dict[str, Any] = {"collective": res.collective, "ratio": ratio,
                                   "k": res.k, "gain": float(res.extras["gain"][0]) / world}
        if res.broadcaster is not None:
            signals["broadcaster"] = res.broadcaster
        state.last_signals[index] = signals
        if res.total is buf:             # a sparse step decoded the mean into the bucket
            return buf
        return buf.copy_(res.total).div_(world)          # a dense step summed a copy

    return fut.then(finish)


def register_flexsync_hook(ddp_model: nn.parallel.DistributedDataParallel,
                           strategy: str = "topk", ratio: float = 0.01, *,
                           comm: Communicator | None = None,
                           conditions: NetworkConditions | ConditionsSource | None = None,
                           **options: Any) -> FlexsyncHookState:
    """Build a :class:`FlexsyncHookState` for ``ddp_model`` and register
    :func:`flexsync_hook` on it (once per DDP instance, a PyTorch rule). ``options`` are the
    state's keyword arguments (``index``, ``selector``, ``algo``, ``start_iter``, …).
    Returns the state (signals, accounting, checkpoints)."""
    if not isinstance(ddp_model, nn.parallel.DistributedDataParallel):
        raise TypeError(f"ddp_model must be a torch DistributedDataParallel module, got "
                        f"{type(ddp_model).__name__}")
    state = FlexsyncHookState(strategy, ratio, comm=comm, conditions=conditions,
                              model=ddp_model.module,
                              process_group=getattr(ddp_model, "process_group", None),
                              **options)
    if getattr(ddp_model, "static_graph", False) and "start_iter" not in options:
        state.start_iter = 2        # static graph: buckets are rebuilt after iteration 2
    ddp_model.register_comm_hook(state, flexsync_hook)
    return state


__all__ = ["FlexsyncHookState", "flexsync_hook", "register_flexsync_hook", "HOOK_STRATEGIES"]
