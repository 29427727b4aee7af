"""AG top-k, AR-Topk (STAR/VAR) and flexible on real gloo workers (docs/methods.md §1.1–1.2).

The collective logic is checked in exact arithmetic (``values="fp32"``, int32-sized index
sets); the compact wire format of the defaults (fp16 values, block-coded indices) has its own
tests at the end."""

import torch
import torch.nn as nn

from flexsync.comm import Communicator
from flexsync.net.conditions import NetworkConditions
from flexsync.strategies import ARTopK, Flexible, StepContext, TopK

N_PARAMS = 400


class Flat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.zeros(150))
        self.b = nn.Parameter(torch.zeros(250))


def _set_grads(model, flat):
    model.a.grad = flat[:150].clone()
    model.b.grad = flat[150:].clone()


def _grad(rank, step):
    g = torch.Generator().manual_seed(100 * step + rank)
    return torch.randn(N_PARAMS, generator=g) * (1 + rank)


def _make(cls, **kw):
    model = Flat()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    return model, cls(model.parameters(), opt, Communicator(), **kw)


def _artopk_worker(index, values="fp32"):
    """Return per step: what this rank fed, its new residual, the aggregate, the broadcaster."""
    comm_rank = torch.distributed.get_rank()
    model, strat = _make(ARTopK, ratio=0.05, index=index, values=values)
    out = []
    for step in range(4):
        g = _grad(comm_rank, step)
        fed = g + strat.sparsifier.ef.residual
        _set_grads(model, g)
        before = torch.cat([model.a.detach(), model.b.detach()]).clone()
        strat.step(StepContext(step, 0.0))
        after = torch.cat([model.a.detach(), model.b.detach()])
        agg = before - after                               # lr = 1, plain SGD
        out.append({"fed": fed, "residual": strat.sparsifier.ef.residual.clone(), "agg": agg,
                    "src": strat.signals()["broadcaster"], "gain": strat.signals()["gain"],
                    "records": [(r.kind, r.nbytes) for r in strat.comm.take_records()]})
    return out


def _check_artopk(results, world):
    k = int(0.05 * N_PARAMS)
    for step in range(4):
        per_rank = [r[step] for r in results]
        agg = per_rank[0]["agg"]
        for r in per_rank:
            torch.testing.assert_close(r["agg"], agg)           # everyone applied the same
        support = set(torch.nonzero(agg).flatten().tolist())
        assert len(support) <= k
        for r in per_rank:       # non-sent positions stay in every worker's residual
            zeroed = set(torch.nonzero(r["residual"] == 0).flatten().tolist())
            assert support <= zeroed
        # Conservation: Σ_r residual_r + N·aggregate == Σ_r G_r
        lhs = sum(r["residual"] for r in per_rank) + world * agg
        torch.testing.assert_close(lhs, sum(r["fed"] for r in per_rank), rtol=1e-5, atol=1e-5)
        assert len({r["src"] for r in per_rank}) == 1
        assert len({round(r["gain"], 6) for r in per_rank}) == 1
    return [results[0][s]["src"] for s in range(4)]


def test_star_topk_support_conservation_and_round_robin(run_workers):
    res = run_workers(_artopk_worker, 3, "star")
    assert _check_artopk(res, 3) == [0, 1, 2, 0]
    k = int(0.05 * N_PARAMS)
    # one block-coded index broadcast (k low halves + one block count) and one allreduce of
    # k fp32 values (+1 gain) per step
    assert res[0][0]["records"] == [("broadcast", 2 * k + 4), ("allreduce", 4 * (k + 1))]


def test_var_topk_picks_the_largest_score_and_is_consistent(run_workers):
    res = run_workers(_artopk_worker, 3, "var")
    srcs = _check_artopk(res, 3)
    # rank 2's gradients are 3x rank 0's, so it holds the largest top-k norm at the start
    assert srcs[0] == 2


def _var_tie_worker():
    rank = torch.distributed.get_rank()
    model, strat = _make(ARTopK, ratio=0.05, index="var", values="fp32")
    g = torch.zeros(N_PARAMS)
    g[:20] = 5.0 if rank in (1, 2) else 1.0                 # ranks 1 and 2 tie
    _set_grads(model, g)
    strat.step(StepContext(0, 0.0))
    return strat.signals()["broadcaster"]


def test_var_ties_go_to_the_lowest_rank(run_workers):
    assert run_workers(_var_tie_worker, 3) == [1, 1, 1]


def _topk_worker(values="fp32"):
    rank = torch.distributed.get_rank()
    model, strat = _make(TopK, ratio=0.05, values=values)
    g = _grad(rank, 0)
    _set_grads(model, g)
    strat.step(StepContext(0, 0.0))
    agg = -torch.cat([model.a.detach(), model.b.detach()])
    sent = g - strat.sparsifier.ef.residual
    return g, sent, agg, [(r.kind, r.nbytes) for r in strat.comm.take_records()]


