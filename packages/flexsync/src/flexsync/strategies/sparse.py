"""The shared machinery of the top-k strategies (AG top-k, AR-Topk, flexible).

One step: error-feed the flat gradient, pick the keep fraction (static, or from the MOO
controller), pick the collective (the one thing subclasses decide), sparsify and aggregate,
update the residual, and step the optimizer. A keep fraction of 1 sends dense and resets the
residual. Each worker's compression gain rides along in the aggregation message, so the
cluster-mean gain is known on every rank without an extra collective.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from pydantic import Field, field_validator, model_validator

from flexsync.comm import Communicator
from flexsync.comm.consensus import agree_argmax
from flexsync.comm.sparse import (
    allgather_sparse_async,
    allreduce_values_async,
    broadcast_indices,
)
from flexsync.compress import Sparsifier, candidate_gains, compression_gain
from flexsync.net import cost_model
from flexsync.net.conditions import NetworkConditions
from flexsync.strategies.base import StepContext, Strategy
from flexsync.strategies.grads import assign_grads, flatten_grads
from flexsync.strategies.moo import MOOController, MOOOptions, Plan
from flexsync.strategies.options import SparsifierOptions

INDEX_CHOICES = ("star", "var")

Selector = Callable[[torch.Tensor, float], torch.Tensor]


class SparseOptions(SparsifierOptions):
    """Options of the top-k strategies (topk, artopk, flexible)."""

    ratio: float | Literal["moo"] = Field(0.01, description="keep fraction c, or 'moo'")
    index: Literal["star", "var"] = Field("star", description="AR-Topk's broadcaster: "
                                          "round-robin (star) or largest local score (var)")
    var_score: Literal["paper", "code"] = "paper"
    moo: MOOOptions | None = None

    @field_validator("ratio")
    @classmethod
    def _ratio(cls, v: float | str) -> float | str:
        if v != "moo" and not 0 < v <= 1:
            raise ValueError("ratio must be in (0, 1] or 'moo'")
        return v

    @model_validator(mode="after")
    def _moo(self) -> SparseOptions:
        if self.ratio == "moo" and self.moo is None:
            self.moo = MOOOptions()
        if self.ratio != "moo" and self.moo is not None:
            raise ValueError("'moo' options need ratio: moo")
        return self

    def network_aware(self) -> bool:
        return self.ratio == "moo"          # the MOO search prices candidate ratios


@dataclass
class Aggregate:
    """What one sparse (or dense) aggregation of an error-fed vector produced, on every rank.

    ``total`` is the *sum* over ranks of what each sent, in the fed vector's layout (divide
    by the world size for the mean; with :func:`aggregate_async`'s ``mean_out``, the mean
    itself); ``extras`` the sum over ranks of each named list of
    floats that rode along (``"gain"``: each rank's compression gain, 1 when dense).
    """

    total: torch.Tensor
    extras: dict[str, torch.Tensor]
    collective: str            # "dense", "allgather", "art_ring" or "art_tree"
    k: int                     # entries each rank sent (n when dense)
    broadcaster: int | None = None

    def means(self, world: int) -> dict[str, list[float]]:
        """The extras as cluster means (identical on every rank)."""
        return {name: (v / world).tolist() for name, v in self.extras.items()}


def broadcast_index_set(comm: Communicator, fed: torch.Tensor, ratio: float, k: int,
                        step: int, index: str, select_fn: Selector,
                        var_score: Callable[[torch.Tensor], float] | None = None,
                        ) -> tuple[torch.Tensor, int]:
    """AR-Topk's shared index set: STAR takes the round-robin broadcaster ``step mod N``; VAR
    the rank with the largest ``var_score(local top-k indices)`` (default ‖fed[idx]‖², the
    paper's score), lowest rank on ties. Returns (the k indices on every rank, broadcaster)."""
    local = None
    if index == "star":
        src = step % comm.world_size
    elif index == "var":
        local = select_fn(fed, ratio)
        score = var_score(local) if var_score is not None else float(fed[local].pow(2).sum())
        src = agree_argmax(comm, score)
    else:
        raise ValueError(f"index must be one of {INDEX_CHOICES}, got {index!r}")
    if comm.rank == src and local is None:
        local = select_fn(fed, ratio)
    if local is not None and local.numel() != k:       # layer-wise k may differ
        raise ValueError("AR-Topk needs exactly k indices; use selector topk, randomk "
                         "or threshold")
    return broadcast_indices(comm, local, k, src, fed.device, numel=fed.numel()), src


def _pack(gain: float | None, extras: dict[str, Sequence[float]]) -> tuple[list[float],
                                                                          list[tuple[str, int]]]:
    flat = [] if gain is None else [gain]
    layout = [] if gain is None else [("gain", 1)]
    for name, values in extras.items():
        flat.extend(values)
        layout.append((name, len(values)))
    return flat, layout


def _unpack(summed: torch.Tensor, layout: list[tuple[str, int]]) -> dict[str, torch.Tensor]:
    out, at = {}, 0
    for name, size in layout:
        out[name] = summed[at:at + size]
        at += size
    return out


def aggregate(comm: Communicator, fed: torch.Tensor, sp: Sparsifier, ratio: float,
              collective: str, *, step: int, index: str = "star",
              var_score: Callable[[torch.Tensor], float] | None = None,
              gain_norm: str | None = "sq", extras: dict[str, Sequence[float]] | None = None,
              indices: torch.Tensor | None = None, weight: float = 1.0) -> Aggregate:
    """One aggregation of the error-fed vector ``fed`` at keep fraction ``ratio`` through
    ``collective`` ("allgather", "art_ring" or "art_tree"), updating ``sp``'s residual.

    When k = max(1, ⌊c·n⌋) reaches n everything is sent by one dense allreduce and the
    residual resets; otherwise the selected entries (``indices``, or ``sp``'s selection) are
    sent and the rest stays in the residual. What is sent is ``weight``·fed (ScaDLES weights
    by batch size); the residual keeps the unweighted values. Each rank's compression gain
    (unless ``gain_norm`` is None) and the named ``extras`` ride along in the same message.
    The shared core of every sparse strategy and the DDP communication hook.
    """
    return aggregate_async(comm, fed, sp, ratio, collective, step=step, index=index,
                           var_score=var_score, gain_norm=gain_norm, extras=extras,
                           indices=indices, weight=weight).wait()


def aggregate_async(comm: Communicator, fed: torch.Tensor, sp: Sparsifier, ratio: float,
                    collective: str, *, step: int, index: str = "star",
                    var_score: Callable[[torch.Tensor], float] | None = None,
                    gain_norm: str | None = "sq",
                    extras: dict[str, Sequence[float]] | None = None,
                    indices: torch.Tensor | None = None, weight: float = 1.0,
                    mean_out: torch.Tensor | None = None) -> torch.futures.Future[Aggregate]:
    """:func:`aggregate`, returning as soon as the message is on its way: selection, the
    residual update and (AR-Topk) the index broadcast happen now; the values' collective
    completes in the background and the future's callback decodes the sum. With
    ``mean_out`` (the DDP hook's bucket) a sparse step decodes the cluster *mean* into it
    instead, and ``total`` is ``mean_out`` (no vector-sized allocation, copy or division).
    The DDP hook returns such futures so a bucket's communication overlaps the rest of
    backward."""
    n = fed.numel()
    extras = extras or {}
    k = cost_model.topk_count(n, ratio)
    sent = fed if weight == 1.0 else weight * fed
    if k >= n:                                     # dense: everything is sent
        flat, layout = _pack(None if gain_norm is None else 1.0, extras)
        total = torch.cat([sent, torch.tensor(flat).to(fed)])
        sp.ef.reset()
        return comm.allreduce_async(total, tag="gradients").then(
            lambda f: Aggregate(total[:n], _unpack(total[n:], layout), "dense", n))
    if collective == "allgather":
        idx = sp.select(fed, ratio) if indices is None else indices
        gain = None if gain_norm is None else compression_gain(fed[idx], fed, gain_norm)
        flat, layout = _pack(gain, extras)
        fut, wire = allgather_sparse_async(comm, sent[idx], idx, n, torch.tensor(flat),
                                           coding=sp.values, out=mean_out,
                                           scale=1.0 if mean_out is None else 1 / comm.world_size)
        _absorb(sp, fed, idx, wire, weight)
        sent_k = int(idx.numel())
        return fut.then(lambda f: Aggregate(f.value()[0], _unpack(f.value()[1], layout),
                                            collective, sent_k))
    if collective not in ("art_ring", "art_tree"):
        raise ValueError(f"collective must be one of {cost_model.COMPRESSED_COLLECTIVES}, "
                         f"got {collective!r}")
    idx, src = broadcast_index_set(comm, fed, ratio, k, step, index, sp.select, var_score)
    gain = None if gain_norm is None else compression_gain(fed[idx], fed, gain_norm)
    flat, layout = _pack(gain, extras)
    algo = "tree" if collective == "art_tree" else "ring"
    fut, wire = allreduce_values_async(comm, sent[idx], algo, torch.tensor(flat),
                                       coding=sp.values)
    _absorb(sp, fed, idx, wire, weight)

    def scatter(f: torch.futures.Future[tuple[torch.Tensor, torch.Tensor]]) -> Aggregate:
        vals, ex = f.value()
        if mean_out is None:
            agg = torch.zeros_like(fed)
            agg[idx] = vals
        else:
            agg = mean_out.zero_()
            agg[idx] = vals / comm.world_size
        return Aggregate(agg, _unpack(ex, layout), collective, k, src)

    return fut.then(scatter)


def _absorb(sp: Sparsifier, fed: torch.Tensor, idx: torch.Tensor, wire: torch.Tensor,
            weight: float) -> None:
    """Error feedback after a sparse send: exact values leave the memory; rounded ones
    (16-bit wire values) leave their rounding error in it."""
    sp.ef.absorb(fed, idx, None if sp.values == "fp32" else wire / weight)


class SparseStrategy(Strategy):
    """Base of the top-k strategies. Subclasses implement :meth:`collective` and :meth:`cost`.

    Options (:class:`SparseOptions`): ``ratio`` (keep fraction c in (0, 1], or "moo" to let
    :class:`MOOController` choose it), ``selector`` ("adaptive" exact top-k through a reused
    threshold, "topk" fused, "layerwise", "randomk" or "threshold", sampled DGC-style),
    ``values`` (wire coding of sent values: "fp16", "bf16" or "fp32"), ``index`` (AR-Topk's
    broadcaster: "star" round-robin or "var" largest local top-k score, lowest rank on
    ties), ``var_score`` ("paper": ‖top-k of g_ef‖², or "code": ‖g‖ of the raw gradient),
    ``gain_norm`` ("sq" paper, "l2" original code), ``moo`` (the controller's options) and
    ``seed`` (the selectors' generator).
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                 comm: Communicator, **options: Any) -> None:
        super().__init__(params, optimizer, comm, **options)
        o = self.sparse_options()
        self.controller = (MOOController(**o.moo.model_dump()) if o.ratio == "moo" else None)
        self.ratio = float(o.ratio) if self.controller is None else self.controller.ratio
        self.index, self.var_score, self.gain_norm = o.index, o.var_score, o.gain_norm
        self.sizes = [p.numel() for p in self.params]
        self.sparsifier = Sparsifier(self.num_params, o.selector, self.sizes, o.seed, comm.rank,
                                     device=self.params[0].device, dtype=self.params[0].dtype,
                                     values=o.values)
        self._snapshot: dict[str, Any] | None = None

    def sparse_options(self) -> SparseOptions:
        """The top-k settings (default: this strategy's own options)."""
        return self.opts

    # -- what subclasses decide ----------------------------------------------------------
    def collective(self, ctx: StepContext, ratio: float) -> str:
        """Which of cost_model.COMPRESSED_COLLECTIVES aggregates this step."""
        raise NotImplementedError

    def cost(self, ratio: float, cond: NetworkConditions | None, ctx: StepContext) -> float:
        """Modeled seconds of one aggregation at keep fraction ``ratio``."""
        raise NotImplementedError

    def priced_params(self, ctx: StepContext) -> int:
        return ctx.priced_params or self.num_params

    # -- the step ------------------------------------------------------------------------
    def step(self, ctx: StepContext) -> None:
        plan = (self.controller.plan(ctx.step, ctx.total_steps) if self.controller
                else Plan(self.ratio, "static"))
        if plan.take_snapshot:
            self._take_snapshot()
        c = plan.ratio
        grad = flatten_grads(self.params)
        fed = self.sparsifier.feed(grad)
        n, world = self.num_params, self.comm.world_size
        online = self.controller is not None and self.controller.probes(ctx.step)
        cands = candidate_gains(fed, self.controller.candidates, self.gain_norm) if online else []
        c, collective = self.choose(ctx, c, fed)
        k = cost_model.topk_count(n, c)
        weight = self.stream_weight(ctx)
        extras = {"candidates": cands, "piggyback": self.piggyback(grad)}
        if weight is not None:
            extras["batch"] = [weight]
        res = aggregate(self.comm, fed, self.sparsifier, c, collective, step=ctx.step,
                        index=self.index, var_score=self._var_score(), gain_norm=self.gain_norm,
                        extras=extras, weight=1.0 if weight is None else weight,
                        indices=self.chosen_indices(collective))
        ex = res.means(world)
        gain = ex["gain"][0]
        self.update(res)

        self._signals = {"ratio": c, "k": min(k, n), "collective": res.collective, "gain": gain}
        if res.broadcaster is not None:
            self._signals["broadcaster"] = res.broadcaster
        self.observe_piggyback(ctx, ex["piggyback"])
        if self.controller is not None:
            self._signals["moo_phase"] = plan.phase
            action = self.controller.observe(
                ctx.step, plan, gain, ex["candidates"] if online else None, ctx.conditions,
                lambda r: self.cost(r, ctx.conditions, ctx))
            if action is not None:
                self._restore_snapshot(fresh_residual=action == "restore_fresh")
            self.ratio = self.controller.ratio

    # -- the step's choices and update (subclass hooks) --------------------------------------
    def choose(self, ctx: StepContext, ratio: float, fed: torch.Tensor) -> tuple[float, str]:
        """(keep fraction, collective) of this step, given the ratio the controller (or the
        static option) wants and the error-fed vector: by default that ratio through
        :meth:`collective`, dense when k = max(1, ⌊c·n⌋) reaches n."""
        if cost_model.topk_count(self.num_params, ratio) >= self.num_params:
            return ratio, "dense"
        return ratio, self.collective(ctx, ratio)

    def chosen_indices(self, collective: str) -> torch.Tensor | None:
        """Indices already selected for an allgather this step (None, the default: the
        aggregation selects them)."""
        return None

    def stream_weight(self, ctx: StepContext) -> float | None:
        """This rank's weight in a weighted aggregate (ScaDLES §4.2: its batch size), riding
        in the message as the extra "batch"; None (default) for the plain mean."""
        return None

    def update(self, res: Aggregate) -> None:
        """Apply the aggregate: the cluster mean as every parameter's gradient, then the
        optimizer step."""
        assign_grads(self.params, res.total / self.comm.world_size)
        self.optimizer.step()

    # -- extra per-rank floats in the aggregation message (subclass hooks) ------------------
    def piggyback(self, grad: torch.Tensor) -> list[float]:
        """Floats of this rank (from its raw flat gradient) to ride along in this step's
        aggregation message, at no extra collective. Default: none."""
        return []

    def observe_piggyback(self, ctx: StepContext, means: list[float]) -> None:
        """The cluster means of :meth:`piggyback`'s floats, identical on every rank; called
        after the optimizer step. Default: ignore."""
        return None

    def _var_score(self) -> Callable[[torch.Tensor], float] | None:
        """VAR-Topk's score: None for the paper's ‖top-k of g_ef‖² (the default of
        :func:`broadcast_index_set`), or ‖g‖ of the raw gradient ("code")."""
        if self.var_score == "paper":
            return None
        return lambda _local: float(flatten_grads(self.params).norm())

    # -- exploration snapshots -----------------------------------------------------------
    def _take_snapshot(self) -> None:
        self._snapshot = {
            "params": [p.detach().clone() for p in self.params],
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "residual": self.sparsifier.ef.residual.clone(),
        }

    def _restore_snapshot(self, fresh_residual: bool) -> None:
        snap = self._snapshot
        if snap is None:
            raise RuntimeError("no exploration snapshot to restore")
        with torch.no_grad():
            for p, saved in zip(self.params, snap["params"], strict=True):
                p.copy_(saved)
        self.optimizer.load_state_dict(copy.deepcopy(snap["optimizer"]))
        if fresh_residual:
            self.sparsifier.ef.reset()
        else:
            self.sparsifier.ef.residual.copy_(snap["residual"])
            self._snapshot = None

    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.sparsifier.state_dict(), "ratio": self.ratio}
        if self.controller is not None:
            out["controller"] = self.controller.state_dict()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sparsifier.load_state_dict(state)
        self.ratio = state["ratio"]
        if self.controller is not None:
            self.controller.load_state_dict(state["controller"])
