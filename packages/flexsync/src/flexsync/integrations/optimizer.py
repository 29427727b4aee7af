"""The optimizer-wrapper API: use any flexsync strategy from your own training loop.

    dist.init_process_group("gloo")           # or run under torchrun
    opt = DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.01), model,
                               strategy="dense")
    for x, y in my_loader:
        opt.zero_grad()
        loss_fn(opt.model(x), y).backward()    # opt.model is the model (DDP-wrapped for "ddp")
        opt.step()                             # aggregates across workers, then steps

Like Horovod's ``DistributedOptimizer``: the wrapped optimizer's ``step`` becomes the
strategy's step. Parameters are broadcast from rank 0 at construction, so every worker starts
from the same model. The wrapper *is* a :class:`torch.optim.Optimizer` sharing the wrapped
one's ``param_groups``, ``state`` and ``defaults``, so learning-rate schedulers, GradScaler,
``state_dict``/``load_state_dict`` and ``zero_grad(set_to_none=...)`` work on it as on the
optimizer it wraps.

Recipes (each one runs in ``examples/``: ``clipping.py``, ``amp.py``, ``accumulation.py``,
``lr_scheduler.py``):

* **Clipping the combined gradient** (Horovod's pattern)::

      loss.backward()
      opt.synchronize()                                   # aggregate now
      torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
      with opt.skip_synchronize():
          opt.step()                                      # update only

* **AMP** with :class:`torch.amp.GradScaler`: ``scaler.scale(loss).backward();
  scaler.step(opt); scaler.update()`` as in plain torch. The wrapper unscales each rank's
  gradients before aggregating and skips a step on every rank when any rank's gradients hold
  an inf or NaN. With clipping: ``scaler.unscale_(opt); opt.synchronize(); clip…;
  with opt.skip_synchronize(): scaler.step(opt)``, then ``scaler.update()``.
* **Gradient accumulation**: call ``backward()`` on N micro-batches (each loss divided by N),
  then ``step()`` once: the accumulated gradient is aggregated once. Pass
  ``backward_passes_per_step=N`` with ``strategy="ddp"`` so DDP skips its allreduce on the
  first N−1 backward passes.
* **Schedulers**: ``torch.optim.lr_scheduler.StepLR(opt, ...)`` and the rest take the wrapper.
* **Overlap** (``strategy="dense"``, ``overlap=True`` by default; :mod:`.overlap`): from the
  second step on, gradient buckets are allreduced from backward hooks as they become ready,
  as torch DDP does; the number of backward passes per step (accumulation) is learnt from the
  previous step. Changing a gradient between ``backward()`` and ``step()`` (clipping before
  ``synchronize()``) makes that step re-aggregate after backward: the result is the same, the
  bytes are sent twice. Under a GradScaler the wrapper stops overlapping at the first step it
  is stepped by one (``unscale_`` changes gradients invisibly, and ranks' scales may differ).

Every registered strategy works through it. Strategy options are validated by the options
model declared beside each strategy, the same one a config file's ``strategy:`` section goes
through (so ``strategy="topk", ratio=0.01`` means exactly what
``strategy: {name: topk, ratio: 0.01}`` means in ``flexsync run``), and a bad value raises
:class:`~flexsync.errors.ConfigError` naming the option and its allowed values. At
construction the ranks check that they built the same model, optimizer and strategy
(:mod:`flexsync.integrations.consistency`); a difference fails on every rank at once,
naming the rank. What some strategies need beyond gradients:

* ``flexible`` chooses its collective from the network: pass ``conditions`` (a
  :class:`~flexsync.net.conditions.NetworkConditions`, e.g.
  ``NetworkConditions.parse(alpha="1ms", bandwidth="100mbit")``, a conditions source, or
  ``"measure"`` for a live α-β estimate from the run's own collectives).
* ``fedavg`` with a period in epochs needs ``steps_per_epoch``.
* ``scadles`` weights every worker by its batch: pass ``batch_size`` (here, or per step to
  :meth:`DistributedOptimizer.step` when it varies; to :meth:`~DistributedOptimizer.synchronize`
  when the step is split).
* ``gravac``'s throughput table needs each step's duration: the wrapper measures the wall
  time between consecutive ``step()`` calls and agrees on the slowest rank's.
* ``ddp`` aggregates inside ``backward()``: run the forward pass through ``opt.model``.
* ``auto`` (docs/methods.md §6) prices its collective and its dense switch with
  ``conditions`` (``"measure"`` for the live α-β estimate); without them it sends allgather
  at its ratio and never switches to dense. It is a SelSync: the bullet below applies to it
  (with ``skip=False`` it aggregates gradients every step, still inside ``step()``).
* ``selsync``, ``fedavg`` and ``localsgd`` keep replicas apart between syncs: evaluate inside
  ``with opt.evaluation():`` to see the replicas' mean, and call :meth:`sync` to make the
  replicas equal (before saving or deploying). Their gradients stay local (they average
  parameters, not gradients), so ``synchronize()`` only agrees on skipping the step and
  clipping clips each rank's own gradient.

Per step the wrapper runs one small unaccounted allgather (:mod:`.agreement`): whether any
rank's gradients are non-finite, which parameters got a gradient on some rank (a parameter no
rank used keeps ``grad=None`` and is left alone by the optimizer, as torch does), GraVAC's
step time and the live α-β fits.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, Literal

import torch
import torch.distributed as dist
import torch.nn as nn

from flexsync.comm import Communicator
from flexsync.errors import ConfigError
from flexsync.integrations.agreement import StepAgreement, agree_step
from flexsync.integrations.consistency import check_ranks_agree, model_sections
from flexsync.integrations.deferred import StepGate
from flexsync.integrations.overlap import DenseOverlap
from flexsync.net.conditions import ConditionsSource, FixedConditions, NetworkConditions
from flexsync.net.estimate import AlphaBetaEstimator, MeasuredConditions
from flexsync.strategies import ContextBuilder, Strategy, build_strategy, validate_options
from flexsync.strategies.dense import Dense
from flexsync.strategies.local import LocalUpdateStrategy

NONFINITE_POLICIES = ("stop", "skip")
#: Where ``conditions="measure"`` starts until the first fit: 1 ms, 1 Gbit/s.
MEASURE_START = NetworkConditions(1e-3, 1.25e8)
_SINKS: list[Any] = []      # writers every wrapper in this process logs to (:func:`log_to`)


def _positive_int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be an int >= 1, got {value!r}")
    return value


def conditions_source(conditions: Any) -> ConditionsSource | None:
    """Accept what ``conditions=`` may be: None, a :class:`NetworkConditions`, a mapping
    ``{"alpha": "1ms", "bandwidth": "100mbit"}``, ``"measure"`` or a conditions source (an
    object with ``at(step, epoch, time_s)``)."""
    if conditions is None or (hasattr(conditions, "at") and callable(conditions.at)):
        return conditions
    if isinstance(conditions, NetworkConditions):
        return FixedConditions(conditions)
    if conditions == "measure":
        return MeasuredConditions(MEASURE_START)
    if isinstance(conditions, dict):
        if set(conditions) != {"alpha", "bandwidth"}:
            raise ConfigError(f"conditions: a mapping needs exactly the keys 'alpha' and "
                              f"'bandwidth', got {sorted(conditions)}")
        return FixedConditions(NetworkConditions.parse(**conditions))
    raise ConfigError(f"conditions must be a NetworkConditions (e.g. NetworkConditions.parse("
                      f"alpha='1ms', bandwidth='100mbit')), a mapping with alpha and bandwidth, "
                      f"'measure', or a conditions source with .at(step, epoch, time_s); got "
                      f"{conditions!r}")


def log_to(writer: Any, every: int = 1) -> None:
    """Make every :class:`DistributedOptimizer` in this process log its steps to ``writer``
    (anything with ``add_scalar(tag, value, step)``, e.g.
    ``torch.utils.tensorboard.SummaryWriter``): bytes sent, the strategy's signals (ratio,
    collective, gain, …), α and bandwidth in force, and the time split between aggregation
    and the rest of the step. ``log_to(None)`` stops. Typically called on rank 0 only."""
    _SINKS.clear()
    if writer is not None:
        _SINKS.append((writer, _positive_int(every, "every")))


def step_scalars(row: dict[str, Any]) -> dict[str, float]:
    """The numeric entries of a step's row (what a scalar logger can plot); strings and
    lists are left out, booleans become 0/1."""
    out = {}
    for k, v in row.items():
        if isinstance(v, bool):
            out[k] = float(v)
        elif isinstance(v, int | float) and math.isfinite(v):
            out[k] = float(v)
    return out


class DistributedOptimizer(torch.optim.Optimizer):
    """Wrap ``optimizer`` (over ``model``'s parameters) so that :meth:`step` aggregates the
    gradients across workers with ``strategy`` and then steps.

    Args:
        optimizer: a torch optimizer over (a subset of) ``model``'s parameters.
        model: the local replica; rank 0's parameters and buffers are broadcast to all.
        strategy: a registered strategy name (see :data:`flexsync.STRATEGIES`) or a
            constructed :class:`~flexsync.strategies.Strategy` built over ``optimizer``.
        comm: the accounting communicator (default: one on the default process group).
        conditions: the network the cost models price (``flexible`` needs it): a
            :class:`NetworkConditions`, ``{"alpha": "1ms", "bandwidth": "100mbit"}``,
            ``"measure"`` (live α-β estimate, starting from 1 ms / 1 Gbit/s) or a source.
        steps_per_epoch: for periods given in epochs (``fedavg``) and the epoch counter.
        batch_size: samples this rank trains on per step (``scadles``, ``gravac``); a
            per-step value can be passed to :meth:`step`.
        backward_passes_per_step: backward passes accumulated between ``step()`` calls
            (Horovod's name); with ``ddp`` the first N−1 skip DDP's allreduce.
        on_nonfinite: "stop" (raise ``FloatingPointError`` on every rank) or "skip" (skip
            the step on every rank) when some rank's gradients are not finite outside a
            GradScaler; under a GradScaler such steps are always skipped, as AMP expects.
        overlap: with ``strategy="dense"``, allreduce gradient buckets from backward hooks
            as they become ready, as torch DDP does (:mod:`.overlap`; from the second step:
            the first learns the order); the result is the non-overlapped one. Ignored by
            the other strategies. The hooks fire in every backward pass of the model, so
            build one overlapped wrapper per model (or pass False to the others).
        overlap_bucket_mb: the overlapped path's bucket cap in MB (DDP's ``bucket_cap_mb``).
        **strategy_options: the strategy's options (its config section's keys).
    """

    # GradScaler then calls step() on every rank (never skipping one rank alone) and hands
    # over grad_scale and found_inf, which step() honours (see _amp_scale).
    _step_supports_amp_scaling = True

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        model: nn.Module,
        strategy: str | Strategy = "dense",
        comm: Communicator | None = None,
        conditions: NetworkConditions | ConditionsSource | str | dict | None = None,
        steps_per_epoch: int | None = None,
        batch_size: int | None = None,
        backward_passes_per_step: int = 1,
        on_nonfinite: Literal["stop", "skip"] = "stop",
        overlap: bool = True,
        overlap_bucket_mb: float = 25.0,
        **strategy_options: Any,
    ) -> None:
        _check_types(optimizer, model, strategy, strategy_options)
        error: ConfigError | None = None
        try:
            described = self._configure(strategy, conditions, steps_per_epoch, batch_size,
                                        backward_passes_per_step, on_nonfinite,
                                        strategy_options)
            described["wrapper"]["overlap"] = _overlap_options(overlap, overlap_bucket_mb)
        except ConfigError as e:
            if comm is None and not (dist.is_available() and dist.is_initialized()):
                raise                     # no peers to tell: fail here, before communicating
            error, described = e, {"strategy": None, "wrapper": None}
        self.optimizer = optimizer
        self.comm = comm or Communicator()
        check_ranks_agree(self.comm, {**model_sections(model, optimizer), **described},
                          None if error is None else str(error))
        self._init_optimizer_bookkeeping()
        for t in list(model.parameters()) + list(model.buffers()):
            self.comm.broadcast(t.data, 0, accounted=False)
        if isinstance(strategy, Strategy):
            self.strategy = strategy
        else:
            buffers = [b for b in model.buffers() if b.is_floating_point()]
            self.strategy = build_strategy(strategy, model.parameters(), optimizer, self.comm,
                                           buffers=buffers, **strategy_options)
        self._gate = StepGate(optimizer, self._leave_unused_alone)
        self.strategy.optimizer = self._gate                  # type: ignore[assignment]
        self._local_updates = isinstance(self.strategy, LocalUpdateStrategy)
        self._overlap = (DenseOverlap(self.strategy.params, self.comm, overlap_bucket_mb,
                                      self.strategy.opts.algo)
                         if overlap and type(self.strategy) is Dense and self.comm.world_size > 1
                         else None)
        self._scaler_seen = False        # a GradScaler steps this wrapper: stop overlapping
        self.contexts = ContextBuilder(self.conditions, self.steps_per_epoch)
        self.estimator = (AlphaBetaEstimator(self.comm.world_size)
                          if isinstance(self.conditions, MeasuredConditions) else None)
        self.module = model
        self.model = self.strategy.wrap_model(model)     # what forward must run through
        if self.model is not model:
            self.model.register_forward_pre_hook(self._count_forward)
        self._init_step_state()

    # -- construction -------------------------------------------------------------------
    def _configure(self, strategy: str | Strategy, conditions: Any, steps_per_epoch: Any,
                   batch_size: Any, backward_passes_per_step: Any, on_nonfinite: Any,
                   strategy_options: dict[str, Any]) -> dict[str, Any]:
        """Validate the arguments (no communication); returns what the ranks must agree on."""
        self.steps_per_epoch = _positive_int(steps_per_epoch, "steps_per_epoch")
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.backward_passes_per_step = _positive_int(backward_passes_per_step,
                                                      "backward_passes_per_step") or 1
        if on_nonfinite not in NONFINITE_POLICIES:
            raise ConfigError(f"on_nonfinite must be one of {list(NONFINITE_POLICIES)}, got "
                              f"{on_nonfinite!r}")
        self.on_nonfinite = on_nonfinite
        self.conditions = conditions_source(conditions)
        if isinstance(strategy, Strategy):
            name, options = strategy.name, strategy.opts
        else:
            name, options = strategy, validate_options(strategy, strategy_options)
            self._check_needs(strategy, options, self.conditions, self.steps_per_epoch)
        return {"strategy": {"name": name, "options": options.model_dump(mode="json")},
                "wrapper": {"steps_per_epoch": self.steps_per_epoch,
                            "backward_passes_per_step": self.backward_passes_per_step,
                            "on_nonfinite": on_nonfinite,
                            "conditions": type(self.conditions).__name__}}

    @staticmethod
    def _check_needs(name: str, options: Any, conditions: ConditionsSource | None,
                     steps_per_epoch: int | None) -> None:
        """Refuse now what the strategy would otherwise fail on at its first step."""
        if name == "flexible" and conditions is None:
            raise ConfigError("strategy 'flexible' needs conditions= (NetworkConditions or a "
                              "conditions source): it picks its collective from the network")
        if name == "fedavg" and options.period_epochs is not None and steps_per_epoch is None:
            raise ConfigError("strategy 'fedavg' with period_epochs needs steps_per_epoch= "
                              "(or give period_steps instead)")

    def _init_optimizer_bookkeeping(self) -> None:
        """What :class:`torch.optim.Optimizer` sets up, minus its own parameter groups: the
        groups, state and defaults are the wrapped optimizer's (properties below)."""
        for hooks in ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks",
                      "_optimizer_state_dict_pre_hooks", "_optimizer_state_dict_post_hooks",
                      "_optimizer_load_state_dict_pre_hooks",
                      "_optimizer_load_state_dict_post_hooks"):
            setattr(self, hooks, OrderedDict())
        self._patch_step_function()       # step hooks and profiler labels, as torch does

    def _init_step_state(self) -> None:
        self._forwards = 0
        self._timed = self.strategy.name == "gravac"
        self._last_start: float | None = None
        self._agreed: StepAgreement | None = None     # set by synchronize(), used by step()
        self._current: StepAgreement | None = None    # the step being applied
        self._step_batch: int | None = None
        self._aggregate_s = 0.0
        self._skipping_sync = False
        self._writers: list[tuple[Any, int]] = []
        self.num_steps = 0
        self.skipped_steps = 0
        self.last_records: list[Any] = []    # the last step's accounted collectives

    def _count_forward(self, module: nn.Module, args: Any) -> None:
        if not torch.is_grad_enabled():          # an evaluation forward: no backward follows
            return
        self._forwards += 1
        if self.backward_passes_per_step > 1 and hasattr(module, "require_backward_grad_sync"):
            # DDP's no_sync(), decided per forward: only the step's last pass allreduces.
            module.require_backward_grad_sync = self._forwards % self.backward_passes_per_step == 0

    # -- torch.optim.Optimizer surface ----------------------------------------------------
    @property
    def param_groups(self) -> list[dict[str, Any]]:               # type: ignore[override]
        return self.optimizer.param_groups

    @param_groups.setter
    def param_groups(self, groups: list[dict[str, Any]]) -> None:
        self.optimizer.param_groups = groups

    @property
    def state(self) -> Any:                                        # type: ignore[override]
        return self.optimizer.state

    @state.setter
    def state(self, state: Any) -> None:
        self.optimizer.state = state

    @property
    def defaults(self) -> dict[str, Any]:                          # type: ignore[override]
        return self.optimizer.defaults

    @defaults.setter
    def defaults(self, defaults: dict[str, Any]) -> None:
        self.optimizer.defaults = defaults

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group to the wrapped optimizer. Its parameters must be among those the
        strategy aggregates (the model's trainable parameters at construction)."""
        params = param_group["params"]
        params = [params] if torch.is_tensor(params) else list(params)
        known = {id(p) for p in self.strategy.params}
        foreign = [i for i, p in enumerate(params) if id(p) not in known]
        if foreign:
            raise ValueError(f"add_param_group: parameters at positions {foreign} are not "
                             "among the model's trainable parameters at construction; their "
                             "gradients would never be aggregated (build the wrapper with "
                             "them requiring grad)")
        self.optimizer.add_param_group({**param_group, "params": params})

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:                        # type: ignore[override]
        """The wrapped optimizer's state dict (torch's format, loadable into a plain
        optimizer) with the strategy's state and step count under ``"flexsync"``."""
        return {**self.optimizer.state_dict(),
                "flexsync": {"strategy": self.strategy.state_dict(),
                             "num_steps": self.num_steps}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load :meth:`state_dict`'s output, a plain optimizer's state dict (the strategy's
        state is then left as it is), or the older ``{"optimizer", "strategy",
        "num_steps"}`` layout."""
        if "optimizer" in state_dict and "strategy" in state_dict:       # older layout
            state_dict = {**state_dict["optimizer"],
                          "flexsync": {"strategy": state_dict["strategy"],
                                       "num_steps": state_dict["num_steps"]}}
        own = state_dict.get("flexsync")
        self.optimizer.load_state_dict({k: v for k, v in state_dict.items() if k != "flexsync"})
        if own is not None:
            self.strategy.load_state_dict(own["strategy"])
            self.num_steps = int(own["num_steps"])

    # -- the step -------------------------------------------------------------------------
    def synchronize(self, batch_size: int | None = None) -> None:
        """Aggregate this step's gradients across workers now; the next :meth:`step` only
        updates. In between, ``p.grad`` holds the combined gradient (for strategies that
        aggregate gradients), ready to unscale or clip. Every rank must call it.
        ``batch_size`` overrides the constructor's for this step (give it here, not to the
        ``step()`` that follows: ScaDLES weights the aggregation by it)."""
        if batch_size is not None:
            self._step_batch = _positive_int(batch_size, "batch_size")
        if self._agreed is not None:
            raise RuntimeError("synchronize() was already called for this step; call step() "
                               "before synchronizing again")
        if self.model is not self.module and self._forwards == 0:
            raise RuntimeError(f"strategy {self.strategy.name!r} aggregates inside backward(): "
                               "run the forward pass through opt.model, not the bare model")
        started = time.perf_counter()
        if self._overlap is not None and self._overlap.active:
            self._agreed = self._synchronize_overlapped()
        else:
            self._agreed = agreed = self._agree(overlap=2 * self._scaler_seen)
            if agreed.nonfinite_ranks:
                self._mark_nonfinite()            # so a GradScaler finds the inf on every rank
            elif not self._local_updates:
                self._aggregate_now(agreed)
            if self._overlap is not None:
                self._overlap.end_step(build=True)     # the learning step: cut the buckets
                self._stop_overlap(agreed)
        self._aggregate_s = time.perf_counter() - started

    def _stop_overlap(self, agreed: StepAgreement) -> None:
        """Leave the overlapped path for good when some rank asked to (it runs under a
        GradScaler); every rank sees the same agreement, so every rank stops here."""
        if agreed.overlap >= 2 and self._overlap is not None:
            self._overlap.close()
            self._overlap = None

    def _aggregate_now(self, agreed: StepAgreement) -> None:
        """The strategy's step on the gradients as they are now (its optimizer step
        recorded by the gate, performed in :meth:`step`)."""
        self._gate.begin()
        try:
            self.strategy.step(self._context(agreed))
        finally:
            self._gate.end()

    def _synchronize_overlapped(self) -> StepAgreement:
        """The dense path whose buckets were sent from backward (:mod:`.overlap`): start the
        rest, wait, agree, then use the means, or, when some rank's buckets went stale,
        aggregate the gradients as they are now. A rank looks for non-finite gradients only
        when a mean is not finite (the means are identical on every rank) or its own
        gradients changed since they were sent: otherwise they are what it sent, and the
        finite means say they are finite."""
        ov = self._overlap
        assert ov is not None
        ov.launch_rest()
        finite = ov.wait()
        state = 2 if self._scaler_seen else int(ov.stale)
        agreed = self._agree(overlap=state, check_nonfinite=ov.stale or not finite)
        if agreed.nonfinite_ranks:
            self._mark_nonfinite()
        elif agreed.overlap or not finite:
            ov.stale_steps += 1
            self._aggregate_now(agreed)
        else:
            ov.write_grads()
            ov.overlapped_steps += 1
            self._gate.begin()
            try:
                self.strategy.step_averaged(self._context(agreed),  # type: ignore[attr-defined]
                                            len(ov.buckets or ()))
            finally:
                self._gate.end()
        ov.end_step(build=False)
        self._stop_overlap(agreed)
        return agreed

    def step(self, closure: Callable[[], Any] | None = None, *,
             batch_size: int | None = None) -> Any:
        """Aggregate (unless :meth:`synchronize` already did) and update the parameters.
        ``closure`` (re-evaluates the loss) is called once, before aggregating;
        ``batch_size`` overrides the constructor's for this step. Returns the closure's loss."""
        loss = None
        if getattr(self, "found_inf", None) is not None:      # GradScaler.step called us
            self._scaler_seen = True
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if batch_size is not None:
            batch_size = _positive_int(batch_size, "batch_size")
            if self._agreed is not None and batch_size != self._step_batch:
                raise ValueError("batch_size came after synchronize(), which already "
                                 "aggregated: pass it to synchronize(batch_size=...)")
            self._step_batch = batch_size
        self._amp_unscale()
        if self._agreed is None:
            if self._skipping_sync:
                raise RuntimeError("inside skip_synchronize(), call opt.synchronize() before "
                                   "step(): the gradients were never aggregated")
            self.synchronize()
        agreed, self._agreed = self._agreed, None
        self._current = agreed
        t0 = time.perf_counter()
        if self._should_skip(agreed):
            self._gate.discard()
            self.skipped_steps += 1
        elif self._local_updates:
            self.strategy.step(self._context(agreed))
        else:
            self._gate.apply()
        self._aggregate_s += time.perf_counter() - t0
        self._forwards = 0
        self._step_batch = None
        self.num_steps += 1
        self._log_step(agreed)
        return loss

    @contextlib.contextmanager
    def skip_synchronize(self) -> Iterator[None]:
        """Inside this block :meth:`step` requires a prior :meth:`synchronize` and only
        updates (Horovod's ``skip_synchronize``; ``scaler.step(opt)`` goes inside it)."""
        self._skipping_sync = True
        try:
            yield
        finally:
            self._skipping_sync = False

    def _agree(self, overlap: int = 0, check_nonfinite: bool = True) -> StepAgreement:
        """This step's agreed view (:mod:`.agreement`); feeds the live α-β estimate.
        ``check_nonfinite=False`` skips the pass over this rank's gradients (the overlapped
        path already knows every mean is finite)."""
        grads = [p.grad for p in self.strategy.params]
        present = [g for g in grads if g is not None]
        nonfinite = check_nonfinite and bool(present) and not bool(
            torch.stack(torch._foreach_norm(present)).isfinite().all())
        fit = None
        timings = self.comm.take_timings()    # taken every step: keeps the list bounded
        if self.estimator is not None:
            if self.num_steps > 0:            # the first step also pays connection set-up
                self.estimator.observe_many(timings)
            prior = (1.0 / self.conditions.current.bandwidth
                     if isinstance(self.conditions, MeasuredConditions) else None)
            fit = self.estimator.fit(prior)
        agreed = agree_step(self.comm, nonfinite, [g is not None for g in grads],
                            self._own_step_time(), fit, overlap)
        if agreed.fit is not None and isinstance(self.conditions, MeasuredConditions):
            self.conditions.update(*agreed.fit)
        return agreed

    def _own_step_time(self) -> float | None:
        """The previous step's duration on this rank (its ``step()`` call to this one:
        compute and aggregation), for GraVAC; the ranks agree on the slowest."""
        now = time.perf_counter()
        last, self._last_start = self._last_start, now
        return None if not self._timed or last is None else now - last

    def _context(self, agreed: StepAgreement) -> Any:
        batch = self._step_batch or self.batch_size
        return self.contexts.context(self.num_steps, prev_step_s=agreed.step_s,
                                     batch_size=batch)

    def _leave_unused_alone(self) -> None:
        """Right before the optimizer steps: a parameter no rank produced a gradient for
        gets ``grad=None`` back (aggregation filled in zeros), so the optimizer skips it."""
        for p, used in zip(self.strategy.params, self._current.used, strict=True):
            if not used:
                p.grad = None

    def _mark_nonfinite(self) -> None:
        """Put an inf into this rank's gradients, so that a GradScaler's check (which runs
        on this rank only) sees the non-finite step every rank agreed on."""
        p = next(p for g in self.optimizer.param_groups for p in g["params"])
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        p.grad[(0,) * p.grad.dim()] = float("inf")     # any layout (channels_last too)

    def _amp_unscale(self) -> None:
        """Under ``scaler.step(opt)`` without a prior ``scaler.unscale_(opt)``, GradScaler
        hands over ``grad_scale`` and expects the optimizer to unscale; do it now, on this
        rank's gradients, before they are aggregated (or on the combined ones after
        :meth:`synchronize`)."""
        scale = getattr(self, "grad_scale", None)
        if scale is None:
            return
        inv = scale.double().reciprocal().float()
        grads = [p.grad for g in self.optimizer.param_groups for p in g["params"]
                 if p.grad is not None]
        if grads:
            torch._foreach_mul_(grads, inv.to(grads[0].device))
        self.grad_scale = None

    def _should_skip(self, agreed: StepAgreement) -> bool:
        found_inf = getattr(self, "found_inf", None)          # set while GradScaler steps us
        if found_inf is not None:
            return bool(agreed.nonfinite_ranks) or float(found_inf) > 0
        if not agreed.nonfinite_ranks:
            return False
        if self.on_nonfinite == "stop":
            self._gate.discard()
            raise FloatingPointError(
                f"non-finite gradients at step {self.num_steps} on rank(s) "
                f"{list(agreed.nonfinite_ranks)} (every rank stops; pass on_nonfinite='skip' "
                "to skip such steps, or use a GradScaler)")
        return True

    # -- replicas, logging, state -----------------------------------------------------------
    def sync(self) -> None:
        """Make the replicas equal now: strategies that update locally (selsync, fedavg,
        localsgd) average the parameters (and floating buffers) over every rank; for the
        others the replicas already are equal. Call it on every rank before saving or
        deploying the model. Accounted like the strategy's own averaging."""
        if self._local_updates and not self.strategy.in_sync:
            self.strategy.average_parameters()

    def log_to(self, writer: Any, every: int = 1) -> None:
        """Log this wrapper's steps to ``writer`` (see :func:`log_to`); None stops."""
        self._writers = [] if writer is None else [(writer, _positive_int(every, "every"))]

    def _log_step(self, agreed: StepAgreement) -> None:
        records = self.last_records = self.comm.take_records()   # keeps the list bounded
        sinks = self._writers or _SINKS
        if not sinks:
            return
        row: dict[str, Any] = {
            "bytes_step": sum(r.nbytes for r in records), "bytes_sent": self.comm.total_bytes,
            "collectives": len(records), "aggregate_s": self._aggregate_s,
            "skipped_steps": self.skipped_steps, "lr": self.param_groups[0]["lr"],
            **self.strategy.signals()}
        if agreed.step_s is not None:
            row["step_s"] = agreed.step_s
        cond = self._context(agreed).conditions
        if cond is not None:
            row.update(alpha=cond.alpha, bandwidth=cond.bandwidth)
        for writer, every in sinks:
            if self.num_steps % every == 0:
                for k, v in step_scalars(row).items():
                    writer.add_scalar(f"flexsync/{k}", v, self.num_steps)

    def signals(self) -> dict[str, Any]:
        """The last step's strategy signals (ratio, collective, sync, …)."""
        return self.strategy.signals()

    def summary(self) -> dict[str, Any]:
        """Run-level figures of the strategy (e.g. SelSync's LSSR)."""
        return self.strategy.summary()

    @contextlib.contextmanager
    def evaluation(self) -> Iterator[None]:
        """Evaluate inside this block: strategies whose replicas drift apart (selsync,
        fedavg, localsgd) swap in the replicas' mean and restore the local weights after.
        Every rank must enter it (it communicates)."""
        self.strategy.before_eval()
        try:
            yield
        finally:
            self.strategy.after_eval()

    def close(self) -> None:
        """Release what the strategy installed (the ``ddp`` baseline's accounting wrapper)
        and the overlapped path's gradient hooks."""
        self.strategy.close()
        if self._overlap is not None:
            self._overlap.close()


def _overlap_options(overlap: Any, bucket_mb: Any) -> dict[str, Any]:
    """Validate the overlap arguments; what the ranks must agree on (the bucket layout)."""
    if not isinstance(overlap, bool):
        raise ConfigError(f"overlap must be True or False, got {overlap!r}")
    if isinstance(bucket_mb, bool) or not isinstance(bucket_mb, int | float) or not bucket_mb > 0:
        raise ConfigError(f"overlap_bucket_mb must be a number > 0, got {bucket_mb!r}")
    return {"on": overlap, "bucket_mb": float(bucket_mb)}


def _check_types(optimizer: Any, model: Any, strategy: Any, options: dict[str, Any]) -> None:
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got "
                        f"{type(optimizer).__name__}")
    if isinstance(optimizer, DistributedOptimizer):
        raise TypeError("optimizer is already a DistributedOptimizer; wrap the plain one once")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    owned = {id(p) for p in model.parameters()}
    if any(id(p) not in owned for g in optimizer.param_groups for p in g["params"]):
        raise ValueError("the optimizer holds parameters that are not the model's; "
                         "their gradients would never be aggregated")
    if isinstance(strategy, Strategy):
        if options:
            raise ValueError("pass strategy options to the strategy, not to the wrapper")
        if strategy.optimizer is not optimizer:
            raise ValueError("the strategy was built over another optimizer than the one "
                             "passed to the wrapper")
    elif not isinstance(strategy, str):
        raise TypeError(f"strategy must be a name or a Strategy, got {type(strategy).__name__}")
