"""ScaDLES: weighted aggregation, LR scaling and adaptive compression (docs/methods.md §4.2,
§4.4) on real gloo workers with unequal batch sizes."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from flexsync.comm import Communicator
from flexsync.strategies import ScaDLES, StepContext
from flexsync.strategies.grads import flatten_params

BATCHES = [5, 12, 20]


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))


def _data(rank, step=0):
    g = torch.Generator().manual_seed(10 * step + rank)
    b = BATCHES[rank]
    return torch.randn(b, 6, generator=g), torch.randint(3, (b,), generator=g)


def _worker(lr_scaling):
    rank = torch.distributed.get_rank()
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    strat = ScaDLES(model.parameters(), opt, Communicator(), ratio=None,
                    lr_scaling=lr_scaling, base_batch=16)
    x, y = _data(rank)
    F.cross_entropy(model(x), y).backward()
    strat.step(StepContext(0, 0.0, batch_size=len(y)))
    return flatten_params(list(model.parameters())), strat.signals(), opt.param_groups[0]["lr"]


def _reference(scale):
    model = _model()
    xs, ys = zip(*(_data(r) for r in range(3)), strict=True)
    F.cross_entropy(model(torch.cat(xs)), torch.cat(ys)).backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.5 * scale * p.grad
    return flatten_params(list(model.parameters()))


def test_weighted_aggregate_is_the_union_batch_gradient_and_lr_is_restored(run_workers):
    res = run_workers(_worker, 3, True)
    total = sum(BATCHES)
    expected = _reference(total / 16)                   # η·Σb/B for this step
    for params, sig, lr in res:
        torch.testing.assert_close(params, expected, rtol=1e-5, atol=1e-6)
        assert lr == 0.5                                # restored after the step
        assert sig["global_batch"] == total and sig["lr_scale"] == total / 16
    assert sum(r[1]["weight"] for r in res) == pytest.approx(1.0)
    assert [r[1]["weight"] for r in res] == [b / total for b in BATCHES]


def _vote_worker(delta):
    rank = torch.distributed.get_rank()
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    strat = ScaDLES(model.parameters(), opt, Communicator(), ratio=0.3, delta=delta,
                    smoothing=1.0)
    out = []
    for step in range(4):
        x, y = _data(rank, step)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        strat.step(StepContext(step, 0.0, batch_size=len(y)))
        out.append((strat.signals()["compressed"], float(strat.sparsifier.ef.residual.abs().sum())))
    return out, strat.summary()["cnc_ratio"]


def test_majority_vote_switches_to_top_k_and_dense_steps_reset_the_residual(run_workers):
    always = run_workers(_vote_worker, 3, 1.0)          # ρ ≤ 1 always: everyone votes yes
    never = run_workers(_vote_worker, 3, 0.0)           # nobody votes (ρ > 0)
    for steps, cnc in always:
        assert [c for c, _ in steps] == [False, True, True, True]   # first step is dense
        assert steps[0][1] == 0.0 and steps[1][1] > 0.0
        assert cnc == 0.75
    for steps, cnc in never:
        assert all(not c and r == 0.0 for c, r in steps) and cnc == 0.0
    assert len({tuple(c for c, _ in r[0]) for r in always}) == 1     # every rank agrees
