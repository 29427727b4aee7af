"""DiLoCo (docs/methods.md §5): H inner steps, the averaged pseudo-gradient applied by an outer
Nesterov SGD, optionally compressed (Allreduce-compatible top-k, low-bit values), adaptive H,
fragments, and exact resume."""

import math

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from flexsync.comm import Communicator
from flexsync.errors import ConfigError
from flexsync.net.cost_model import price
from flexsync.strategies import STRATEGIES, DiLoCo, LocalSGD, StepContext
from flexsync.strategies.diloco import _fragments
from flexsync.strategies.grads import flatten_params

WORLD = 4


def _gather(t: torch.Tensor) -> list[torch.Tensor]:
    table = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(table, t.contiguous())
    return table


def _train(comm, cls, options, steps, seed=0, state=None, start=0):
    """A small MLP on rank-specific data through ``cls``; returns (per-step params gathered
    from every rank, sync flags, final states)."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    s = cls(model.parameters(), opt, comm, **options)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        s.load_state_dict(state["strategy"])
    g = torch.Generator().manual_seed(1000 * dist.get_rank() + 7)
    for _ in range(start):                       # replay the data of the skipped steps
        torch.randn(6, 8, generator=g), torch.randint(4, (6,), generator=g)
    table, flags = [], []
    for step in range(start, steps):
        x, y = torch.randn(6, 8, generator=g), torch.randint(4, (6,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        s.step(StepContext(step, 0.0))
        table.append(_gather(flatten_params(list(model.parameters()))))
        flags.append(s.signals()["sync"])
    out = {"model": {k: v.clone() for k, v in model.state_dict().items()},
           "optimizer": opt.state_dict(), "strategy": s.state_dict()}
    return table, flags, out


def _h1_worker():
    comm = Communicator()
    dil, _, _ = _train(comm, DiLoCo, {"h": 1, "outer_lr": 1.0, "outer_momentum": 0.0}, 6)
    avg, _, _ = _train(comm, LocalSGD, {"average_every": 1}, 6)
    return dil, avg


def test_h1_with_outer_lr_1_and_no_momentum_is_model_averaging(run_workers):
    assert STRATEGIES["diloco"] is DiLoCo
    dil, avg = run_workers(_h1_worker, WORLD)[0]
    for step, (d, a) in enumerate(zip(dil, avg, strict=True)):
        for r in range(WORLD):
            # θ_sync − (θ_sync − mean θ_n) = mean θ_n up to one rounding of the subtraction
            torch.testing.assert_close(d[r], a[r], rtol=0, atol=1e-6, msg=f"step {step}")


def _hand_worker(h, steps, lr):
    comm = Communicator()
    rank = dist.get_rank()
    p = nn.Parameter(torch.linspace(-1, 1, 10))
    opt = torch.optim.SGD([p], lr=lr)
    s = DiLoCo([p], opt, comm, h=h)             # paper defaults: 0.7, 0.9, Nesterov
    out = []
    for t in range(steps):
        p.grad = _grad(rank, t)
        s.step(StepContext(t, 0.0))
        out.append(p.detach().clone())
    return out


def _grad(rank: int, t: int) -> torch.Tensor:
    return torch.sin(torch.arange(10.0) * (rank + 1) + t)


def test_outer_step_matches_hand_computation(run_workers):
    h, steps, lr = 3, 6, 0.1
    res = run_workers(_hand_worker, WORLD, h, steps, lr)
    theta, m = torch.linspace(-1, 1, 10), torch.zeros(10)
    for rnd in range(steps // h):
        # plain SGD: after H steps θ_n = θ_sync − lr·Σ_t g_{n,t}, so Δ_n = lr·Σ_t g_{n,t}
        deltas = [lr * sum(_grad(r, t) for t in range(rnd * h, rnd * h + h))
                  for r in range(WORLD)]
        mean = torch.stack(deltas).mean(0)
        m = 0.9 * m + mean
        theta = theta - 0.7 * (mean + 0.9 * m)
        for r in range(WORLD):
            torch.testing.assert_close(res[r][rnd * h + h - 1], theta, rtol=1e-5, atol=1e-6)
    # between syncs each worker moves on its own gradients
    assert not torch.allclose(res[0][0], res[1][0])


VARIANTS = {
    "dense": {"h": 2},
    "star": {"h": 2, "compress": {"ratio": 0.1, "index": "star"}},
    "var": {"h": 2, "compress": {"ratio": 0.1, "index": "var"}},
    "allgather": {"h": 2, "compress": {"ratio": 0.1, "index": "allgather"}},
    "star-fp16": {"h": 2, "compress": {"ratio": 0.1, "values": "fp16"}},
    "star-bf16": {"h": 2, "compress": {"ratio": 0.1, "values": "bf16"}},
    "star-int8": {"h": 2, "compress": {"ratio": 0.1, "values": "int8", "chunk": 16}},
    "allgather-int8": {"h": 2, "compress": {"ratio": 0.1, "index": "allgather",
                                            "values": "int8"}},
    "dense-int8": {"h": 2, "compress": {"ratio": 1.0, "values": "int8"}},
    "no-ef": {"h": 2, "compress": {"ratio": 0.1, "error_feedback": False}},
    "ratio1": {"h": 2, "compress": {"ratio": 1.0}},
    "fragments": {"h": 4, "fragments": 2},
    "adaptive": {"h": "adaptive", "window": 2, "min_h": 2, "max_h": 4, "delta": 0.05},
}


def _variants_worker():
    comm = Communicator()
    out = {}
    for name, options in VARIANTS.items():
        comm.total_bytes = 0
        table, flags, _ = _train(comm, DiLoCo, options, 8)
        out[name] = (table, flags, comm.total_bytes)
    return out


def test_replicas_identical_after_every_outer_step_and_ratio_1_is_uncompressed(run_workers):
    res = run_workers(_variants_worker, WORLD)[0]
    for name, (table, flags, _) in res.items():
        if name == "fragments":
            continue
        assert sum(flags) >= 2, name
        for step, (params, synced) in enumerate(zip(table, flags, strict=True)):
            same = all(torch.equal(params[0], q) for q in params[1:])
            assert same == bool(synced), f"{name} step {step}"
        assert not torch.equal(table[-1][0], res["dense"][0][-1][0]) or name in (
            "dense", "ratio1"), name
    # ratio 1 is the uncompressed pseudo-gradient exactly, at the same bytes
    assert all(torch.equal(a[0], b[0]) for a, b in zip(res["ratio1"][0], res["dense"][0],
                                                        strict=True))
    assert res["ratio1"][2] == res["dense"][2]
    # fixed H: every 2nd step; fragments sync in turn (offsets 2 and 0 of H = 4)
    assert res["dense"][1] == [0, 1] * 4
    assert res["fragments"][1] == [0, 1] * 4
    # low-bit values shrink the message: fp16/bf16 half the value bytes, int8 about a quarter
    n = res["dense"][0][0][0].numel()
    k = int(0.1 * n)
    star = res["star"][2]                                 # 4 syncs · (indices + k fp32)
    assert res["star-fp16"][2] == res["star-bf16"][2] == star - 4 * (2 * k)
    assert res["star-int8"][2] == star - 4 * (3 * k) + 4 * (4 * -(-k // 16))
    assert res["dense"][2] == 4 * (4 * n)
    assert res["dense-int8"][2] == 4 * (n + 4 * -(-n // 2048))


def _bytes_worker(index, n):
    comm = Communicator()
    p = nn.Parameter(torch.zeros(n))
    opt = torch.optim.SGD([p], lr=0.1)
    s = DiLoCo([p], opt, comm, h=1, compress={"ratio": 0.01, "index": index})
    p.grad = torch.randn(n, generator=torch.Generator().manual_seed(dist.get_rank()))
    comm.take_records()
    s.step(StepContext(0, 0.0))
    records = [r for r in comm.take_records() if r.tag != "consensus"]
    # the benchmark's own pricing of those records on a 20 Mbit/s link, bandwidth term only
    priced = sum(price(r.kind, r.algo, r.nbytes, comm.world_size, 0.0, 1 / 2.5e6)
                 for r in records)
    return (sum(r.nbytes for r in records), sum(_received(r, comm.world_size) for r in records),
            priced)


def _received(rec, world: int) -> float:
    """Bytes one worker receives in a collective whose per-worker payload is X: a ring
    allreduce 2(N−1)/N·X, a broadcast X, an allgather every other worker's X."""
    x = rec.nbytes
    return {"allreduce": 2 * (world - 1) / world * x, "broadcast": x,
            "allgather": (world - 1) * x}[rec.kind]


