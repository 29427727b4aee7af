"""Collectives return the right values on real gloo workers and account hand-computed sizes."""

import torch

from flexsync.comm import Communicator
from flexsync.comm.consensus import agree_any, agree_argmax, agree_mean, gather_scalars


def _collectives_worker():
    comm = Communicator()
    r, n = comm.rank, comm.world_size
    out = {}
    t = torch.full((1000,), float(r + 1))
    comm.allreduce(t, tag="values")
    out["sum"] = t[0].item()
    m = torch.tensor([float(r)])
    comm.allreduce(m, op="max")
    out["max"] = m.item()
    g = comm.allgather(torch.arange(10, dtype=torch.int32) + 100 * r)
    out["gathered"] = g[:, 0].tolist()
    b = torch.full((7,), float(r), dtype=torch.float64)
    comm.broadcast(b, src=n - 1)
    out["bcast"] = b.tolist()
    comm.allreduce(torch.zeros(50), accounted=False)
    out["records"] = [(x.kind, x.nbytes, x.elements, x.tag) for x in comm.take_records()]
    out["total"] = comm.total_bytes
    out["after_take"] = comm.take_records()
    # consensus helpers: rank-dependent inputs, identical answers
    out["mean"] = agree_mean(comm, [r, 2 * r])
    out["any_last"] = agree_any(comm, r == n - 1)
    out["any_none"] = agree_any(comm, False)
    out["argmax_tie"] = agree_argmax(comm, 5.0 if r >= 1 else 1.0)
    out["table"] = gather_scalars(comm, [r]).flatten().tolist()
    return out


def test_values_and_accounting_on_three_workers(run_workers):
    res = run_workers(_collectives_worker, 3)
    for r, out in enumerate(res):
        assert out["sum"] == 1 + 2 + 3
        assert out["max"] == 2
        assert out["gathered"] == [100 * q for q in range(3)]
        assert out["bcast"] == [2.0] * 7
        assert out["records"] == [
            ("allreduce", 4000, 1000, "values"),    # 1000 fp32
            ("allreduce", 4, 1, ""),
            ("allgather", 40, 10, ""),              # each worker contributes 10 int32
            ("broadcast", 56, 7, ""),               # 7 fp64
        ], f"rank {r}"
        assert out["total"] == 4000 + 4 + 40 + 56     # the unaccounted allreduce is not counted
        assert out["after_take"] == []
        assert out["mean"] == [1.0, 2.0]
        assert out["any_last"] is True and out["any_none"] is False
        assert out["argmax_tie"] == 1                  # ranks 1 and 2 tie: lowest rank wins
        assert out["table"] == [0.0, 1.0, 2.0]


def _single_worker():
    comm = Communicator()
    t = torch.ones(5)
    comm.allreduce(t)
    g = comm.allgather(torch.ones(3))
    return t.tolist(), g.shape, comm.total_bytes


def test_world_size_one_is_identity_and_free(run_workers):
    t, shape, total = run_workers(_single_worker, 1)[0]
    assert t == [1.0] * 5 and tuple(shape) == (1, 3) and total == 0
