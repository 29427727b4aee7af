"""DiLoCo: infrequent synchronisation with an outer optimizer (docs/methods.md §5).

Every worker takes H inner steps with the user's optimizer; then the pseudo-gradient
Δ_n = θ_sync − θ_n (how far the worker moved since the last synchronisation) is averaged
across workers and applied to θ_sync by an outer SGD with Nesterov momentum (DiLoCo,
arXiv 2311.08105: outer lr 0.7, momentum 0.9); every replica restarts from the new θ_sync, so
the replicas are identical after every outer step. The inner optimizer's state stays local.

What flexsync adds (§5.2–5.5):

* ``compress``: the pseudo-gradient is error-fed and sent through the shared sparse core
  (:func:`~flexsync.strategies.sparse.aggregate`): Allreduce-compatible top-k with one shared
  index set (``index: star`` round-robin or ``var``), whose bytes per worker do not grow with
  N, or ``allgather`` of every worker's own top-k (SparseLoCo's way, traffic grows with N).
  ``values`` fp16 / bf16 / int8 (one agreed scale per chunk) shrink each kept value; what
  quantisation loses goes into the error-feedback residual too.
* ``h: adaptive``: SelSync's significance Δ (:mod:`~flexsync.strategies.significance`)
  accumulated since the last sync; the workers synchronise when any accumulated change
  reaches ``delta`` (agreed with one tiny allreduce), within [min_h, max_h] steps.
* ``fragments: F`` (Streaming DiLoCo, arXiv 2501.18512): the parameters are split into F
  contiguous fragments at tensor boundaries; fragment f synchronises every H steps at offset
  ⌊(f+1)·H/F⌋ mod H, so each sync sends about 1/F of the model. ``overlap: true`` applies a
  fragment's outer update one inner step later (τ = 1) and keeps that step's local progress
  on top of it: the collective's result is not needed until the next step, so it could
  overlap that step's compute (§5.5 says what the clocks charge).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from pydantic import AliasChoices, Field, model_validator

from flexsync.comm import Communicator
from flexsync.comm.consensus import agree_any
from flexsync.comm.lowbit import encode
from flexsync.compress import Sparsifier
from flexsync.compress.quantize import int8_levels
from flexsync.net.cost_model import topk_count
from flexsync.strategies.base import StepContext
from flexsync.strategies.grads import assign_params, flatten_params
from flexsync.strategies.local import LocalUpdateOptions, LocalUpdateStrategy
from flexsync.strategies.options import Selector, Strict
from flexsync.strategies.significance import Significance
from flexsync.strategies.sparse import aggregate, broadcast_index_set


class PseudoGradientCompression(Strict):
    """How the pseudo-gradient travels (``strategy.compress``)."""

    ratio: float = Field(0.01, gt=0, le=1, description="keep fraction c of top-k (1: dense)")
    index: Literal["star", "var", "allgather"] = Field(
        "star", description="shared index set by round-robin (star) or largest local score "
        "(var), both Allreduce-compatible; or allgather of every worker's own top-k")
    error_feedback: bool = Field(True, description="carry what was not sent to the next sync")
    values: Literal["fp32", "fp16", "bf16", "int8"] = Field(
        "fp32", description="wire type of each kept value (int8: one scale per chunk)")
    chunk: int = Field(2048, ge=1, description="int8: entries sharing one scale")
    selector: Selector = "topk"
    seed: int = Field(0, ge=0, description="seeds the sampled selectors")


class DiLoCoOptions(LocalUpdateOptions):
    """DiLoCo's options; the outer defaults are the paper's (§5.1)."""

    name: Literal["diloco"] = "diloco"
    h: int | Literal["adaptive"] = Field(
        50, validation_alias=AliasChoices("h", "inner_steps"),
        description="H, inner steps per outer step (also spelt inner_steps), or 'adaptive' "
        "(SelSync's significance test)")
    outer_lr: float = Field(0.7, gt=0)
    outer_momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    compress: PseudoGradientCompression | None = None
    fragments: int = Field(1, ge=1, description="Streaming DiLoCo: fragments synced in turn")
    overlap: bool = Field(False, description="apply each outer update one inner step later")
    delta: float = Field(0.5, gt=0, description="h adaptive: accumulated relative change "
                         "that triggers a sync")
    min_h: int = Field(4, ge=1, description="h adaptive: fewest inner steps between syncs")
    max_h: int = Field(500, ge=1, description="h adaptive: most inner steps between syncs")
    window: int = Field(25, ge=1, description="h adaptive: significance window")
    smoothing: float | None = Field(None, ge=0, lt=1, description="h adaptive: EWMA factor; "
                                    "null: N/100 (SelSync)")

    @model_validator(mode="after")
    def _consistent(self) -> DiLoCoOptions:
        if isinstance(self.h, int) and self.h < 1:
            raise ValueError("\x1fh\x1fmust be a positive number of steps or 'adaptive'")
        if self.h == "adaptive" and self.fragments > 1:
            raise ValueError("\x1ffragments\x1fh: adaptive syncs the whole model; "
                             "use a fixed h with fragments")
        if self.min_h > self.max_h:
            raise ValueError("\x1fmin_h\x1fmust not exceed max_h")
        if self.sync_values != "fp32":
            raise ValueError("\x1fsync_values\x1fdiloco's wire type is compress.values")
        if self.sync_optimizer_state:
            raise ValueError("\x1fsync_optimizer_state\x1fdiloco keeps the inner optimizer "
                             "state local (the outer step restarts every replica)")
        return self


@dataclass
class _Pending:
    """An outer update computed but not yet applied (``overlap``)."""

    fragment: int
    before: torch.Tensor        # the fragment's local parameters when its Δ was taken


class DiLoCo(LocalUpdateStrategy):
    name = "diloco"
    Options = DiLoCoOptions

    def __init__(self, params: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                 comm: Communicator, **options: Any) -> None:
        super().__init__(params, optimizer, comm, **options)
        o = self.opts
        self.fragments = _fragments(self.params, o.fragments)
        flat = flatten_params(self.params)
        self.anchor = flat.clone()                  # θ_sync (identical on every rank)
        self.momentum = torch.zeros_like(flat)      # the outer optimizer's buffer
        self.inner = 0                              # inner steps taken
        self.since = 0                              # inner steps since the last sync
        self.rounds = [0] * len(self.fragments)     # outer steps per fragment
        self.accumulated = 0.0                      # h adaptive: Σ Δ since the last sync
        self.pending: list[_Pending] = []
        self._previous: dict[int, torch.Tensor] = {}   # last Δ̄ per fragment (diagnostics)
        self._diag: dict[str, float] = {}
        c = o.compress
        self.sparsifiers = [] if c is None else [
            Sparsifier(hi - lo, c.selector, [p.numel() for p in self.params[a:b]], c.seed,
                       comm.rank, device=flat.device, dtype=flat.dtype)
            for (a, b), (lo, hi) in self.fragments]
        self.significance = None
        if o.h == "adaptive":
            smoothing = (min(comm.world_size / 100.0, 0.99) if o.smoothing is None
                         else o.smoothing)
            self.significance = Significance("paper_sq_global", o.window, smoothing)
        if c is not None and c.values == "int8":
            int8_levels(comm.world_size)            # refuse worlds the codes cannot sum

    # -- schedule --------------------------------------------------------------------------
    def _due(self) -> list[int]:
        """The fragments whose outer step is this step (identical on every rank)."""
        o = self.opts
        if o.h != "adaptive":
            return [f for f in range(len(self.fragments))
                    if self.inner % o.h == ((f + 1) * o.h // len(self.fragments)) % o.h]
        delta = self.significance.update(self.params)
        if delta is not None:
            self.accumulated += delta
        flag = self.since >= o.max_h or (self.since >= o.min_h and self.accumulated >= o.delta)
        return [0] if agree_any(self.comm, flag) else []

    def step(self, ctx: StepContext) -> None:
        self.optimizer.step()
        self.inner += 1
        self.since += 1
        applied = self._apply_pending()
        due = self._due()
        for f in due:
            self._outer_step(f)
        synced = bool(due)
        if synced:
            h, self.since, self.accumulated = self.since, 0, 0.0
            if self.average_buffers and self.buffers:
                self._average_buffers()
        self.count(synced)
        self.in_sync = synced and len(due) == len(self.fragments) and not self.opts.overlap
        self._signals = {**self.base_signals(ctx.step, synced),
                         "collective": self._collective() if synced else "none"}
        if synced:
            self._signals.update(h=h, fragments_synced=due, **self._diag)
        if applied:
            self._signals["fragments_applied"] = applied

    def _collective(self) -> str:
        c = self.opts.compress
        if c is None or topk_count(self.num_params, c.ratio) >= self.num_params:
            return "allreduce-ring"
        return "allgather" if c.index == "allgather" else f"art_ring-{c.index}"

    # -- the outer step --------------------------------------------------------------------
    def _outer_step(self, f: int) -> None:
        """Average fragment ``f``'s pseudo-gradient and step θ_sync with Nesterov momentum:
        m ← μ·m + Δ̄; θ_sync ← θ_sync − η·(Δ̄ + μ·m) (η·m without Nesterov)."""
        (a, b), (lo, hi) = self.fragments[f]
        o = self.opts
        local = flatten_params(self.params[a:b])
        mean = self._average(self.anchor[lo:hi] - local, f) / self.comm.world_size
        m = self.momentum[lo:hi]
        m.mul_(o.outer_momentum).add_(mean)
        update = mean.add(m, alpha=o.outer_momentum) if o.nesterov else m
        self.anchor[lo:hi].sub_(update, alpha=o.outer_lr)
        self._diagnose(f, mean, update)
        self.rounds[f] += 1
        if o.overlap:
            self.pending.append(_Pending(f, local))
        else:
            assign_params(self.params[a:b], self.anchor[lo:hi])

    def _diagnose(self, f: int, mean: torch.Tensor, update: torch.Tensor) -> None:
        """The outer step's sizes, logged with the step (§5.1): ‖Δ̄‖ (``pg_norm``), the step
        taken ‖η·u‖ over ‖Δ̄‖ (``outer_gain``: 1 for averaging; Nesterov on Δ̄ that repeats
        tends to η/(1−μ), 7 at the paper's 0.7 / 0.9), the cosine of Δ̄ with the previous
        round's (``pg_cos``), and this worker's error-feedback residual ‖e‖ over ‖Δ̄‖
        (``ef_ratio``, compressed runs). The last synced fragment's, when there are several."""
        norm = float(mean.norm())
        prev = self._previous.get(f)
        d = {"pg_norm": norm,
             "outer_gain": self.opts.outer_lr * float(update.norm()) / max(norm, 1e-30)}
        if prev is not None:
            d["pg_cos"] = float(torch.nn.functional.cosine_similarity(mean, prev, dim=0))
        if self.sparsifiers:
            d["ef_ratio"] = float(self.sparsifiers[f].ef.residual.norm()) / max(norm, 1e-30)
        self._previous[f] = mean.clone()
        self._diag = d

    def _apply_pending(self) -> list[int]:
        """Overlap: the previous step's outer updates land now, with the local progress made
        since (θ ← θ_sync + (θ − θ_before)), so that progress is kept, not lost."""
        done = []
        for p in self.pending:
            (a, b), (lo, hi) = self.fragments[p.fragment]
            now = flatten_params(self.params[a:b])
            assign_params(self.params[a:b], self.anchor[lo:hi] + (now - p.before))
            done.append(p.fragment)
        self.pending = []
        return done

    def _average_buffers(self) -> None:
        flat = flatten_params(self.buffers)
        self.comm.allreduce(flat, tag="buffers")
        assign_params(self.buffers, flat.div_(self.comm.world_size))

    def _average(self, delta: torch.Tensor, f: int) -> torch.Tensor:
        """Σ over ranks of the fragment's pseudo-gradient (compressed when configured)."""
        c = self.opts.compress
        if c is None:
            self.comm.allreduce(delta, tag="pseudo-gradient")
            return delta
        sp = self.sparsifiers[f]
        fed = sp.feed(delta) if c.error_feedback else delta
        if c.values == "fp32":
            collective = "allgather" if c.index == "allgather" else "art_ring"
            total = aggregate(self.comm, fed, sp, c.ratio, collective, step=self.rounds[f],
                              index="star" if c.index == "allgather" else c.index,
                              gain_norm=None).total
        else:
            total = self._lowbit(fed, sp, self.rounds[f])
        if not c.error_feedback:
            sp.ef.reset()
        return total

    def _lowbit(self, fed: torch.Tensor, sp: Sparsifier, round_: int) -> torch.Tensor:
        """The sparse aggregation with low-bit values: the same index sets as the shared core,
        the values in fp16/bf16/int8 on the wire; the residual keeps fed − what was sent
        (unsent entries and quantisation error alike)."""
        c, comm = self.opts.compress, self.comm
        n = fed.numel()
        k = topk_count(n, c.ratio)
        idx = None
        if k < n and c.index == "allgather":
            idx = sp.select(fed, c.ratio)
        elif k < n:
            idx, _ = broadcast_index_set(comm, fed, c.ratio, k, round_, c.index, sp.select)
        vals = fed if idx is None else fed[idx]
        gather = idx is not None and c.index == "allgather"
        wire, decode = encode(comm, vals, c.values, c.chunk,
                              1 if gather else comm.world_size)
        sent = decode(wire)
        if gather:
            codes = comm.allgather(wire, tag="values")
            where = comm.allgather(idx.to(torch.int32), tag="indices")
            total = torch.zeros_like(fed)
            total.index_add_(0, where.reshape(-1).long(),
                             torch.cat([decode(row) for row in codes]))
        else:
            comm.allreduce(wire, tag="values")
            summed = decode(wire)
            total = summed if idx is None else torch.zeros_like(fed).index_put_((idx,), summed)
        residual = fed.clone()
        if idx is None:
            residual -= sent
        else:
            residual[idx] -= sent
        sp.ef.residual.copy_(residual)
        return total

    # -- reporting and state ---------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "outer_steps": list(self.rounds)}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "anchor": self.anchor.clone(),
                "momentum": self.momentum.clone(), "inner": self.inner, "since": self.since,
                "rounds": list(self.rounds), "accumulated": self.accumulated,
                "pending": [{"fragment": p.fragment, "before": p.before.clone()}
                            for p in self.pending],
                "sparsifiers": [sp.state_dict() for sp in self.sparsifiers],
                "significance": (None if self.significance is None
                                 else self.significance.state_dict())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.anchor.copy_(state["anchor"])
        self.momentum.copy_(state["momentum"])
        self.inner, self.since = int(state["inner"]), int(state["since"])
        self.rounds = [int(r) for r in state["rounds"]]
        self.accumulated = float(state["accumulated"])
        self.pending = [_Pending(int(p["fragment"]), p["before"].clone())
                        for p in state["pending"]]
        for sp, s in zip(self.sparsifiers, state["sparsifiers"], strict=True):
            sp.load_state_dict(s)
        if self.significance is not None:
            self.significance.load_state_dict(state["significance"])


def _fragments(params: list[torch.Tensor], count: int
               ) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Split the parameter list into ``count`` contiguous groups of about equal size at tensor
    boundaries: ((first tensor, end tensor), (first entry, end entry)) per fragment."""
    if count > len(params):
        raise ValueError(f"fragments ({count}) cannot exceed the number of parameter tensors "
                         f"({len(params)})")
    cum = [0]
    for p in params:
        cum.append(cum[-1] + p.numel())
    out, start = [], 0
    for f in range(count):
        last = len(params) - (count - f - 1)           # leave a tensor per later fragment
        goal = cum[-1] * (f + 1) / count
        end = len(params) if f == count - 1 else min(
            range(start + 1, last + 1), key=lambda e: abs(cum[e] - goal))
        out.append(((start, end), (cum[start], cum[end])))
        start = end
    return out
