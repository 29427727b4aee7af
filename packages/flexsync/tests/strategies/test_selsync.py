"""SelSync (docs/methods.md §2.1–2.2, §5.2): the significance signal, and in real gloo workers
δ = 0 ≡ BSP, δ = ∞ ≡ local steps after warm-up, identical replicas after every PA sync, and
one agreed sync flag when a single rank's update is significant."""

import math

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from flexsync.comm import Communicator
from flexsync.strategies import STRATEGIES, Dense, SelSync, StepContext
from flexsync.strategies.grads import flatten_params
from flexsync.strategies.significance import Significance, gradient_statistic, relative_change
from flexsync.strategies.smoothing import EWMA, WindowedEWMA

STEPS, WORLD, BATCH, WINDOW = 12, 3, 8, 3


def test_windowed_ewma_is_undefined_until_full_then_weights_newest_most():
    w = WindowedEWMA(3, 0.5)
    assert w.update(1.0) is None and w.update(2.0) is None
    # newest weight (1-a)^1 = .5, then .25, .125
    assert w.update(4.0) == pytest.approx((0.5 * 4 + 0.25 * 2 + 0.125 * 1) / 0.875)
    assert w.update(8.0) == pytest.approx((0.5 * 8 + 0.25 * 4 + 0.125 * 2) / 0.875)
    e = EWMA(0.25)
    assert e.update(4.0) == 4.0 and e.update(0.0) == 3.0


def test_significance_forms_and_guards():
    p1, p2 = torch.zeros(3, requires_grad=True), torch.zeros(4, requires_grad=True)
    p1.grad, p2.grad = torch.tensor([3.0, 0.0, 4.0]), torch.tensor([1.0, 1.0, 1.0, 1.0])
    assert gradient_statistic([p1, p2], "paper_sq_global") == pytest.approx(25 + 4)
    assert gradient_statistic([p1, p2], "code_sum_layer_l2") == pytest.approx(5 + 2)
    assert relative_change(0.0, 0.0) == 0.0 and relative_change(1.0, 0.0) == math.inf
    sig = Significance(window=2, smoothing=0.0)        # a = 0: plain 2-step mean
    values = []
    for scale in (1.0, 1.0, 1.0, 2.0):
        p1.grad = torch.tensor([scale, 0.0, 0.0])
        values.append(sig.update([p1]))
    # s = mean of the last two u: s1 = 1 (step 2), s2 = 1, s3 = (1 + 4) / 2
    assert values[:2] == [None, None] and values[2] == 0.0 and values[3] == pytest.approx(1.5)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 5))


def _sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)


def _batches(rank):
    g = torch.Generator().manual_seed(100 + rank)       # each rank its own data
    return [(torch.randn(BATCH, 1, 8, 8, generator=g), torch.randint(5, (BATCH,), generator=g))
            for _ in range(STEPS)]


def _train(strategy_fn, rank, check=None):
    model = _model()
    opt = _sgd(model)
    strat = strategy_fn(model, opt)
    log = []
    for step, (x, y) in enumerate(_batches(rank)):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        strat.step(StepContext(step, 0.0))
        sig = strat.signals()
        log.append(sig.get("sync"))
        if check is not None:
            check(model, sig)
    return model, strat, log


def _gathered(t: torch.Tensor) -> list[torch.Tensor]:
    out = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(out, t)
    return out


class _Scripted(Significance):
    """Δ = 1 on rank 0 at the scripted steps, 0 everywhere else (never undefined)."""

    def __init__(self, rank, steps):
        super().__init__(window=1)
        self.rank, self.steps, self.t = rank, steps, -1

    def update(self, params):
        self.t += 1
        return 1.0 if self.rank == 0 and self.t in self.steps else 0.0


