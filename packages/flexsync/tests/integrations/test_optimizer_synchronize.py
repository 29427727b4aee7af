"""``synchronize()`` then ``step()`` is the same training as ``step()``, for every strategy.

Specification (world 2, one launch): splitting a step into "aggregate now" (``synchronize``)
and "update later" (``step`` inside ``skip_synchronize``) changes nothing by itself: for every
registered strategy, with the options that make it aggregate at every step, the parameters
after each step are bit-identical to those of plain ``step()`` calls. This holds for
strategies that rescale the learning rate around their own update (ScaDLES) and for those
that update locally before averaging (SelSync, FedAvg, local SGD). A per-step batch size goes
to ``synchronize()``; handing a different one to the ``step()`` after it is refused.
"""

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from flexsync import STRATEGIES, DistributedOptimizer
from flexsync.net.conditions import NetworkConditions
from flexsync.strategies.grads import flatten_params

from .test_optimizer_wrapper import OPTIONS, _model

STEPS = 4
# GraVAC's choices depend on measured step times, which differ between two runs.
TIMED = {"gravac"}


def _train(name: str, split: bool) -> list[torch.Tensor]:
    rank = dist.get_rank()
    model = _model()
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
        if split:
            opt.synchronize(batch_size=len(y))
            with opt.skip_synchronize():
                opt.step()
        else:
            opt.step(batch_size=len(y))
        trace.append(flatten_params(list(model.parameters())))
    opt.close()
    return trace


def _late_batch_size() -> str:
    model = _model()
    opt = DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model,
                               strategy="scadles", batch_size=8)
    F.cross_entropy(model(torch.randn(8, 6)), torch.zeros(8, dtype=torch.long)).backward()
    opt.synchronize()
    try:
        opt.step(batch_size=12)
    except ValueError as e:
        return str(e)
    return "accepted"


def _worker(names: list[str]) -> dict:
    out = {name: (_train(name, split=False), _train(name, split=True)) for name in names}
    out["late batch size"] = _late_batch_size()
    return out


@pytest.fixture(scope="module")
def results():
    from flexsync.launch import run_local

    names = sorted(set(STRATEGIES) - TIMED)
    return run_local(_worker, 2, (names,), backend="gloo", timeout_s=60, deadline_s=120)


@pytest.mark.parametrize("name", sorted(set(STRATEGIES) - TIMED))
def test_synchronize_then_step_equals_step(results, name):
    for r in results:
        plain, split = r[name]
        for step in range(STEPS):
            assert torch.equal(plain[step], split[step]), f"{name}: step {step}"


def test_a_batch_size_after_synchronize_is_refused(results):
    for r in results:
        assert "pass it to synchronize(batch_size=...)" in r["late batch size"]
