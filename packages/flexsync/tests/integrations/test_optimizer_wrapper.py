"""Every registered strategy through DistributedOptimizer (one launch, world 2), and the
wrapper's argument validation (no workers needed: it happens before any communication).

Each strategy gets options that make it aggregate at every step (sync every step, small
ratios so top-k is really sparse) and rank-dependent data. Property checked: after every
step all replicas hold bit-identical parameters (every rank applied the same aggregate),
the parameters moved, and the strategy logged its signals. Strategies with extra needs get
them through the wrapper: ``conditions`` (flexible), ``steps_per_epoch`` (fedavg's period in
epochs), ``batch_size`` (scadles, gravac's throughput table), ``opt.model`` (ddp; a
forward through the bare model is refused at ``step()``).
"""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from flexsync import STRATEGIES, ConfigError, DistributedOptimizer
from flexsync.net.conditions import NetworkConditions
from flexsync.strategies.grads import flatten_params

STEPS = 4

# Options per strategy; a strategy registered later without an entry runs with its defaults.
OPTIONS = {
    "dense": {},
    "ddp": {"hook": "allreduce"},
    "topk": {"ratio": 0.05},
    "artopk": {"ratio": 0.05, "index": "var"},
    "flexible": {"ratio": 0.05},
    "selsync": {"delta": 0.0},                   # Δ >= 0 always: sync every step
    "fedavg": {"period_epochs": 0.5},            # with steps_per_epoch 2: every step
    "localsgd": {"average_every": 1},
    "gravac": {"theta_min": 5, "theta_max": 40, "window": 2, "epsilon": 0.0},
    "accordion": {"low_cf": 5, "high_cf": 50, "window": 2},
    "scadles": {"ratio": 0.1},
    "diloco": {"inner_steps": 1, "compress": {"ratio": 0.2}},   # the wrapper's spelling of H
    "postlocalsgd": {"period": 1},
    # every step syncs (Δ >= 0) by a compressed parameter sync; a fixed selection cost
    # keeps the dense switch independent of timing
    "auto": {"delta": 0.0, "ratio": 0.2, "selection_s": 0.0},
}


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


def _worker(names):
    rank = torch.distributed.get_rank()
    out = {}
    for name in names:
        model = _model()
        init = flatten_params(list(model.parameters()))
        opt = DistributedOptimizer(
            torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5), model, strategy=name,
            conditions=NetworkConditions(1e-3, 1.25e7), steps_per_epoch=2, batch_size=8,
            **OPTIONS.get(name, {}))
        trace = []
        for step in range(STEPS):
            g = torch.Generator().manual_seed(100 * step + rank)
            x, y = torch.randn(8 + 4 * rank, 6, generator=g), torch.randint(3, (8 + 4 * rank,))
            opt.zero_grad()
            F.cross_entropy(opt.model(x), y).backward()
            opt.step(batch_size=len(y))
            trace.append(flatten_params(list(model.parameters())))
        with opt.evaluation():
            evaluated = flatten_params(list(model.parameters()))
        opt.close()
        out[name] = (init, trace, evaluated, opt.signals(), opt.comm.total_bytes)
    out["ddp misuse"] = _ddp_misuse()
    return out


def test_every_registered_strategy_runs_through_the_wrapper(run_workers):
    names = sorted(STRATEGIES)
    r0, r1 = run_workers(_worker, 2, names)
    for name in names:
        init, trace, evaluated, signals, sent = r0[name]
        for step in range(STEPS):
            assert torch.equal(trace[step], r1[name][1][step]), f"{name} step {step}"
        assert torch.isfinite(trace[-1]).all()
        assert not torch.equal(init, trace[-1]), name
        assert torch.equal(evaluated, trace[-1]), name      # in sync: evaluation is a no-op
        assert signals, name
        assert sent > 0, name                               # its traffic was accounted
    assert r0["ddp misuse"] == r1["ddp misuse"] == "opt.model"


def _ddp_misuse() -> str:
    """With strategy ddp, a forward through the bare model is refused at step()."""
    model = _model()
    opt = DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model,
                               strategy="ddp")
    F.cross_entropy(model(torch.randn(4, 6)), torch.zeros(4, dtype=torch.long)).backward()
    try:
        opt.step()
    except RuntimeError as e:
        return "opt.model" if "opt.model" in str(e) else str(e)
    finally:
        opt.close()
    return "no error"


@pytest.mark.parametrize("kwargs, match", [
    ({"strategy": "nope"}, "unknown strategy 'nope'; expected one of"),
    ({"strategy": "topk", "ratio": 1.5}, r"strategy\.ratio: ratio must be in \(0, 1\]"),
    ({"strategy": "topk", "ratio": 0}, r"strategy\.ratio"),
    ({"strategy": "artopk", "index": "middle"}, r"strategy\.index: Input should be 'star'"),
    ({"strategy": "topk", "ratio": 0.1, "ratoi": 0.2}, "strategy.ratoi: unknown option"),
    ({"strategy": "gravac", "theta_min": 100, "theta_max": 10}, "theta_min"),
    ({"strategy": "selsync", "delta": -1}, r"strategy\.delta"),
    ({"strategy": "flexible", "ratio": 0.1}, "needs conditions="),
    ({"strategy": "fedavg"}, "needs steps_per_epoch="),
    ({"strategy": "dense", "steps_per_epoch": 0}, "steps_per_epoch must be an int >= 1"),
    ({"strategy": "dense", "batch_size": -3}, "batch_size must be an int >= 1"),
])
def test_wrapper_rejects_bad_arguments_naming_the_field(kwargs, match):
    model = _model()
    with pytest.raises(ConfigError, match=match):
        DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model, **kwargs)


def test_wrapper_rejects_an_optimizer_over_foreign_parameters():
    model = _model()
    other = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="not the model's"):
        DistributedOptimizer(torch.optim.SGD(other.parameters(), lr=0.1), model)