def _worker():
    rank = dist.get_rank()
    comm = Communicator()
    out = {}

    def selsync(**kw):
        def make(model, opt):
            bufs = [b for b in model.buffers() if b.is_floating_point()]
            return SelSync(model.parameters(), opt, comm, window=WINDOW, smoothing=0.1,
                           buffers=bufs, **kw)
        return make

    # δ = 0 against dense BSP
    bsp, _, _ = _train(lambda m, o: Dense(m.parameters(), o, comm), rank)
    sel0, s0, log0 = _train(selsync(delta=0.0), rank)
    out["bsp"] = flatten_params(list(bsp.parameters()))
    out["sel0"] = flatten_params(list(sel0.parameters()))
    out["log0"] = log0

    # δ = ∞ without the bound: only the W forced warm-up syncs (Δ undefined for W steps)
    _, sinf, loginf = _train(selsync(delta=math.inf, max_local_steps=None), rank)
    out["loginf"], out["inf_summary"] = loginf, sinf.summary()
    # δ = ∞ with a bound of 3: a sync after every run of 3 local steps
    _, _, out["bounded"] = _train(selsync(delta=math.inf, max_local_steps=3), rank)

    # a middling δ: some steps sync, some do not; after every sync the replicas are identical
    checks = []

    def identical(model, sig):
        state = torch.cat([flatten_params(list(model.parameters())),
                           *[b.reshape(-1) for b in model.buffers() if b.is_floating_point()]])
        same = all(torch.equal(state, o) for o in _gathered(state))
        checks.append((sig["sync"], same))

    _train(selsync(delta=0.3), rank, identical)
    out["checks"] = checks

    # only rank 0 significant at steps {2, 5}: every rank syncs exactly there
    def scripted(model, opt):
        s = SelSync(model.parameters(), opt, comm, delta=0.5, max_local_steps=None)
        s.significance = _Scripted(rank, {2, 5})
        return s
    _, _, out["scripted"] = _train(scripted, rank)

    # quantile mode: BSP during calibration, then a δ agreed by all ranks
    _, sq, logq = _train(selsync(delta_mode="quantile", quantile=0.5, calibration_steps=6), rank)
    out["q_log"], out["q_threshold"] = logq, sq.threshold
    return out


def test_selsync_in_gloo_workers(run_workers):
    assert STRATEGIES["selsync"] is SelSync
    res = run_workers(_worker, WORLD)
    for r in res:
        # δ = 0: every step syncs and the result is BSP's (momentum + weight decay, PA after step)
        assert r["log0"] == [1] * STEPS
        torch.testing.assert_close(r["sel0"], r["bsp"], rtol=1e-5, atol=1e-6)
        # δ = ∞: W forced syncs, then never
        assert r["loginf"] == [1] * WINDOW + [0] * (STEPS - WINDOW)
        assert r["inf_summary"]["lssr"] == pytest.approx((STEPS - WINDOW) / STEPS)
        assert r["inf_summary"]["comm_reduction"] == pytest.approx(STEPS / WINDOW)
        assert r["bounded"] == [1] * WINDOW + [0, 0, 0, 1] * ((STEPS - WINDOW) // 4) + [0]
        # replicas (parameters and BN buffers) identical after every PA sync
        synced = [same for s, same in r["checks"] if s]
        assert synced and all(synced)
        assert any(s == 0 for s, _ in r["checks"])         # the run did skip some syncs
        assert any(not same for s, same in r["checks"] if not s)
        # one significant rank makes everyone sync
        assert r["scripted"] == [1 if t in (2, 5) else 0 for t in range(STEPS)]
        assert r["q_log"][:7] == [1] * 7 and 0 < r["q_threshold"] < math.inf
    assert len({r["q_threshold"] for r in res}) == 1
    assert all(torch.equal(res[0]["sel0"], r["sel0"]) for r in res)


def test_gradient_aggregation_ablation_keeps_diverged_replicas_apart(run_workers):
    def worker():
        comm = Communicator()
        rank = dist.get_rank()
        model = _model()
        opt = _sgd(model)
        s = SelSync(model.parameters(), opt, comm, delta=0.0, aggregation="gradient")
        for step, (x, y) in enumerate(_batches(rank)):
            if step == 0:           # diverge the replicas before the first (GA) sync
                with torch.no_grad():
                    model[-1].bias.add_(0.01 * rank)
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            s.step(StepContext(step, 0.0))
        return flatten_params(list(model.parameters())), s.summary(), comm.total_bytes
    res = run_workers(worker, 2)
    p0, p1 = res[0][0], res[1][0]
    # GA moves every replica by the same averaged update, so the initial offset survives
    diff = (p0 - p1).abs()
    assert diff[:-5].max() < 1e-6                      # identical but for the offset bias
    torch.testing.assert_close(diff[-5:], torch.full((5,), 0.01), rtol=0.02, atol=0.0)
    n = p0.numel()
    assert res[0][1]["lssr"] == 0.0
    assert res[0][2] == STEPS * (4 * n + 8)        # gradients + one fp64 flag per step
