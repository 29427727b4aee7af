"""``auto``: one strategy that composes the four methods and decides every step from what it
measures (issue #18; docs/methods.md §6).

Per step, and agreed on every rank (§0.6):

(i) **Sync or local step**: SelSync's rule (§2.2). Each rank votes with its own significance
    Δ ≥ δ (or while the windows fill, during warm-up or calibration, or when the bound of
    ``max_local_steps`` consecutive local steps is reached); the votes are agreed by one
    allreduce-MAX. ``Auto`` *is* a :class:`~flexsync.strategies.selsync.SelSync`: the vote, the
    bound, the counters, the replica averaging for evaluation and the checkpointed state are
    SelSync's own (``skip: false`` synchronises every step instead).
(ii) **How much to send** on a sync step: the keep fraction of the MOO controller (§1.4,
    ``ratio: moo``, the default), GraVAC's compression factor (§3(a), ``ratio: gravac``,
    its options under ``gravac:``) or a fixed ``ratio`` (1 = compression off).
(iii) **How to send it**: the α-β argmin over ``collectives`` (AG, ART-Ring, ART-Tree; §1.2)
    under the step's network conditions, and **dense** when the cost model says that
    selection time plus the cheapest compressed aggregation is not below a dense ring
    allreduce (``dense_switch``). The conditions are the run's agreed ones: fitted live from
    the run's own collective timings on an emulated link (``network.estimate``, §0.3), the
    configured or scheduled ones on a modeled network. Selection time is the agreed CPU time
    of the previous compressing sync's top-k selection (``Sparsifier.select_s``, smoothed),
    or the fixed ``selection_s``. The clock charges selection as compute of the real model,
    so it is not scaled by ``network.model_params``.
(iv) **Stream weighting** (§4.2) when batches come from ``stream:``: the aggregate weights
    each device by its batch b_i, Σ b_i·x_i / Σ b_j, and a gradient sync steps with the
    learning rate scaled by Σ b_j / B.

What a sync step sends:

* ``skip: true`` (default): parameter aggregation, as SelSync. Every rank first steps with its
  own gradient. A dense sync is SelSync's parameter averaging (PA). A compressed sync sends
  the *pseudo-gradient* Δ_n = w_anchor − w_n, the distance the replica moved since the last
  sync (w_anchor is the synced model, identical on every rank): error-fed, sparsified and
  aggregated by the chosen collective, then w ← w_anchor − mean(Δ), an outer SGD step with
  learning rate 1 and no momentum (DiLoCo §5.1 with compressed pseudo-gradients). What was
  not sent stays in the error-feedback memory for the next sync. Floating buffers (BatchNorm
  statistics) ride in the same message and are averaged.
* ``skip: false``: gradient aggregation every step, exactly as the top-k strategies
  (``ratio: 0.01, collectives: [allgather], dense_switch: false`` is ``topk`` step for step).

Why MOO is the default ratio and not GraVAC's schedule: under error feedback GraVAC's gain of
θ ≥ 10 is about 1/θ (docs/methods.md §3(a), "Measured gaps"; benchmarks/results/quality.md),
far below its ε = 0.7, so GraVAC sends dense on most steps (32.8 of dense's 41.6 MB to target
on resnet-hard), which would undo the point of compressing; MOO prices its candidates with the
same α-β model that picks the collective, so the ratio and the collective answer the same
network.

The compression half is :class:`Flexible` itself (a private subclass that overrides only its
:meth:`~flexsync.strategies.sparse.SparseStrategy.choose`, ``chosen_indices``,
``stream_weight``, ``update`` and piggyback hooks), so the MOO controller, the error feedback,
the probes and the aggregation are the shared code of §1. With ``ratio: gravac`` a
:class:`~flexsync.strategies.gravac.GraVAC` is held as the ratio controller and its own
``begin``/``measure``/``decide``/``sent`` run around that aggregation (its two-level gains on
auto's error-fed vector, its piggybacked consensus, its throughput table and windows, counted
in compressing steps); an allgather sends GraVAC's own indices, an ART collective selects at
1/θ itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, Literal

import torch
from pydantic import Field, field_validator, model_validator

from flexsync.comm import Communicator
from flexsync.comm.consensus import agree_any
from flexsync.net import cost_model
from flexsync.strategies.base import StepContext
from flexsync.strategies.flexible import Flexible, FlexibleOptions
from flexsync.strategies.grads import assign_grads, assign_params, flatten_params
from flexsync.strategies.gravac import GraVAC, GraVACOptions
from flexsync.strategies.scadles import step_scaled
from flexsync.strategies.selsync import SelSync, SelSyncOptions
from flexsync.strategies.smoothing import EWMA
from flexsync.strategies.sparse import Aggregate

#: Options of the compression half (the flexible strategy's own options model).
COMPRESSION_KEYS = frozenset(FlexibleOptions.model_fields) - {"name"}
#: GraVAC's signals that auto logs on a compressing sync (its own decision is "cf").
GRAVAC_SIGNALS = ("cf", "delta_min", "delta_c", "theta_min", "theta_c", "frozen")


class AutoOptions(SelSyncOptions, FlexibleOptions):
    """SelSync's options (the sync rule), the flexible strategy's (ratio, MOO, collectives,
    selector, wire coding) and auto's own."""

    name: Literal["auto"] = "auto"
    ratio: float | Literal["moo", "gravac"] = Field(
        "moo", description="keep fraction on sync steps: 'moo' (default), 'gravac' or a "
        "fixed c in (0, 1]; 1 = compression off")
    gravac: GraVACOptions | None = Field(None, description="GraVAC's options (ratio: gravac)")
    skip: bool = Field(True, description="take SelSync's local steps (parameter aggregation); "
                       "false: gradient aggregation every step")
    dense_switch: bool = Field(True, description="send dense when selection + compressed "
                               "communication is not below dense (α-β model)")
    selection_s: float | None = Field(None, ge=0, description="selection seconds the dense "
                                      "switch assumes; null: measured")
    weighting: bool = Field(True, description="ScaDLES weighting by batch size when "
                            "batches come from stream:")
    base_batch: int | None = Field(None, ge=1, description="B of the LR rule; null = 64·N")
    lr_scaling: bool = True

    @field_validator("ratio")
    @classmethod
    def _ratio(cls, v: float | str) -> float | str:
        if isinstance(v, str):
            return v
        if not 0 < v <= 1:
            raise ValueError("ratio must be in (0, 1], 'moo' or 'gravac'")
        return v

    @model_validator(mode="after")
    def _supported(self) -> AutoOptions:
        if self.ratio == "gravac" and self.gravac is None:
            self.gravac = GraVACOptions()
        if self.ratio != "gravac" and self.gravac is not None:
            raise ValueError("'gravac' options need ratio: gravac")
        if self.gravac is not None and self.gravac.gain_denominator != "fed":
            raise ValueError("auto takes GraVAC's gains against the error-fed vector only")
        if self.aggregation != "parameter":
            raise ValueError("auto syncs by parameter aggregation (skip: true) or gradient "
                             "aggregation every step (skip: false); aggregation must stay "
                             "'parameter'")
        if self.sync_values != "fp32":
            raise ValueError("\x1fsync_values\x1fauto's compressed syncs keep their own "
                             "anchor; its wire is chosen by ratio and values")
        if self.moo is not None and self.moo.mode != "online":
            raise ValueError("auto runs the MOO controller in online mode only (snapshot "
                             "exploration would restore replicas between syncs)")
        return self

    def network_aware(self) -> bool:
        return True            # the collective, the dense switch and MOO read the network


