"""Data injection (docs/methods.md §2.4, §4.5): b′, selection agreed by all ranks, received
samples are the senders' own, and the injected bytes are accounted communication."""

import pytest
import torch
import torch.distributed as dist

from flexsync.comm import Communicator
from flexsync.train.injection import (
    DataInjector,
    own_batch_size,
    plan_injection,
    receiver_choice,
    sender_selection,
    share_size,
)

WORLD, BATCH, STEPS = 4, 6, 5


@pytest.mark.parametrize("b, alpha, beta, n, expected", [
    (32, 0.5, 0.5, 8, 11), (32, 0.75, 0.75, 8, 6),      # the paper's examples (N = 8)
    (32, 0.5, 0.5, 10, 9), (32, 0.75, 0.75, 10, 5),     # what N = 10 gives
    (32, 0.0, 0.5, 4, 32), (1, 1.0, 1.0, 16, 1),
])
def test_own_batch_formula(b, alpha, beta, n, expected):
    assert own_batch_size(b, alpha, beta, n) == expected


def test_selection_sizes_and_modes():
    assert len(sender_selection(3, 10, 0.5, seed=1)) == 5
    assert len(sender_selection(3, 10, 0.25, seed=1)) == 3          # ⌈α·N⌉
    peers = receiver_choice(3, 10, 0.5, seed=1)
    assert all(len(p) == 5 and d not in p for d, p in peers.items())  # ⌈α·(N−1)⌉
    plan = plan_injection(0, 4, 0.5, "sender_selection", seed=0)
    assert all(set(recv) == set(range(4)) - {s} for s, recv in plan.routes)
    assert share_size(11, 0.5) == 5


def _worker(mode):
    comm = Communicator()
    rank = dist.get_rank()
    share = share_size(BATCH, 0.5)
    inj = DataInjector(comm, alpha=0.5, beta=0.5, share=share, mode=mode, seed=7)
    out = []
    for step in range(STEPS):
        plan = plan_injection(step, WORLD, 0.5, mode, seed=7)
        # sample i of rank r in this step is r*100 + i (labels carry the same id)
        ids = rank * 100 + torch.arange(BATCH, dtype=torch.float32)
        x = ids.view(BATCH, 1, 1).repeat(1, 2, 3)
        y = rank * 100 + torch.arange(BATCH)
        before = comm.total_bytes
        xs, ys = inj.exchange(step, x, y)
        out.append({"plan": plan, "y": ys.tolist(), "x_ok": torch.equal(xs[:, 0, 0].long(), ys),
                    "bytes": comm.total_bytes - before, "signals": inj.signals()})
    return out


@pytest.mark.parametrize("mode", ["sender_selection", "receiver_choice"])
def test_injection_in_gloo_workers(run_workers, mode):
    res = run_workers(_worker, WORLD, mode)
    sample_bytes = 2 * 3 * 4 + 8                          # a 2×3 fp32 input and an int64 label
    share = share_size(BATCH, 0.5)
    for step in range(STEPS):
        plans = [res[r][step]["plan"] for r in range(WORLD)]
        assert all(p == plans[0] for p in plans)           # every rank agrees on the routes
        plan = plans[0]
        for r in range(WORLD):
            got = res[r][step]
            sources = plan.sources_for(r)
            expected = list(range(r * 100, r * 100 + BATCH)) + [
                s * 100 + i for s in sources for i in range(share)]
            assert got["y"] == expected and got["x_ok"]
            messages = len(plan.senders) if mode == "sender_selection" else 1
            assert got["bytes"] == messages * share * sample_bytes
            assert got["signals"] == {"injected_samples": share * len(sources),
                                      "injected_bytes": got["bytes"]}
    plans = [res[0][s]["plan"] for s in range(STEPS)]
    if mode == "sender_selection":                          # ⌈α·N⌉ = 2 senders to all others
        assert all(len(p.senders) == 2 for p in plans)
        assert len({tuple(p.senders) for p in plans}) > 1   # redrawn each step
    else:                                                   # each sends to ⌈α·(N−1)⌉ = 2 peers
        assert all(len(recv) == 2 for p in plans for _, recv in p.routes)
