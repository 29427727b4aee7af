"""Network conditions and replica agreement through DistributedOptimizer.

Specification:

* ``conditions=`` takes a NetworkConditions, a mapping of config units or ``"measure"``,
  and refuses anything else naming the field and what it allows (before communicating);
* with ``conditions="measure"`` the wrapper fits α-β from its own collectives and every rank
  holds the same estimate;
* ``opt.sync()`` makes replicas that drifted apart under local SGD equal to their mean, and
  is a no-op (no traffic) for a strategy whose replicas never differ.
"""

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from flexsync import ConfigError, DistributedOptimizer
from flexsync.integrations.optimizer import conditions_source
from flexsync.net.conditions import FixedConditions, NetworkConditions
from flexsync.net.estimate import MeasuredConditions
from flexsync.strategies.grads import flatten_params


def _model(width: int = 16) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(32, width), nn.ReLU(), nn.Linear(width, 3))


def _loss(model: nn.Module, step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(100 * step + dist.get_rank())
    x, y = torch.randn(8, 32, generator=g), torch.randint(3, (8,), generator=g)
    return F.cross_entropy(model(x), y)


def test_conditions_accepts_config_units_and_refuses_the_rest():
    fixed = conditions_source({"alpha": "1ms", "bandwidth": "100mbit"})
    assert isinstance(fixed, FixedConditions)
    assert fixed.at(0, 0, 0.0) == NetworkConditions(1e-3, 12.5e6)
    assert isinstance(conditions_source("measure"), MeasuredConditions)
    with pytest.raises(ConfigError, match="exactly the keys 'alpha' and 'bandwidth'"):
        conditions_source({"alpha": "1ms"})
    model = _model()
    with pytest.raises(ConfigError, match="conditions must be a NetworkConditions"):
        DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model,
                             strategy="flexible", conditions=[1e-3, 1e8])


def _worker() -> dict:
    out = {}
    # Live α-β: the gradient (1,024 x 32 floats) is large enough to pin bandwidth.
    model = _model(1024)
    opt = DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.01), model,
                               strategy="flexible", ratio=0.5, conditions="measure")
    for step in range(14):
        opt.zero_grad()
        _loss(model, step).backward()
        opt.step()
    out["measured"] = (opt.conditions.updates, opt.conditions.current)
    # Local SGD never averages: the replicas drift; sync() makes them the mean.
    model = _model()
    opt = DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model,
                               strategy="localsgd")
    for step in range(3):
        opt.zero_grad()
        _loss(model, step).backward()
        opt.step()
    drifted = flatten_params(list(model.parameters()))
    mean = drifted.clone()
    dist.all_reduce(mean)
    sent = opt.comm.total_bytes
    opt.sync()
    out["local"] = (drifted, mean / dist.get_world_size(),
                    flatten_params(list(model.parameters())), opt.comm.total_bytes - sent)
    # Dense replicas never differ: sync() sends nothing.
    model = _model()
    opt = DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model)
    _loss(model, 0).backward()
    opt.step()
    sent = opt.comm.total_bytes
    opt.sync()
    out["dense sync bytes"] = opt.comm.total_bytes - sent
    return out


@pytest.fixture(scope="module")
def results():
    from flexsync.launch import run_local

    return run_local(_worker, 2, (), backend="gloo", timeout_s=60, deadline_s=90)


def test_measured_conditions_are_fitted_and_agreed(results):
    (updates0, cond0), (updates1, cond1) = (r["measured"] for r in results)
    assert updates0 > 0 and updates0 == updates1
    assert cond0 == cond1                                   # every rank prices the same network
    assert cond0 != NetworkConditions(1e-3, 1.25e8)         # moved off the starting point


def test_sync_makes_drifted_replicas_their_mean(results):
    (d0, mean0, after0, sent0), (d1, _, after1, _) = (r["local"] for r in results)
    assert not torch.equal(d0, d1)
    torch.testing.assert_close(after0, mean0)
    assert torch.equal(after0, after1)
    assert sent0 == 4 * d0.numel()                          # one accounted allreduce
    assert results[0]["dense sync bytes"] == 0