@pytest.mark.parametrize("index", ["star", "var", "allgather"])
def test_link_bytes_per_worker_flat_for_star_var_and_growing_for_allgather(run_workers, index):
    n = 20_000
    k = n // 100
    got = {w: run_workers(_bytes_worker, w, index, n)[0] for w in (2, 4, 8)}
    sent = {w: s for w, (s, _, _) in got.items()}
    received = {w: r for w, (_, r, _) in got.items()}
    priced = {w: t for w, (_, _, t) in got.items()}
    # what each worker puts on the wire is k values and k indices, whatever N
    assert len(set(sent.values())) == 1 and 4 * k < sent[2] <= 8 * k + 64
    if index == "allgather":
        # ... but it receives every other worker's k values and k indices
        assert received == {w: (w - 1) * sent[w] for w in (2, 4, 8)}
        # and the clock charges it (N − 1)·X: 7x at N = 8 what it charges at N = 2
        assert priced[8] == pytest.approx(7 * priced[2]) and priced[4] == pytest.approx(
            3 * priced[2])
    else:
        # the index broadcast once and the ring allreduce of values (< 2 X): bounded by twice
        # what it sends for every N
        assert all(received[w] < 2 * sent[w] for w in received)
        # priced: the ring allreduce of the values costs 2(N−1)/N·X_values (< 2X), but the
        # broadcast of the index set (STAR's round-robin broadcaster, VAR's largest score) is
        # priced as a binomial tree, log2(N)·X_index: the clock's charge grows like log N
        # (2.2x from N = 2 to 8 here), not like N − 1 as the allgather's (7x)
        assert all(priced[w] * 2.5e6 <= (2 + math.log2(w)) * sent[w] / 2 for w in priced)
        assert priced[2] < priced[4] < priced[8] < 2.5 * priced[2]