class _Compression(Flexible):
    """The compression half of :class:`Auto`: the flexible strategy's step with auto's
    choices (dense switch), weighting and piggybacked extras."""

    def __init__(self, owner: Auto, params: Iterable[torch.nn.Parameter],
                 optimizer: torch.optim.Optimizer, comm: Communicator, **options: Any) -> None:
        super().__init__(params, optimizer, comm, **options)
        self.owner = owner
        self.selection = EWMA(0.3)          # agreed selection seconds per compressing sync
        self.costs: dict[str, float] = {}   # the last choice's modeled seconds
        self.now: str | None = None         # this step's collective
        self.prev: str | None = None        # the previous compressing-or-dense sync's
        g = owner.opts.gravac
        self.gravac = (None if g is None else GraVAC(
            self.params, optimizer, comm, selector="topk",
            **g.model_dump(exclude={"name", "selector"})))
        self.calls = 0                      # compressing steps (GraVAC's window counter)
        self.picked: tuple[list[float], str, float, float, torch.Tensor | None] | None = None

    def selection_estimate(self) -> float:
        fixed = self.owner.opts.selection_s
        if fixed is not None:
            return fixed
        return self.selection.value or 0.0

    def choose(self, ctx: StepContext, ratio: float, fed: torch.Tensor) -> tuple[float, str]:
        self.costs = {}
        if self.gravac is not None:
            ratio = self._gravac_ratio(ctx, fed)
        n, cond = self.num_params, ctx.conditions
        if cost_model.topk_count(n, ratio) >= n:
            self.now = "dense"
        elif cond is None:                  # loopback: nothing to price
            self.now = self.candidates[0]
        else:
            choice = self._choice(ratio, cond, ctx)
            sel = self.selection_estimate()
            compressed = choice.costs[choice.collective] + sel
            dense = cost_model.dense_ring(self.priced_params(ctx), self.comm.world_size,
                                          cond.alpha, cond.beta)
            self.costs = {"compressed_s": compressed, "dense_s": dense, "selection_s": sel}
            switch = self.owner.opts.dense_switch and compressed >= dense
            self.now = "dense" if switch else choice.collective
        return (1.0, "dense") if self.now == "dense" else (ratio, self.now)

    def _gravac_ratio(self, ctx: StepContext, fed: torch.Tensor) -> float:
        """GraVAC's decision of this step (§3(a) steps 1–4) as a keep fraction."""
        g = self.gravac
        g.begin(ctx, self.calls)
        self.calls += 1
        local, idx_min, idx_c = g.measure(fed, fed, self.sparsifier.select)
        decision, theta, gain, idx = g.decide(local, idx_min, idx_c)
        self.picked = (local, decision, theta, gain, idx)
        return 1.0 / theta

    def chosen_indices(self, collective: str) -> torch.Tensor | None:
        if self.picked is None or collective != "allgather":
            return None
        return self.picked[4]

    def signals(self) -> dict[str, Any]:
        out = super().signals()
        if self.gravac is not None:
            g = self.gravac.signals()
            out.update({k: g[k] for k in GRAVAC_SIGNALS if k in g})
        return out

    def stream_weight(self, ctx: StepContext) -> float | None:
        if ctx.streaming and self.owner.opts.weighting:
            if ctx.batch_size is None:
                raise ValueError("stream weighting needs the step's batch size")
            return float(ctx.batch_size)
        return None

    def update(self, res: Aggregate) -> None:
        if "batch" not in res.extras:
            super().update(res)
            return
        sum_b = float(res.extras["batch"][0])
        assign_grads(self.params, res.total / sum_b)
        o = self.owner.opts
        gradient = not self.owner.skip       # the LR rule scales gradient steps only
        scale = sum_b / self.owner.base_batch if o.lr_scaling and gradient else 1.0
        step_scaled(self.optimizer, scale)

    def piggyback(self, grad: torch.Tensor) -> list[float]:
        """The previous sync's selection seconds, then (parameter aggregation) this rank's
        floating buffers."""
        spent, self.sparsifier.select_s = self.sparsifier.select_s, 0.0
        return [spent, *self._gains(), *self.owner.shared_buffers()]

    def _gains(self) -> list[float]:
        """GraVAC's local gains when they ride in the message (piggyback consensus)."""
        if self.gravac is None or self.gravac.consensus != "piggyback":
            return []
        return list(self.picked[0])

    def observe_piggyback(self, ctx: StepContext, means: list[float]) -> None:
        prev, self.prev = self.prev, self.now
        if prev is not None and (prev != "dense" or self.gravac is not None):
            # STAR: only the broadcaster selected, so its time is the sum over ranks;
            # GraVAC selects its level 1 on every rank, even before a dense step.
            alone = self.gravac is None and prev != "allgather" and self.index == "star"
            self.selection.update(means[0] * (self.comm.world_size if alone else 1))
        gains = len(self._gains())
        if gains:
            self.gravac.agreed_from(means[1:1 + gains])
        if self.gravac is not None:
            self._gravac_sent()
        self.owner.set_buffers(means[1 + gains:])

    def _gravac_sent(self) -> None:
        """GraVAC's bookkeeping of what this step sent (dense when the switch overrode)."""
        _, decision, theta, gain, _ = self.picked
        if self.now == "dense":
            decision, theta, gain = "dense", 1.0, 1.0
        n = self.num_params
        k = n if theta == 1.0 else cost_model.topk_count(n, 1.0 / theta)
        self.gravac.sent(theta, gain, decision, k, self.now)

    def state_dict(self) -> dict[str, Any]:
        out = {**super().state_dict(), "selection": self.selection.state_dict(),
               "prev": self.prev, "calls": self.calls}
        if self.gravac is not None:
            out["gravac"] = self.gravac.state_dict()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.selection.load_state_dict(state["selection"])
        self.prev, self.calls = state["prev"], int(state["calls"])
        if self.gravac is not None:
            self.gravac.load_state_dict(state["gravac"])


