"""GraVAC (docs/methods.md §3(a), §5.2): schedules, throughput table, ε tests, consensus,
window-boundary scale-up and checkpoints; the multi-process parts on real gloo workers."""

import copy

import pytest
import torch
import torch.nn as nn

from flexsync.comm import Communicator
from flexsync.comm.sparse import allgather_nbytes
from flexsync.strategies import GraVAC, StepContext
from flexsync.strategies.gravac import SmoothedGain, ThroughputTable, candidate_schedule

N_PARAMS = 1000


class Flat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.zeros(400))
        self.b = nn.Parameter(torch.zeros(600))


def _set_grads(model, flat):
    model.a.grad = flat[:400].clone()
    model.b.grad = flat[400:].clone()


def _grad(rank, step):
    """Rank-dependent: rank 0's energy sits in a few entries (high local gain), the others'
    is spread out (low local gain)."""
    g = torch.randn(N_PARAMS, generator=torch.Generator().manual_seed(100 * step + rank))
    if rank == 0:
        g[:50] *= 40.0
    return g


def _make(**kw):
    model = Flat()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return model, GraVAC(model.parameters(), opt, Communicator(), **kw)


def _ctx(step):
    return StepContext(step, 0.0, prev_step_s=0.5, batch_size=8)


# -- pure pieces ---------------------------------------------------------------------------------
def test_candidate_schedules_match_the_paper():
    assert candidate_schedule(10, 1000, "exponential") == [20, 40, 160, 1000]
    assert candidate_schedule(10, 2000, "geometric") == [20, 40, 80, 160, 320, 640, 1280, 2000]
    with pytest.raises(ValueError):
        candidate_schedule(10, 5, "exponential")


def test_saturation_picks_the_smaller_factor_and_keeps_running_means():
    t = ThroughputTable()
    for v in (1000.0, 1059.8):          # mean 1029.9, the paper's 1280x entry
        t.add(1280.0, v)
    t.add(2000.0, 1035.4)
    t.add(10.0, 300.0)
    assert t.mean[1280.0] == pytest.approx(1029.9) and t.count[1280.0] == 2
    assert t.saturated(0.01) == 1280.0            # within 1 %: the lower CF wins
    assert t.saturated(0.001) is None             # not within 0.1 %
    single = ThroughputTable()
    single.add(10.0, 5.0)
    assert single.saturated(1.0) is None          # needs two entries


@pytest.mark.parametrize("mode", ["ratio_of_ewma", "ewma_of_ratio"])
def test_smoothed_gains_stay_in_unit_interval_even_after_a_reset(mode):
    gen = torch.Generator().manual_seed(0)
    g = SmoothedGain(0.3, mode)
    for i in range(50):
        fed = float(torch.rand(1, generator=gen)) * (10 if i % 7 else 1000)
        g.update(fed * float(torch.rand(1, generator=gen)), fed)
        assert 0.0 <= g.value <= 1.0
        if i == 25:
            g.reset()


# -- on workers ----------------------------------------------------------------------------------
def _epsilon_worker(epsilon, consensus="piggyback"):
    rank = torch.distributed.get_rank()
    model, strat = _make(epsilon=epsilon, window=3, theta_min=10, theta_max=1000,
                         consensus=consensus)
    out = []
    for step in range(7):
        _set_grads(model, _grad(rank, step))
        strat.step(_ctx(step))
        s = strat.signals()
        records = [(r.kind, r.tag, r.nbytes) for r in strat.comm.take_records()]
        residual = strat.sparsifier.ef.residual.abs().max().item()
        out.append((s, residual, records, strat.min_gain.value))
    return out, strat.summary()["gravac"]


def test_epsilon_zero_always_sends_the_candidate_with_multilevel_k(run_workers):
    res = run_workers(_epsilon_worker, 3, 0.0)
    per_rank = [r[0] for r in res]
    for step, rows in enumerate(zip(*per_rank, strict=True)):
        sig = rows[0][0]
        assert all(r[0] == sig for r in rows)                   # every rank agrees
        assert sig["decision"] == "candidate" and sig["cf"] == sig["theta_c"]
        assert 0.0 <= sig["delta_c"] <= 1.0 and 0.0 <= sig["delta_min"] <= 1.0
        k = max(1, int(N_PARAMS / sig["cf"]))
        assert sig["k"] == k
        # one allgather of k values + k indices + this rank's (δ_min, δ_c), whose mean decides
        # the next step; an explicit consensus allreduce only when no agreed gain exists yet
        # (the first step, and a new candidate at each window boundary)
        sent = [("allgather", "values+indices", allgather_nbytes(N_PARAMS, k, 2, "fp16"))]
        if step in (0, 3, 6):
            sent.insert(0, ("allreduce", "consensus", 16))
        assert rows[0][2] == sent
    # window 3: candidates advance 20 -> 40 -> 160 at steps 3 and 6
    assert [r[0]["theta_c"] for r in per_rank[0]] == [20, 20, 20, 40, 40, 40, 160]


