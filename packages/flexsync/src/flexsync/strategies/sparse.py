"""The shared machinery of the top-k strategies (AG top-k, AR-Topk, flexible).

One step: error-feed the flat gradient, pick the keep fraction (static, or from the MOO
controller), pick the collective (the one thing subclasses decide), sparsify and aggregate,
update the residual, and step the optimizer. A keep fraction of 1 sends dense and resets the
residual. Each worker's compression gain rides along in the aggregation message, so the
cluster-mean gain is known on every rank without an extra collective.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch

from flexsync.comm import Communicator
from flexsync.comm.consensus import agree_argmax
from flexsync.comm.sparse import allgather_sparse, allreduce_values, broadcast_indices
from flexsync.compress import ErrorFeedback, candidate_gains, compression_gain, select
from flexsync.net import cost_model
from flexsync.net.conditions import NetworkConditions
from flexsync.strategies.base import StepContext, Strategy
from flexsync.strategies.grads import assign_grads, flatten_grads
from flexsync.strategies.moo import MOOController, Plan

INDEX_CHOICES = ("star", "var")

Selector = Callable[[torch.Tensor, float], torch.Tensor]


@dataclass
class Aggregate:
    """What one sparse (or dense) aggregation of an error-fed vector produced, on every rank.

    ``total`` is the *sum* over ranks of what each sent, in the fed vector's layout (divide
    by the world size for the mean); ``extras`` the sum over ranks of the floats that rode
    along, the first being each rank's compression gain.
    """

    total: torch.Tensor
    extras: torch.Tensor
    collective: str            # "dense", "allgather", "art_ring" or "art_tree"
    k: int                     # entries each rank sent (n when dense)
    broadcaster: int | None = None


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
    return broadcast_indices(comm, local, k, src, fed.device), src


def aggregate_fed(comm: Communicator, fed: torch.Tensor, ef: ErrorFeedback, ratio: float,
                  collective: str, select_fn: Selector, *, step: int, index: str = "star",
                  var_score: Callable[[torch.Tensor], float] | None = None,
                  gain_norm: str = "sq", extras: list[float] | None = None) -> Aggregate:
    """One aggregation of the error-fed vector ``fed`` at keep fraction ``ratio`` through
    ``collective`` ("allgather", "art_ring" or "art_tree"), updating the residual ``ef``.

    When k = max(1, ⌊c·n⌋) reaches n everything is sent by one dense allreduce and the
    residual resets; otherwise the selected entries are sent and the rest stays in ``ef``.
    Each rank's compression gain and ``extras`` ride along in the same message. This is the
    shared core of the top-k strategies and the DDP communication hook.
    """
    n = fed.numel()
    extra = list(extras or [])
    k = cost_model.topk_count(n, ratio)
    if k >= n:                                     # dense: everything is sent
        total = torch.cat([fed, torch.tensor([1.0, *extra]).to(fed)])
        comm.allreduce(total, tag="gradients")
        ef.reset()
        return Aggregate(total[:n], total[n:], "dense", n)
    if collective == "allgather":
        idx = select_fn(fed, ratio)
        gain = compression_gain(fed[idx], fed, gain_norm)
        agg, ex = allgather_sparse(comm, fed[idx], idx, n, torch.tensor([gain, *extra]))
        ef.absorb(fed, idx)
        return Aggregate(agg, ex, collective, int(idx.numel()))
    if collective not in ("art_ring", "art_tree"):
        raise ValueError(f"collective must be one of {cost_model.COMPRESSED_COLLECTIVES}, "
                         f"got {collective!r}")
    idx, src = broadcast_index_set(comm, fed, ratio, k, step, index, select_fn, var_score)
    u = fed[idx]
    gain = compression_gain(u, fed, gain_norm)
    algo = "tree" if collective == "art_tree" else "ring"
    vals, ex = allreduce_values(comm, u, algo, torch.tensor([gain, *extra]))
    agg = torch.zeros_like(fed)
    agg[idx] = vals
    ef.absorb(fed, idx)
    return Aggregate(agg, ex, collective, k, src)


class SparseStrategy(Strategy):
    """Base of the top-k strategies. Subclasses implement :meth:`collective` and :meth:`cost`.

    Args:
        ratio: keep fraction c in (0, 1], or "moo" to let :class:`MOOController` choose it.
        selector: "topk" (fused), "layerwise", "randomk" or "threshold" (sampled, DGC-style).
        index: AR-Topk's broadcaster: "star" (round-robin, step mod N) or "var" (largest
            local top-k score, lowest rank on ties).
        var_score: "paper" (‖top-k values of g_ef‖²) or "code" (‖g‖ of the raw gradient).
        gain_norm: "sq" (paper) or "l2" (the original code).
        moo: keyword options of :class:`MOOController` when ``ratio="moo"``.
        seed: seeds the selectors' own generator (random-k, thresholds).
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                 comm: Communicator, ratio: float | str = 0.01, selector: str = "topk",
                 index: str = "star", var_score: str = "paper", gain_norm: str = "sq",
                 moo: dict[str, Any] | None = None, seed: int = 0, **base: Any) -> None:
        super().__init__(params, optimizer, comm, **base)
        if ratio == "moo":
            self.controller: MOOController | None = MOOController(**(moo or {}))
        elif isinstance(ratio, int | float) and not isinstance(ratio, bool) and 0 < ratio <= 1:
            self.controller = None
            if moo:
                raise ValueError("'moo' options need ratio: moo")
        else:
            raise ValueError(f"ratio must be in (0, 1] or 'moo', got {ratio!r}")
        if index not in INDEX_CHOICES:
            raise ValueError(f"index must be one of {INDEX_CHOICES}, got {index!r}")
        if var_score not in ("paper", "code"):
            raise ValueError(f"var_score must be 'paper' or 'code', got {var_score!r}")
        self.ratio = float(ratio) if self.controller is None else self.controller.ratio
        self.selector = selector
        self.index = index
        self.var_score = var_score
        self.gain_norm = gain_norm
        self.sizes = [p.numel() for p in self.params]
        device = self.params[0].device
        self.ef = ErrorFeedback(self.num_params, device, self.params[0].dtype)
        self.generator = torch.Generator().manual_seed(seed * 7919 + comm.rank)
        self._snapshot: dict[str, Any] | None = None
        select(selector, torch.zeros(4), 0.5, generator=self.generator)   # validate the name

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
        plan = self.controller.plan(ctx.step) if self.controller else Plan(self.ratio, "static")
        if plan.take_snapshot:
            self._take_snapshot()
        c = plan.ratio
        grad = flatten_grads(self.params)
        fed = self.ef.feed(grad)
        n, world = self.num_params, self.comm.world_size
        online = self.controller is not None and self.controller.mode == "online"
        cands = candidate_gains(fed, self.controller.candidates, self.gain_norm) if online else []
        cands += self.piggyback(grad)
        k = cost_model.topk_count(n, c)
        collective = self.collective(ctx, c) if k < n else "dense"
        res = aggregate_fed(self.comm, fed, self.ef, c, collective, self._select,
                            step=ctx.step, index=self.index, var_score=self._var_score(),
                            gain_norm=self.gain_norm, extras=cands)
        agg, ex, collective, broadcaster = res.total, res.extras, res.collective, res.broadcaster
        agg /= world
        ex = (ex / world).tolist()
        assign_grads(self.params, agg)
        self.optimizer.step()

        self._signals = {"ratio": c, "k": min(k, n), "collective": collective, "gain": ex[0]}
        if broadcaster is not None:
            self._signals["broadcaster"] = broadcaster
        n_cands = len(self.controller.candidates) if online else 0
        self.observe_piggyback(ctx, ex[1 + n_cands:])
        if self.controller is not None:
            self._signals["moo_phase"] = plan.phase
            action = self.controller.observe(
                ctx.step, plan, ex[0], ex[1:1 + n_cands] if online else None, ctx.conditions,
                lambda r: self.cost(r, ctx.conditions, ctx))
            if action is not None:
                self._restore_snapshot(fresh_residual=action == "restore_fresh")
            self.ratio = self.controller.ratio

    # -- extra per-rank floats in the aggregation message (subclass hooks) ------------------
    def piggyback(self, grad: torch.Tensor) -> list[float]:
        """Floats of this rank (from its raw flat gradient) to ride along in this step's
        aggregation message, at no extra collective. Default: none."""
        return []

    def observe_piggyback(self, ctx: StepContext, means: list[float]) -> None:
        """The cluster means of :meth:`piggyback`'s floats, identical on every rank; called
        after the optimizer step. Default: ignore."""
        return None

    def _select(self, fed: torch.Tensor, ratio: float) -> torch.Tensor:
        return select(self.selector, fed, ratio, sizes=self.sizes, generator=self.generator)

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
            "residual": self.ef.residual.clone(),
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
            self.ef.reset()
        else:
            self.ef.residual.copy_(snap["residual"])
            self._snapshot = None

    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ef": self.ef.state_dict(), "ratio": self.ratio,
                               "generator": self.generator.get_state()}
        if self.controller is not None:
            out["controller"] = self.controller.state_dict()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ef.load_state_dict(state["ef"])
        self.ratio = state["ratio"]
        self.generator.set_state(state["generator"])
        if self.controller is not None:
            self.controller.load_state_dict(state["controller"])