class Auto(SelSync):
    """See the module docstring (docs/methods.md §6)."""

    name = "auto"
    Options = AutoOptions

    def __init__(self, params: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                 comm: Communicator, **options: Any) -> None:
        super().__init__(params, optimizer, comm, **options)
        o = self.opts
        self.skip = o.skip
        self.compressing = o.ratio != 1.0
        self.base_batch = o.base_batch or 64 * comm.world_size
        # Parameter aggregation applies the aggregated pseudo-gradient with an outer SGD
        # (lr 1, no momentum); gradient aggregation steps the user's optimizer.
        self.outer = torch.optim.SGD(self.params, lr=1.0) if self.skip else None
        sub = o.model_dump(include=set(COMPRESSION_KEYS))
        if o.ratio == "gravac":         # the compression half's own ratio is then unused
            sub["ratio"] = 1.0 / o.gravac.theta_min
        self.compression = _Compression(self, self.params, self.outer or optimizer, comm,
                                        **sub)
        self.anchor = flatten_params(self.params).clone() if self.skip else None
        self.decisions: Counter[str] = Counter()
        self.collectives: Counter[str] = Counter()

    # -- buffers riding in a compressed parameter sync -------------------------------------
    def _buffer_tensors(self) -> list[torch.Tensor]:
        return self.buffers if self.skip and self.average_buffers else []

    def shared_buffers(self) -> list[float]:
        tensors = self._buffer_tensors()
        if not tensors:
            return []
        return torch.cat([b.detach().reshape(-1) for b in tensors]).tolist()

    def set_buffers(self, means: list[float]) -> None:
        tensors = self._buffer_tensors()
        if tensors:
            assign_params(tensors, torch.tensor(means, dtype=tensors[0].dtype,
                                                device=tensors[0].device))

    # -- the step --------------------------------------------------------------------------
    def step(self, ctx: StepContext) -> None:
        delta = None
        if self.skip:
            delta, flag = self.local_flag(ctx)
            self.optimizer.step()                      # PA order: step, then average
            synced = agree_any(self.comm, flag)
            if synced:
                self._parameter_sync(ctx)
        else:
            synced = True
            self.compression.optimizer = self.optimizer   # the wrapper may have gated it
            self.compression.step(ctx)
        self.record(synced)
        self._log(ctx, synced, delta)

    def _parameter_sync(self, ctx: StepContext) -> None:
        """Average the replicas: SelSync's PA when compression is off, else the aggregated
        pseudo-gradient w_anchor − w_n applied to w_anchor (module docstring)."""
        if not self.compressing:
            self.average_parameters()
        else:
            here = flatten_params(self.params)
            assign_grads(self.params, self.anchor - here)
            assign_params(self.params, self.anchor)
            self.compression.step(ctx)
            self.in_sync = True
        self.anchor = flatten_params(self.params)

    def _log(self, ctx: StepContext, synced: bool, delta: float | None) -> None:
        sig: dict[str, Any] = {**self.base_signals(ctx.step, synced), "delta": delta,
                               "delta_threshold": self.threshold}
        if not synced:
            decision = "local"
        elif self.compressing or not self.skip:
            sig.update(self.compression.signals())
            sig.update(self.compression.costs)
            decision = "dense" if sig["collective"] == "dense" else "compressed"
        else:
            sig["ratio"] = 1.0
            decision = "dense"
        sig["decision"] = decision
        if ctx.conditions is not None:
            sig["alpha"], sig["beta"] = ctx.conditions.alpha, ctx.conditions.beta
        self.decisions[decision] += 1
        self.collectives[sig["collective"]] += 1
        self._signals = sig

    # -- reporting and state ---------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        out = {**super().summary(), "auto": {"decisions": dict(self.decisions),
                                             "collectives": dict(self.collectives)}}
        if self.compression.gravac is not None:
            out.update(self.compression.gravac.summary())
        return out

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "compression": self.compression.state_dict(),
                "anchor": self.anchor, "decisions": dict(self.decisions),
                "collectives": dict(self.collectives)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.compression.load_state_dict(state["compression"])
        self.anchor = state["anchor"]
        self.decisions = Counter(state["decisions"])
        self.collectives = Counter(state["collectives"])