RESUMED = {
    "dense": {"h": 3},
    "star-int8-ef": {"h": 2, "compress": {"ratio": 0.1, "values": "int8"}},
    "var": {"h": 2, "compress": {"ratio": 0.1, "index": "var"}},
    "streaming-overlap": {"h": 4, "fragments": 2, "overlap": True},
    "adaptive": {"h": "adaptive", "window": 2, "min_h": 2, "max_h": 3, "delta": 0.05},
}


def _resume_worker():
    comm = Communicator()
    out = {}
    for name, options in RESUMED.items():
        straight, _, _ = _train(comm, DiLoCo, options, 9)
        _, _, saved = _train(comm, DiLoCo, options, 5)
        resumed, _, _ = _train(comm, DiLoCo, options, 9, state=saved, start=5)
        out[name] = (straight[5:], resumed)
    return out


def test_resume_is_bit_identical(run_workers):
    res = run_workers(_resume_worker, 2)[0]
    for name, (straight, resumed) in res.items():
        for a, b in zip(straight, resumed, strict=True):
            assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True)), name


def test_fragments_split_at_tensor_boundaries_into_near_equal_parts():
    params = [torch.zeros(n) for n in (10, 30, 20, 20, 20)]
    frags = _fragments(params, 2)
    assert frags == [((0, 2), (0, 40)), ((2, 5), (40, 100))]
    assert _fragments(params, 1) == [((0, 5), (0, 100))]
    assert [t for t, _ in _fragments(params, 5)] == [(i, i + 1) for i in range(5)]
    with pytest.raises(ValueError, match="cannot exceed"):
        _fragments(params, 6)


@pytest.mark.parametrize("options, field", [
    ({"h": 0}, "h"), ({"h": "often"}, "h"), ({"outer_momentum": 1.0}, "outer_momentum"),
    ({"compress": {"index": "ring"}}, "compress.index"),
    ({"compress": {"values": "int4"}}, "compress.values"),
    ({"compress": {"ratio": 0}}, "compress.ratio"),
    ({"h": "adaptive", "fragments": 2}, "fragments"),
    ({"sync_optimizer_state": True}, "sync_optimizer_state"),
])
def test_bad_options_name_the_field(options, field):
    with pytest.raises(ConfigError, match=f"strategy.{field}"):
        DiLoCo.Options.parse("diloco", options)
