"""The shared machinery of the top-k strategies (AG top-k, AR-Topk, flexible).

One step: error-feed the flat gradient, pick the keep fraction (static, or from the MOO
controller), pick the collective (the one thing subclasses decide), sparsify and aggregate,
update the residual, and step the optimizer. A keep fraction of 1 sends dense and resets the
residual. Each worker's compression gain rides along in the aggregation message, so the
cluster-mean gain is known on every rank without an extra collective.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
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
        elif isinstance(ratio, int | float) and 0 < ratio <= 1:
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
        broadcaster = None
        if k >= n:                                     # dense: everything is sent
            extras = torch.tensor([1.0, *cands])
            total = torch.cat([fed, extras.to(fed)])
            self.comm.allreduce(total, tag="gradients")
            agg, ex = total[:n], total[n:]
            self.ef.reset()
            collective = "dense"
        else:
            collective = self.collective(ctx, c)
            if collective == "allgather":
                idx = self._select(fed, c)
                gain = compression_gain(fed[idx], fed, self.gain_norm)
                agg, ex = allgather_sparse(self.comm, fed[idx], idx, n,
                                           torch.tensor([gain, *cands]))
            else:
                idx, broadcaster = self._broadcast_index_set(ctx, fed, c, k)
                u = fed[idx]
                gain = compression_gain(u, fed, self.gain_norm)
                algo = "tree" if collective == "art_tree" else "ring"
                vals, ex = allreduce_values(self.comm, u, algo, torch.tensor([gain, *cands]))
                agg = torch.zeros_like(fed)
                agg[idx] = vals
            self.ef.absorb(fed, idx)
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

    def _broadcast_index_set(self, ctx: StepContext, fed: torch.Tensor, ratio: float, k: int
                             ) -> tuple[torch.Tensor, int]:
        """STAR: round-robin broadcaster. VAR: the rank with the largest score."""
        world = self.comm.world_size
        local = None
        if self.index == "star":
            src = ctx.step % world
        else:
            local = self._select(fed, ratio)
            if self.var_score == "paper":
                score = float(fed[local].pow(2).sum())
            else:
                score = float(flatten_grads(self.params).norm())
            src = agree_argmax(self.comm, score)
        if self.comm.rank == src and local is None:
            local = self._select(fed, ratio)
        if local is not None and local.numel() != k:       # layer-wise k may differ
            raise ValueError("AR-Topk needs exactly k indices; use selector topk, randomk "
                             "or threshold")
        return broadcast_indices(self.comm, local, k, src, fed.device), src

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
