"""Adaptive decisions are agreed across ranks (docs/methods.md §0.6), for every registered
strategy that makes them, on real gloo workers (one launch, world 3).

A decision that picks a collective, its size, a broadcaster, a compression factor or whether
to sync must be identical on every rank, or the next collective mismatches and the job hangs
or silently corrupts. Each rank here gets its own gradients (different draws, scaled by
rank + 1, with a step-dependent scale so adaptive rules fire), its own batch size (as with
per-device streams), and the step context the training loop gives (identical network
conditions that switch regime halfway, an agreed previous step duration). Property: at every
step all ranks log the same signals, except the few that are documented as local
(``LOCAL_SIGNALS``), and the same parameters.
"""

import torch
import torch.nn as nn

from flexsync import STRATEGIES
from flexsync.comm import Communicator
from flexsync.net.conditions import NetworkConditions
from flexsync.strategies import StepContext, build_strategy
from flexsync.strategies.grads import flatten_params

WORLD, STEPS, N = 3, 10, 600
MOO = {"warmup_steps": 2, "explore_steps": 1, "mode": "online", "candidates": [0.2, 0.05],
       "cooldown": 0, "gain_window": 2, "moo_on_gain_change": True}

# Strategies whose per-step choices depend on the data or the network, with options that
# make those choices move within a few steps.
ADAPTIVE = {
    "topk": {"ratio": "moo", "moo": MOO},
    "artopk": {"ratio": 0.05, "index": "var"},
    "flexible": {"ratio": "moo", "moo": MOO},
    "gravac": {"theta_min": 2, "theta_max": 64, "window": 2, "epsilon": 0.5, "omega": 0.5,
               "consensus": "piggyback"},
    "accordion": {"low_cf": 2, "high_cf": 50, "window": 2, "smoothing": 0.5, "eta": 0.5,
                  "interval": 1},
    "selsync": {"delta": 0.6, "window": 2, "smoothing": 0.5},   # local votes differ
    "scadles": {"ratio": 0.1, "delta": 0.9, "smoothing": 0.5, "base_batch": 24},
    "fedavg": {"fraction": 0.5, "period_steps": 1, "period_epochs": None},   # drawn per round
    "diloco": {"h": "adaptive", "window": 2, "smoothing": 0.5, "min_h": 1, "max_h": 4,
               "delta": 0.05, "compress": {"ratio": 0.05, "index": "var"}},   # votes differ
    # issue #18: SelSync's vote, MOO's ratio, the α-β collective and the dense switch
    "auto": {"ratio": "moo", "moo": MOO, "delta": 0.6, "window": 2, "smoothing": 0.5,
             "max_local_steps": 2},
}
# No data- or network-dependent decisions: fixed schedules or plain allreduce.
NON_ADAPTIVE = {"dense", "ddp", "localsgd", "postlocalsgd"}
# Signals that are each rank's own measurement by design (not decisions).
LOCAL_SIGNALS = {"delta", "weight", "rho", "ef_ratio"}   # ef_ratio: DiLoCo's own residual


class Flat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.zeros(200))
        self.b = nn.Parameter(torch.zeros(N - 200))


def _context(step: int, rank: int) -> StepContext:
    latency_bound = NetworkConditions(50e-3, 1.25e9)
    bandwidth_bound = NetworkConditions(1e-5, 1.25e5)
    return StepContext(step, step / 4, latency_bound if step < STEPS // 2 else bandwidth_bound,
                       priced_params=5_000_000, steps_per_epoch=4,
                       prev_step_s=None if step == 0 else 0.1 + 0.01 * step,
                       batch_size=8 + 4 * rank + step % 3)


def _worker():
    rank = torch.distributed.get_rank()
    out = {}
    for name, options in ADAPTIVE.items():
        model = Flat()
        strat = build_strategy(name, model.parameters(),
                               torch.optim.SGD(model.parameters(), lr=0.05), Communicator(),
                               **options)
        log = []
        for step in range(STEPS):
            g = torch.Generator().manual_seed(1000 * step + rank)
            scale = (1 + rank) * (1.0 if step % 4 < 2 else 0.2)
            flat = torch.randn(N, generator=g) * scale
            model.a.grad, model.b.grad = flat[:200].clone(), flat[200:].clone()
            strat.step(_context(step, rank))
            signals = {k: v for k, v in strat.signals().items() if k not in LOCAL_SIGNALS}
            log.append((signals, flatten_params(list(model.parameters()))))
        out[name] = log
    return out


def test_every_adaptive_strategy_is_covered():
    unclassified = set(STRATEGIES) - set(ADAPTIVE) - NON_ADAPTIVE
    assert not unclassified, f"classify {sorted(unclassified)} in this test (adaptive or not)"


def test_adaptive_decisions_are_identical_on_every_rank(run_workers):
    results = run_workers(_worker, WORLD)
    for name in ADAPTIVE:
        for step in range(STEPS):
            signals0, params0 = results[0][name][step]
            assert signals0, f"{name} logged no signals"
            for rank in range(1, WORLD):
                signals, params = results[rank][name][step]
                assert signals == signals0, f"{name} step {step}: rank {rank} disagrees"
                if name not in ("selsync", "fedavg", "diloco", "auto"):   # local steps
                    assert torch.equal(params, params0), f"{name} step {step}: replicas"
    # The decisions really moved (otherwise agreement would be trivial).
    def seen(name, key):
        return {str(results[0][name][s][0].get(key)) for s in range(STEPS)}
    assert len(seen("flexible", "collective")) > 1
    assert len(seen("topk", "ratio")) > 1
    assert len(seen("artopk", "broadcaster")) > 1
    assert len(seen("selsync", "sync")) > 1
    assert len(seen("diloco", "sync")) > 1
    assert len(seen("gravac", "decision") | seen("gravac", "theta_c")) > 2
    assert len(seen("accordion", "cf")) > 1
    assert len(seen("scadles", "compressed")) > 1
    assert len(seen("auto", "decision")) > 1 and len(seen("auto", "collective")) > 2
