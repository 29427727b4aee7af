"""The shared machinery of the local-update strategies (strategies/local.py): compact averaging
(``sync_values``) sends each worker's change since the last sync in a low-bit wire type, keeps
the replicas identical after every sync, stays close to fp32 averaging with error feedback, and
is refused where the replicas differ at a sync."""

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from flexsync.comm import Communicator
from flexsync.config import build_config
from flexsync.errors import ConfigError
from flexsync.strategies import LocalSGD, StepContext
from flexsync.strategies.grads import flatten_params

STEPS, WORLD, BATCH, EVERY = 12, 3, 8, 3


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 5))


def _state(model: nn.Module) -> torch.Tensor:
    return torch.cat([flatten_params(list(model.parameters())),
                      *[b.reshape(-1) for b in model.buffers() if b.is_floating_point()]])


def _run(comm: Communicator, sync_values: str) -> dict:
    rank = dist.get_rank()
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    bufs = [b for b in model.buffers() if b.is_floating_point()]
    strat = LocalSGD(model.parameters(), opt, comm, average_every=EVERY, buffers=bufs,
                     sync_values=sync_values)
    g = torch.Generator().manual_seed(100 + rank)        # each rank its own data
    before = comm.total_bytes
    identical = []
    for step in range(STEPS):
        x, y = torch.randn(BATCH, 1, 8, 8, generator=g), torch.randint(5, (BATCH,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        strat.step(StepContext(step, 0.0))
        if strat.signals()["sync"]:
            state = _state(model)
            out = [torch.empty_like(state) for _ in range(WORLD)]
            dist.all_gather(out, state)
            identical.append(all(torch.equal(state, o) for o in out))
    return {"state": _state(model), "identical": identical,
            "bytes": comm.total_bytes - before, "numel": _state(model).numel(),
            "keys": sorted(strat.state_dict())}


def _worker():
    comm = Communicator()
    return {v: _run(comm, v) for v in ("fp32", "fp16", "bf16", "int8")}


def test_compact_sync_keeps_replicas_identical_and_tracks_fp32_averaging(run_workers):
    res = run_workers(_worker, WORLD)
    syncs = STEPS // EVERY
    for r in res:
        n = r["fp32"]["numel"]
        for v, width in (("fp16", 2), ("bf16", 2), ("int8", 1)):
            # every sync leaves bit-identical replicas, as fp32 averaging does
            assert len(r[v]["identical"]) == syncs and all(r[v]["identical"]), v
            # the message is the change in the wire type (+ int8's scales, one per 2048)
            scales = 4 * -(-n // 2048) if v == "int8" else 0
            assert r[v]["bytes"] == syncs * (width * n + scales), v
            assert {"sync_anchor", "sync_residual"} <= set(r[v]["keys"])
        assert r["fp32"]["bytes"] == syncs * 4 * n
        assert all(r["fp32"]["identical"])
    for v in ("fp16", "int8"):
        assert all(torch.equal(res[0][v]["state"], r[v]["state"]) for r in res)


def _two_syncs(codec: str) -> dict:
    """Two syncs of known per-rank changes, no training in between."""
    comm = Communicator()
    rank = dist.get_rank()
    model = nn.Linear(3000, 2)                       # 6002 entries: three int8 chunks
    anchor0 = flatten_params(list(model.parameters())).clone()
    strat = LocalSGD(model.parameters(), torch.optim.SGD(model.parameters(), lr=0.1), comm,
                     average_every=1, sync_values=codec)
    g = torch.Generator().manual_seed(7 + rank)
    changes = []
    for _ in range(2):
        change = torch.randn(anchor0.numel(), generator=g) * 1e-2
        sizes = [p.numel() for p in model.parameters()]
        with torch.no_grad():
            for p, c in zip(model.parameters(), torch.split(strat.sync_anchor + change, sizes),
                            strict=True):
                p.copy_(c.view_as(p))
        strat.average_parameters()
        changes.append(change)
        if len(changes) == 1:
            after_one = flatten_params(list(model.parameters())).clone()
    return {"anchor0": anchor0, "changes": changes, "after_one": after_one,
            "final": flatten_params(list(model.parameters())), "residual": strat.sync_residual}


@pytest.mark.parametrize("codec", ["fp16", "bf16", "int8"])
def test_one_sync_is_the_mean_change_within_the_codec_and_nothing_is_lost(run_workers, codec):
    res = run_workers(_two_syncs, WORLD, codec)
    anchor0 = res[0]["anchor0"]
    first = torch.stack([r["changes"][0] for r in res])
    exact = anchor0 + first.mean(0)
    err = (res[0]["after_one"] - exact).abs()
    # one sync: each entry within the codec's rounding of the largest change
    # (fp16 / bf16 half an ulp per summand and per partial sum; int8 half a level per summand)
    bound = {"fp16": 2.0 ** -10, "bf16": 2.0 ** -7, "int8": 1 / (127 // WORLD)}[codec]
    assert float(err.max()) <= bound * float(first.abs().max()) + 1e-7
    assert float(err.max()) > 0                       # it is lossy, so the next check matters
    # error feedback: after two syncs the replicas hold everything sent, so their offset from
    # the exact average of all changes is minus the mean of what is still held back: exactly
    # for int8 (integer codes add exactly), up to the wire's own rounding of each partial sum
    # for fp16 / bf16 (2 syncs x (N - 1) additions, half an ulp of at most N x the largest
    # value each, then divided by N)
    total = torch.stack([sum(r["changes"]) for r in res]).mean(0)
    held = torch.stack([r["residual"] for r in res]).mean(0)
    largest = float(torch.stack([c.abs().max() for r in res for c in r["changes"]]).max())
    ulp = {"fp16": 2.0 ** -11, "bf16": 2.0 ** -8, "int8": 0.0}[codec]
    atol = 2 * (WORLD - 1) * ulp * 2 * largest + 1e-6
    torch.testing.assert_close(res[0]["final"], anchor0 + total - held, rtol=0, atol=atol)
    assert all(torch.equal(res[0]["final"], r["final"]) for r in res)


@pytest.mark.parametrize("strategy, message", [
    ({"name": "fedavg", "fraction": 0.5, "sync_values": "int8"}, "fraction"),
    ({"name": "diloco", "sync_values": "fp16"}, "compress.values"),
    ({"name": "selsync", "sync_values": "bf16", "sync_optimizer_state": True},
     "sync_optimizer_state"),
    ({"name": "localsgd", "sync_values": "int4"}, "sync_values"),
    ({"name": "auto", "sync_values": "int8"}, "own anchor"),
])
def test_compact_sync_is_refused_where_replicas_differ_at_a_sync(strategy, message):
    with pytest.raises(ConfigError, match="sync_values"):
        build_config({"strategy": strategy})
    try:
        build_config({"strategy": strategy})
    except ConfigError as e:
        assert message in str(e)
