"""FedAvg(C, E) and local SGD (docs/methods.md §2.5): shared participant draws, partial averaging
that leaves non-participants alone, the period in epochs, and evaluation on the replica mean."""

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from flexsync.comm import Communicator
from flexsync.strategies import STRATEGIES, FedAvg, LocalSGD, StepContext
from flexsync.strategies.fedavg import fedavg_participants
from flexsync.strategies.grads import flatten_params

WORLD, STEPS, SPE = 4, 8, 4       # steps per epoch 4, E = 0.5: average every 2 steps


def test_participants_are_a_seeded_fraction():
    draws = [fedavg_participants(r, 8, 0.5, seed=3) for r in range(20)]
    assert all(len(d) == 4 and d == sorted(set(d)) and set(d) <= set(range(8)) for d in draws)
    assert draws == [fedavg_participants(r, 8, 0.5, seed=3) for r in range(20)]
    assert len({tuple(d) for d in draws}) > 1            # a fresh set each round
    assert fedavg_participants(0, 4, 1.0, 0) == [0, 1, 2, 3]
    assert len(fedavg_participants(0, 3, 0.5, 0)) == 2   # ⌈C·N⌉


def _worker():
    comm = Communicator()
    rank = dist.get_rank()
    g = torch.Generator().manual_seed(rank)
    out = {}
    for name, strat_cls, kw in [("fedavg", FedAvg, {"fraction": 0.5, "period_epochs": 0.5}),
                                ("local", LocalSGD, {})]:
        torch.manual_seed(0)
        model = nn.Linear(6, 3)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        s = strat_cls(model.parameters(), opt, comm, **kw)
        rows = []
        for step in range(STEPS):
            before = flatten_params(list(model.parameters()))
            opt.zero_grad()
            F.cross_entropy(model(torch.randn(5, 6, generator=g)),
                            torch.randint(3, (5,), generator=g)).backward()
            s.step(StepContext(step, step / SPE, steps_per_epoch=SPE))
            after = flatten_params(list(model.parameters()))
            table = [torch.empty_like(after) for _ in range(WORLD)]
            dist.all_gather(table, after)
            rows.append((s.signals()["sync"], before, after, table))
        local = flatten_params(list(model.parameters()))
        s.before_eval()
        evaluated = flatten_params(list(model.parameters()))
        s.after_eval()
        out[name] = {"rows": rows, "summary": s.summary(), "local": local,
                     "evaluated": evaluated, "restored": flatten_params(list(model.parameters())),
                     "bytes": comm.total_bytes}
        comm.total_bytes = 0
    return out


def test_fedavg_and_local_sgd_in_gloo_workers(run_workers):
    assert STRATEGIES["fedavg"] is FedAvg and STRATEGIES["localsgd"] is LocalSGD
    res = run_workers(_worker, WORLD)
    n = res[0]["fedavg"]["local"].numel()
    for r in range(WORLD):
        fa = res[r]["fedavg"]
        assert [row[0] for row in fa["rows"]] == [0, 1] * (STEPS // 2)
        assert fa["summary"]["lssr"] == 0.5 and fa["bytes"] == (STEPS // 2) * 4 * n
        for step, (sync, _, after, table) in enumerate(fa["rows"]):
            if not sync:
                continue
            members = fedavg_participants((step + 1) // 2, WORLD, 0.5, 0)
            assert len(members) == 2
            mean = torch.stack([table[m] for m in members]).mean(0)
            if r in members:                    # participants hold the members' mean
                torch.testing.assert_close(after, mean)
            else:                               # non-participants keep their local step
                assert not torch.allclose(after, mean)
        lo = res[r]["local"]
        assert [row[0] for row in lo["rows"]] == [0] * STEPS and lo["bytes"] == 0
        assert lo["summary"]["lssr"] == 1.0 and lo["summary"]["comm_reduction"] is None
        # evaluation sees the replica mean, and training resumes from the local replica
        mean = torch.stack([res[q]["local"]["local"] for q in range(WORLD)]).mean(0)
        torch.testing.assert_close(lo["evaluated"], mean)
        assert torch.equal(lo["restored"], lo["local"])
        assert not torch.equal(lo["local"], res[(r + 1) % WORLD]["local"]["local"])


def test_fedavg_rejects_two_periods():
    p = nn.Linear(2, 2)
    opt = torch.optim.SGD(p.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="either 'period_epochs' or 'period_steps'"):
        FedAvg(p.parameters(), opt, _FakeComm(), period_epochs=0.5, period_steps=3)
    with pytest.raises(ValueError, match="steps per epoch"):
        FedAvg(p.parameters(), opt, _FakeComm()).step(StepContext(0, 0.0))


class _FakeComm:
    rank, world_size = 0, 1