def test_allgather_topk_is_the_mean_of_every_workers_own_top_k(run_workers):
    res = run_workers(_topk_worker, 3)
    k = int(0.05 * N_PARAMS)
    mean_sent = sum(r[1] for r in res) / 3
    for g, sent, agg, records in res:
        assert int((sent != 0).sum()) == k
        assert set(torch.nonzero(sent).flatten().tolist()) == set(
            torch.topk(g.abs(), k).indices.tolist())
        torch.testing.assert_close(agg, mean_sent)
        # k fp32 values + k block-coded indices (+ one block count) + the gain
        assert records == [("allgather", 4 * k + 2 * k + 4 + 4)]


def _flexible_worker():
    """Rank-dependent gradients; conditions flip between two regimes every 3 steps."""
    rank = torch.distributed.get_rank()
    model, strat = _make(Flexible, ratio=0.1)
    slow_latency = NetworkConditions(50e-3, 1.25e9)      # latency-bound: allgather wins
    low_bandwidth = NetworkConditions(1e-5, 1.25e5)      # bandwidth-bound: ART-Ring wins
    chosen = []
    for step in range(6):
        _set_grads(model, _grad(rank, step))
        cond = slow_latency if (step // 3) % 2 == 0 else low_bandwidth
        strat.step(StepContext(step, 0.0, cond, priced_params=10_000_000))
        chosen.append(strat.signals()["collective"])
    return chosen


def test_flexible_choice_is_identical_on_all_ranks_and_follows_the_network(run_workers):
    res = run_workers(_flexible_worker, 4)
    assert all(r == res[0] for r in res)
    assert res[0] == ["allgather"] * 3 + ["art_ring"] * 3


def _snapshot_worker():
    model, strat = _make(ARTopK, ratio="moo", moo={
        "warmup_steps": 2, "explore_steps": 2, "mode": "snapshot", "candidates": [0.1, 0.02]})
    strat.optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rank = torch.distributed.get_rank()
    states = {}
    for step in range(7):
        if step == 2:      # exploration starts now: record what must come back
            states["before"] = (
                torch.cat([p.detach().clone().flatten() for p in model.parameters()]),
                [strat.optimizer.state[p]["momentum_buffer"].clone()
                 for p in model.parameters()],
                strat.sparsifier.ef.residual.clone())
        _set_grads(model, _grad(rank, step))
        strat.step(StepContext(step, 0.0))
        if step == 5:      # 2 candidates x 2 steps done: everything restored
            states["after"] = (
                torch.cat([p.detach().clone().flatten() for p in model.parameters()]),
                [strat.optimizer.state[p]["momentum_buffer"].clone()
                 for p in model.parameters()],
                strat.sparsifier.ef.residual.clone())
    return states, strat.controller.gains, strat.signals()["moo_phase"]


def test_snapshot_exploration_restores_model_optimizer_and_residual_bit_exactly(run_workers):
    for states, gains, phase in run_workers(_snapshot_worker, 2):
        p0, m0, r0 = states["before"]
        p1, m1, r1 = states["after"]
        assert torch.equal(p0, p1) and torch.equal(r0, r1)
        assert all(torch.equal(a, b) for a, b in zip(m0, m1, strict=True))
        assert len(gains) == 2 and gains[0] > gains[1] > 0
        assert phase == "run"


def test_default_messages_are_fp16_values_and_a_real_wire_size(run_workers):
    """AG top-k: k fp16 values + k block-coded positions + the fp32 gain; the aggregate is
    the mean of the fp16-rounded values and each rank's residual keeps its own rounding error
    (sent + residual == fed)."""
    res = run_workers(_topk_worker, 3, "fp16")
    k = int(0.05 * N_PARAMS)
    mean_sent = sum(r[1] for r in res) / 3
    for g, sent, agg, records in res:
        assert records == [("allgather", 2 * k + (2 * k + 4) + 4)]
        support = torch.topk(g.abs(), k).indices
        torch.testing.assert_close(sent[support], g[support].half().float())
        assert 0 < float((g[support] - sent[support]).abs().max()) < 1e-2
        torch.testing.assert_close(agg, mean_sent)


def test_artopk_fp16_conserves_up_to_the_fp16_sum(run_workers):
    """AR-Topk with fp16 values: an allreduce of k fp16 values, the gain in a 4-byte fp32
    allreduce of its own; Σ residuals + N·aggregate equals Σ fed up to the rounding of the
    fp16 sum itself."""
    res = run_workers(_artopk_worker, 3, "star", "fp16")
    k = int(0.05 * N_PARAMS)
    assert res[0][0]["records"] == [("broadcast", 2 * k + 4), ("allreduce", 2 * k),
                                    ("allreduce", 4)]
    for step in range(4):
        per_rank = [r[step] for r in res]
        lhs = sum(r["residual"] for r in per_rank) + 3 * per_rank[0]["agg"]
        torch.testing.assert_close(lhs, sum(r["fed"] for r in per_rank), rtol=2e-3, atol=1e-6)
