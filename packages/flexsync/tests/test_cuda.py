"""The CUDA/NCCL path (issue 20): selection and wire coding on CUDA tensors, and every
registered strategy stepping on CUDA parameters over an NCCL process group (one rank per GPU:
NCCL refuses two ranks on one device, so one GPU gives a world of 1, whose collectives are the
identity, and two or more GPUs exercise NCCL's collectives for real).

Marked ``cuda`` and skipped without a GPU; ``benchmarks/gpu.sh`` runs them on a GPU machine."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from flexsync import STRATEGIES, DistributedOptimizer
from flexsync.compress import AdaptiveThreshold, Sparsifier
from flexsync.compress.wire import decode_indices, encode_indices, encode_values
from flexsync.net.conditions import NetworkConditions

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

OPTIONS = {
    "ddp": {"hook": "allreduce"}, "topk": {"ratio": 0.05}, "artopk": {"ratio": 0.05},
    "flexible": {"ratio": 0.05}, "selsync": {"delta": 0.0}, "fedavg": {"period_epochs": 0.5},
    "localsgd": {"average_every": 1},
    "gravac": {"theta_min": 5, "theta_max": 40, "window": 2, "epsilon": 0.0},
    "accordion": {"low_cf": 5, "high_cf": 50, "window": 2}, "scadles": {"ratio": 0.1},
    "diloco": {"inner_steps": 1, "compress": {"ratio": 0.2}}, "postlocalsgd": {"period": 1},
}


def test_adaptive_selection_on_cuda_is_the_exact_top_k():
    x = torch.randn(1_000_000, device="cuda")
    sel = AdaptiveThreshold(x.numel(), torch.Generator().manual_seed(0), device="cuda")
    for scale in (1.0, 1.05, 0.9):
        idx = sel(scale * x, 10_000)
        assert idx.device.type == "cuda"
        exact = torch.topk((scale * x).abs(), 10_000).indices
        assert torch.equal(idx, exact.sort().values)


def test_sparsifier_and_wire_coding_stay_on_the_device():
    sp = Sparsifier(300_000, device="cuda", values="fp16")
    fed = sp.feed(torch.randn(300_000, device="cuda"))
    idx = sp.select(fed, 0.01)
    msg = encode_indices(idx, fed.numel())
    assert msg.device.type == "cuda"
    assert torch.equal(decode_indices(msg, fed.numel(), idx.numel()), idx)
    assert encode_values(fed[idx], "fp16").dtype == torch.float16


def _strategy_worker(names):
    rank = torch.distributed.get_rank()
    dev = torch.device("cuda", torch.cuda.current_device())
    out = {}
    for name in names:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 3)).to(dev)
        opt = DistributedOptimizer(
            torch.optim.SGD(model.parameters(), lr=0.1), model, strategy=name,
            conditions=NetworkConditions(1e-3, 1.25e7), steps_per_epoch=2, batch_size=8,
            **OPTIONS.get(name, {}))
        for step in range(3):
            g = torch.Generator().manual_seed(100 * step + rank)
            x, y = torch.randn(8, 6, generator=g).to(dev), torch.randint(3, (8,)).to(dev)
            opt.zero_grad()
            F.cross_entropy(opt.model(x), y).backward()
            opt.step(batch_size=8)
        opt.close()
        params = torch.cat([p.detach().flatten() for p in model.parameters()])
        out[name] = (params.device.type, bool(torch.isfinite(params).all()), params.cpu())
    return out


def test_every_strategy_steps_on_cuda_over_nccl():
    from flexsync.launch import run_local

    world = min(2, torch.cuda.device_count())
    res = run_local(_strategy_worker, world, (sorted(STRATEGIES),), backend="nccl",
                    timeout_s=120, deadline_s=600)
    for name in STRATEGIES:
        for r in res:
            device, finite, params = r[name]
            assert device == "cuda" and finite, name
        if name in ("dense", "ddp", "topk", "artopk", "flexible"):     # replicas agree
            torch.testing.assert_close(res[0][name][2], res[-1][name][2])
