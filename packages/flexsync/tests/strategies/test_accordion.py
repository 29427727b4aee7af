"""Accordion (docs/methods.md §3(a) baseline): the critical-regime detector switches AG top-k
between the low and the high CF, identically on every rank."""

import torch
import torch.nn as nn

from flexsync.comm import Communicator
from flexsync.comm.sparse import allgather_nbytes
from flexsync.strategies import Accordion, StepContext

N_PARAMS = 1000


class Flat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.zeros(400))
        self.b = nn.Parameter(torch.zeros(600))


def _worker():
    rank = torch.distributed.get_rank()
    model = Flat()
    strat = Accordion(model.parameters(), torch.optim.SGD(model.parameters(), lr=0.1),
                      Communicator(), low_cf=10, high_cf=100, eta=0.2, window=2,
                      smoothing=0.0, interval=2)
    out = []
    for step in range(12):
        # rank-dependent noise; the cluster's gradient scale doubles every 2 steps until step 6
        scale = 2.0 ** min(step // 2, 3) * (1 + rank)
        g = scale * torch.randn(N_PARAMS, generator=torch.Generator().manual_seed(step))
        model.a.grad, model.b.grad = g[:400].clone(), g[400:].clone()
        strat.step(StepContext(step, 0.0))
        records = [(r.kind, r.nbytes) for r in strat.comm.take_records()]
        out.append((strat.signals()["cf"], strat.signals()["critical"], records))
    return out, strat.summary()


def test_detector_goes_from_low_to_high_cf_in_agreement(run_workers):
    res = run_workers(_worker, 3)
    assert all(r[0] == res[0][0] for r in res)
    cfs = [cf for cf, _, _ in res[0][0]]
    # critical while the window fills and while the signal doubles; calm once it is flat
    assert cfs[:8] == [10.0] * 8 and cfs[-2:] == [100.0, 100.0]
    for cf, _, records in res[0][0]:
        k = int(N_PARAMS / cf)
        # one allgather: k fp16 values + k coded indices + the gain + the piggybacked norm sum
        assert records == [("allgather", allgather_nbytes(N_PARAMS, k, 2, "fp16"))]
    assert res[0][1] == {"accordion": {"cf_steps": {"10": 10, "100": 2}}}


def _slow_growth(interval):
    """A cluster gradient whose scale grows 1.5 % a step for 300 steps: sixfold overall, yet
    never 20 % between consecutive steps (the CNN workload's signal grew like this)."""
    def work():
        model = Flat()
        opts = {} if interval is None else {"interval": interval}
        strat = Accordion(model.parameters(), torch.optim.SGD(model.parameters(), lr=0.0),
                          Communicator(), **opts)
        cfs = []
        for step in range(300):
            g = 1.015 ** step * torch.randn(N_PARAMS,
                                            generator=torch.Generator().manual_seed(step))
            model.a.grad, model.b.grad = g[:400].clone(), g[400:].clone()
            strat.step(StepContext(step, 0.0))
            cfs.append(strat.signals()["cf"])
        return cfs
    return work


def test_the_default_detector_sees_a_signal_that_grows_slowly_but_steadily(run_workers):
    default = run_workers(_slow_growth(None), 2)[0]
    per_step = run_workers(_slow_growth(1), 2)[0]
    # per-step comparison: the window fills, then no step changes the smoothed signal by 20 %
    assert set(per_step[120:]) == {1000.0}
    # the default compares with 100 steps earlier: a 4.4x growth is critical all along
    assert set(default[120:]) == {10.0}
