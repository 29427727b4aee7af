"""Gradient accumulation through DistributedOptimizer (world 2, one launch).

Specification: ``backward()`` on 4 micro-batches of 8 (each loss divided by 4) followed by one
``step()`` trains exactly like one ``step()`` on the 32-sample batch they form, for dense
averaging, top-k with error feedback and the DDP baseline; with ``strategy="ddp"`` and
``backward_passes_per_step=4``, DDP allreduces once per step instead of once per backward.
"""

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from flexsync import DistributedOptimizer
from flexsync.strategies.grads import flatten_params

STEPS, MICRO, SIZE = 3, 4, 8
CASES = {"dense": ("dense", {}), "topk": ("topk", {"ratio": 0.1}),
         "ddp": ("ddp", {"hook": "allreduce", "backward_passes_per_step": MICRO})}


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


def _batch(rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 * step + rank)
    return (torch.randn(MICRO * SIZE, 6, dtype=torch.float64, generator=g),
            torch.randint(3, (MICRO * SIZE,), generator=g))


def _train(strategy: str, options: dict, accumulate: bool) -> tuple[torch.Tensor, int]:
    rank = dist.get_rank()
    model = _model().double()
    opt = DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                               model, strategy=strategy,
                               **(options if accumulate else {k: v for k, v in options.items()
                                                             if k != "backward_passes_per_step"}))
    for step in range(STEPS):
        x, y = _batch(rank, step)
        opt.zero_grad()
        if accumulate:
            for xs, ys in zip(x.split(SIZE), y.split(SIZE), strict=True):
                (F.cross_entropy(opt.model(xs), ys) / MICRO).backward()
        else:
            F.cross_entropy(opt.model(x), y).backward()
        opt.step()
        with torch.no_grad():                  # an evaluation forward does not count as a pass
            opt.model(x[:2])
    opt.close()
    return flatten_params(list(model.parameters())), opt.comm.total_bytes


def _worker() -> dict:
    return {name: (_train(s, o, accumulate=True), _train(s, o, accumulate=False))
            for name, (s, o) in CASES.items()}


@pytest.fixture(scope="module")
def results(request):
    from flexsync.launch import run_local

    return run_local(_worker, 2, (), backend="gloo", timeout_s=60, deadline_s=90)


@pytest.mark.parametrize("name", sorted(CASES))
def test_four_micro_batches_equal_one_four_times_larger_batch(results, name):
    for r in results:
        (acc, acc_bytes), (big, big_bytes) = r[name]
        torch.testing.assert_close(acc, big, rtol=0, atol=1e-12)
        assert acc_bytes == big_bytes, "accumulation must not add traffic"
    assert torch.equal(results[0][name][0][0], results[1][name][0][0])
