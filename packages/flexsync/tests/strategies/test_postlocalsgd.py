"""The PostLocalSGD peer (docs/methods.md §5.6): PyTorch's PostLocalSGDOptimizer with a
PeriodicModelAverager, its averaging counted and priced on the run's Communicator."""

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from flexsync.comm import Communicator
from flexsync.strategies import STRATEGIES, PostLocalSGD, StepContext
from flexsync.strategies.grads import flatten_params

WORLD, STEPS, PERIOD = 3, 7, 3


def _worker():
    comm = Communicator()
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    s = PostLocalSGD(model.parameters(), opt, comm, period=PERIOD)
    g = torch.Generator().manual_seed(dist.get_rank())
    rows = []
    for step in range(STEPS):
        opt.zero_grad()
        F.cross_entropy(model(torch.randn(4, 5, generator=g)),
                        torch.randint(3, (4,), generator=g)).backward()
        s.step(StepContext(step, 0.0))
        flat = flatten_params(list(model.parameters()))
        table = [torch.empty_like(flat) for _ in range(WORLD)]
        dist.all_gather(table, flat)
        rows.append((s.signals()["sync"], table))
    return rows, comm.total_bytes, flat.numel()


def test_averages_every_period_from_its_first_step_and_counts_the_bytes(run_workers):
    assert STRATEGIES["postlocalsgd"] is PostLocalSGD
    rows, nbytes, n = run_workers(_worker, WORLD)[0]
    # PyTorch's averager counts from 0: it averages at steps 0, 3, 6
    assert [sync for sync, _ in rows] == [1, 0, 0, 1, 0, 0, 1]
    for sync, table in rows:
        assert all(torch.equal(table[0], t) for t in table[1:]) == bool(sync)
    assert nbytes == 3 * 4 * n
