"""torchft's DiLoCo and LocalSGD inside flexsync's loop (the issue #19 peer): with the same
outer settings they take the same steps as flexsync's own DiLoCo and local SGD, and their
allreduces are accounted on the Communicator. Skipped without torchft (an optional extra)."""

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from flexsync.comm import Communicator
from flexsync.strategies import PEERS, STRATEGIES, DiLoCo, LocalSGD, StepContext
from flexsync.strategies.grads import flatten_params

pytest.importorskip("torchft")

WORLD = 2
STEPS = 6


def _train(comm, cls, options):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    s = cls(model.parameters(), opt, comm, **options)
    g = torch.Generator().manual_seed(1000 * dist.get_rank() + 7)
    comm.take_records()
    params, flags = [], []
    for step in range(STEPS):
        x, y = torch.randn(6, 8, generator=g), torch.randint(4, (6,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        s.step(StepContext(step, 0.0))
        params.append(flatten_params(list(model.parameters())))
        flags.append(s.signals()["sync"])
    records = [(r.kind, r.nbytes, r.tag) for r in comm.take_records()]
    s.close()
    return params, flags, records


def _worker():
    comm = Communicator()
    return {"torchft-diloco": _train(comm, PEERS["torchft"], {"h": 2}),
            "diloco": _train(comm, DiLoCo, {"h": 2}),
            "torchft-localsgd": _train(comm, PEERS["torchft"],
                                       {"algorithm": "localsgd", "sync_every": 2}),
            "localsgd": _train(comm, LocalSGD, {"average_every": 2})}


def test_torchft_diloco_and_localsgd_match_flexsync_step_for_step(run_workers):
    assert "torchft" not in STRATEGIES          # a peer: the every-strategy suites skip it
    res = run_workers(_worker, WORLD, deadline_s=200)
    for ours, theirs in (("diloco", "torchft-diloco"), ("localsgd", "torchft-localsgd")):
        for r in range(WORLD):
            a, fa, _ = res[r][ours]
            b, fb, recs = res[r][theirs]
            assert fa == fb == [0, 1] * (STEPS // 2), theirs
            for step, (x, y) in enumerate(zip(a, b, strict=True)):
                torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6,
                                           msg=f"{theirs} rank {r} step {step}")
            # one fp32 allreduce per parameter tensor per sync, accounted
            assert recs == [("allreduce", 4 * n, "torchft") for n in (128, 16, 64, 4)] * 3
    # between syncs the replicas differ; after each they are identical
    assert not torch.equal(res[0]["torchft-diloco"][0][0], res[1]["torchft-diloco"][0][0])
    assert torch.equal(res[0]["torchft-diloco"][0][1], res[1]["torchft-diloco"][0][1])