def test_epsilon_above_one_always_sends_dense_and_empties_the_residual(run_workers):
    res = run_workers(_epsilon_worker, 3, 1.5)
    for out, summary in res:
        for sig, residual_max, records, _ in out:
            assert sig["decision"] == "dense" and sig["cf"] == 1.0
            assert residual_max == 0.0
            assert records[-1] == ("allreduce", "gradients", 4 * (N_PARAMS + 2))
        assert summary["decisions"] == {"dense": 7}
        # every step but the last has its modeled duration: N·b/t·δ = 3·8/0.5·1
        assert summary["throughput_table"] == {"1": {"throughput": 48.0, "steps": 6}}


@pytest.mark.parametrize("consensus", ["piggyback", "allreduce"])
def test_decisions_follow_the_agreed_gain_not_the_local_one(run_workers, consensus):
    """Rank 0's local δ_min is far above ε = 0.6 and the others' below it: the mean decides,
    identically everywhere (a local decision would pick different collectives and hang)."""
    res = run_workers(_epsilon_worker, 3, 0.6, consensus)
    local = [[row[3] for row in r[0]] for r in res]
    assert local[0][-1] > 0.6 > local[1][-1]                     # ranks disagree locally
    for step in range(7):
        sigs = [r[0][step][0] for r in res]
        assert all(s == sigs[0] for s in sigs)
        expected = "min" if sigs[0]["delta_min"] >= 0.6 else "dense"
        if sigs[0]["delta_c"] >= 0.6:
            expected = "candidate"
        assert sigs[0]["decision"] == expected
        if consensus == "allreduce":     # this step's own gains, agreed before the tests
            assert sum(1 for r in res[0][0][step][2] if r[1] == "consensus") == 1
            mean = sum(r[0][step][3] for r in res) / 3
            assert sigs[0]["delta_min"] == pytest.approx(min(1.0, mean), rel=1e-6)


def _scaleup_worker():
    rank = torch.distributed.get_rank()
    model, strat = _make(epsilon=0.0, window=2, omega=0.5, theta_min=10, theta_max=1000)
    g = torch.zeros(N_PARAMS)
    g[:3] = 1.0 + rank                  # 3 nonzeros: every CF up to 333x keeps all the energy
    trace = []
    for step in range(6):
        _set_grads(model, g)
        strat.step(_ctx(step))
        trace.append((strat.theta_min, strat.theta_c, strat.frozen))
    return trace


def test_window_boundary_promotes_the_minimum_and_advances_the_candidate(run_workers):
    res = run_workers(_scaleup_worker, 2)
    assert res[0] == res[1]
    # equal gains at 10x and 20x (within ω): promote θ_min to 20, advance θ_c to 40. At step 4
    # promote to 40 and advance to 160, but T_comp[20] == T_comp[40] saturates: the smaller CF
    # (20) is below θ_min, so θ_c = θ_min = 40 and the state freezes.
    assert res[0] == [(10, 20, False), (10, 20, False), (20, 40, False), (20, 40, False),
                      (40, 40, True), (40, 40, True)]


def _checkpoint_worker():
    rank = torch.distributed.get_rank()
    model, strat = _make(epsilon=0.6, window=2)
    for step in range(5):
        _set_grads(model, _grad(rank, step))
        strat.step(_ctx(step))
    saved = (copy.deepcopy(model.state_dict()), copy.deepcopy(strat.optimizer.state_dict()),
             copy.deepcopy(strat.state_dict()))
    model2, strat2 = _make(epsilon=0.6, window=2)
    model2.load_state_dict(saved[0])
    strat2.optimizer.load_state_dict(saved[1])
    strat2.load_state_dict(saved[2])
    traces = []
    for m, s in ((model, strat), (model2, strat2)):
        t = []
        for step in range(5, 10):
            _set_grads(m, _grad(rank, step))
            s.step(_ctx(step))
            t.append(s.signals())
        traces.append((t, torch.cat([p.detach().flatten() for p in m.parameters()]),
                       s.summary()))
    return traces


def test_state_survives_a_checkpoint_round_trip(run_workers):
    for (t1, p1, s1), (t2, p2, s2) in run_workers(_checkpoint_worker, 2):
        assert t1 == t2 and s1 == s2
        assert torch.equal(p1, p2)
