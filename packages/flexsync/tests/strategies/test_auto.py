"""``auto`` (docs/methods.md §6, issue #18): SelSync's sync rule, MOO's (or a fixed) ratio, the
α-β collective with a dense switch, and ScaDLES's stream weighting, in one strategy.

Specification, on real gloo workers (world 3, each rank its own data):

* Composition: with its other parts switched off, ``auto`` *is* the single strategy, step for
  step, from the same seeds and parameters: sync every step + fixed ratio + allgather is
  ``topk``; the same with ``ratio: moo`` and the α-β choice is ``flexible``; with
  ``ratio: gravac`` and allgather it is ``gravac``; compression off
  with skipping on is ``selsync``; compression and skipping off is ``dense``, and on streams
  ``scadles`` (always dense).
* Agreement: every decision (sync or local, ratio, collective, dense or not, the selection cost
  it assumed) is identical on every rank although the ranks' gradients and their measured
  selection times differ, and the replicas are identical after every sync.
* The dense switch: dense exactly when selection plus the cheapest compressed aggregation is
  not below a dense ring allreduce under the step's α and β.
* A run logs every step's decision and draws the decision timeline.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from flexsync import build_config, train
from flexsync.comm import Communicator
from flexsync.errors import ConfigError
from flexsync.net import cost_model
from flexsync.net.conditions import NetworkConditions
from flexsync.strategies import (
    STRATEGIES,
    Auto,
    Dense,
    Flexible,
    GraVAC,
    ScaDLES,
    SelSync,
    StepContext,
    TopK,
    validate_options,
)
from flexsync.strategies.grads import flatten_params
from flexsync.train.metrics import read_metrics

WORLD, STEPS, BATCH = 3, 14, 8
MOO = {"warmup_steps": 3, "explore_steps": 1, "mode": "online", "candidates": [0.2, 0.05],
       "cooldown": 0, "gain_window": 2, "probe_every": 2}
LATENCY_BOUND = NetworkConditions(20e-3, 1.25e9)
BANDWIDTH_BOUND = NetworkConditions(1e-5, 1.25e5)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 5))


def _batches(rank: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(100 + rank)       # each rank its own data and batch
    size = BATCH + 4 * rank
    return [(torch.randn(size, 1, 8, 8, generator=g) * (1 + rank),
             torch.randint(5, (size,), generator=g)) for _ in range(STEPS)]


def _context(step: int, batch: int, streaming: bool = False) -> StepContext:
    cond = LATENCY_BOUND if step < STEPS // 2 else BANDWIDTH_BOUND
    return StepContext(step, step / 7, cond, priced_params=200_000, steps_per_epoch=7,
                       prev_step_s=None if step == 0 else 0.1, batch_size=batch,
                       total_steps=STEPS, streaming=streaming)


def _state(model: nn.Module) -> torch.Tensor:
    return torch.cat([flatten_params(list(model.parameters())),
                      *[b.reshape(-1) for b in model.buffers() if b.is_floating_point()]])


def _train(make, rank: int, streaming: bool = False, before_step=None) -> list:
    """Steps a fresh model with ``make(model, optimizer)``; per step (model state, signals)."""
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    strat = make(model, opt)
    trace = []
    for step, (x, y) in enumerate(_batches(rank)):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        if before_step is not None:
            before_step(strat, step)
        strat.step(_context(step, len(y), streaming))
        trace.append((_state(model), strat.signals()))
    return trace


def _buffers(model: nn.Module) -> list[torch.Tensor]:
    return [b for b in model.buffers() if b.is_floating_point()]


SELSYNC = {"delta": 0.3, "window": 3, "smoothing": 0.1}
GRAVAC = {"theta_min": 2, "theta_max": 64, "window": 3, "epsilon": 0.5, "omega": 0.5}
PAIRS = {
    # auto's options, and the single strategy it must equal
    "topk": ({"skip": False, "ratio": 0.05, "collectives": ["allgather"],
              "dense_switch": False}, TopK, {"ratio": 0.05}),
    "flexible": ({"skip": False, "ratio": "moo", "moo": MOO, "dense_switch": False},
                 Flexible, {"ratio": "moo", "moo": MOO}),
    "selsync": ({"ratio": 1.0, **SELSYNC}, SelSync, SELSYNC),
    "gravac": ({"skip": False, "ratio": "gravac", "gravac": GRAVAC,
                "collectives": ["allgather"], "dense_switch": False}, GraVAC, GRAVAC),
    "dense": ({"skip": False, "ratio": 1.0}, Dense, {}),
    "scadles": ({"skip": False, "ratio": 1.0}, ScaDLES, {"ratio": None}),
}


def _composition_worker() -> dict:
    rank, comm = dist.get_rank(), Communicator()
    out = {}
    for name, (auto_opts, cls, single_opts) in PAIRS.items():
        streaming = name == "scadles"

        def auto(model, opt, o=auto_opts):
            return Auto(model.parameters(), opt, comm, buffers=_buffers(model), **o)

        def single(model, opt, c=cls, o=single_opts):
            return c(model.parameters(), opt, comm, buffers=_buffers(model), **o)

        out[name] = (_train(auto, rank, streaming), _train(single, rank, streaming))
    return out


@pytest.fixture(scope="module")
def composed():
    from flexsync.launch import run_local

    return run_local(_composition_worker, WORLD, (), backend="gloo", timeout_s=60,
                     deadline_s=180)


@pytest.mark.parametrize("name", ["topk", "flexible", "selsync", "gravac"])
def test_with_its_other_parts_off_auto_is_the_single_strategy_bit_for_bit(composed, name):
    for r in composed:
        auto, single = r[name]
        for step, ((a, sa), (s, ss)) in enumerate(zip(auto, single, strict=True)):
            assert torch.equal(a, s), f"{name} step {step}"
            for key in ("ratio", "k", "collective", "sync", "moo_phase", "cf", "theta_c",
                        "delta_c"):
                if key in ss:
                    assert sa[key] == ss[key], f"{name} step {step}: {key}"
    # the compared runs really exercised what they stand for
    signals = [sig for _, sig in composed[0]["selsync"][0]]
    assert {s["sync"] for s in signals} == {0, 1}
    assert {s["decision"] for s in signals} == {"local", "dense"}
    flexible = [sig for _, sig in composed[0]["flexible"][0]]
    assert len({s["collective"] for s in flexible}) > 1 and len({s["ratio"] for s in flexible}) > 1
    gravac = [sig for _, sig in composed[0]["gravac"][0]]
    assert len({s["cf"] for s in gravac}) > 1 and len({s["theta_c"] for s in gravac}) > 1


@pytest.mark.parametrize("name", ["dense", "scadles"])
def test_without_compression_and_skipping_auto_is_dense_or_weighted_dense(composed, name):
    """Equal up to the summation order of one allreduce: auto's dense message also carries
    the gain and its piggybacked floats, which moves the ring's chunk boundaries."""
    for r in composed:
        auto, single = r[name]
        for step, ((a, sa), (s, _)) in enumerate(zip(auto, single, strict=True)):
            torch.testing.assert_close(a, s, rtol=1e-5, atol=1e-6, msg=f"{name} step {step}")
            assert sa["decision"] == "dense"


AGREEMENT = {
    "moo": {"ratio": "moo", "moo": MOO},
    "gravac": {"ratio": "gravac", "gravac": GRAVAC},
}


def _agreement_worker(variant: str) -> list:
    rank, comm = dist.get_rank(), Communicator()

    def make(model, opt):
        return Auto(model.parameters(), opt, comm, buffers=_buffers(model), delta=0.5,
                    window=2, smoothing=0.5, max_local_steps=3, **AGREEMENT[variant])

    def diverge_timings(strat, step):
        # each rank measures its own selection time; from step 8 rank 2 is 100 s slower,
        # which moves the agreed mean past the dense threshold (a ring allreduce of 200 k
        # priced parameters takes 8.5 s at 1 Mbit/s)
        strat.compression.sparsifier.select_s += 1e-4 * (rank + 1) + (100.0 if rank == 2
                                                                       and step >= 8 else 0.0)

    return _train(make, rank, before_step=diverge_timings)


@pytest.mark.parametrize("variant", sorted(AGREEMENT))
def test_every_rank_takes_the_same_decisions_under_divergent_gradients_and_timings(
        run_workers, variant):
    res = run_workers(_agreement_worker, WORLD, variant, deadline_s=120)
    for step in range(STEPS):
        state0, sig0 = res[0][step]
        for rank in range(1, WORLD):
            state, sig = res[rank][step]
            assert {k: v for k, v in sig.items() if k != "delta"} == \
                {k: v for k, v in sig0.items() if k != "delta"}, f"step {step} rank {rank}"
            if sig0["sync"]:
                assert torch.equal(state, state0), f"step {step}: replicas after a sync"
    decisions = [sig for _, sig in res[0]]
    assert {s["decision"] for s in decisions} == {"local", "compressed", "dense"}
    assert len({s["collective"] for s in decisions if s["decision"] == "compressed"}) > 1
    # rank 2's slow selection, agreed (and smoothed), is what turned compression off
    late = [s for s in decisions[10:] if s["sync"]]
    assert late and all(s["decision"] == "dense" and s["compressed_s"] >= s["dense_s"]
                        for s in late)
    early = [s for s in decisions[:9] if s["decision"] == "compressed"]
    assert early and all(s["selection_s"] < 0.01 for s in early)
    assert any(s["delta"] != r[s_i][1]["delta"] for s_i, s in enumerate(decisions)
               for r in res[1:] if s["delta"] is not None)     # the votes' inputs differed
    if variant == "gravac":
        assert len({s["cf"] for s in decisions if "cf" in s}) > 1


def _switch_worker() -> list:
    comm = Communicator()
    out = []
    for ratio, selection_s in ((0.05, 0.0), (0.5, 0.0), (0.05, 10.0)):
        model = _model()
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        strat = Auto(model.parameters(), opt, comm, skip=False, ratio=ratio,
                     selection_s=selection_s)
        F.cross_entropy(model(torch.randn(4, 1, 8, 8)), torch.arange(4)).backward()
        strat.step(StepContext(0, 0.0, BANDWIDTH_BOUND))
        out.append(strat.signals())
    return out


def test_dense_exactly_when_selection_plus_compressed_is_not_below_dense(run_workers):
    n = sum(p.numel() for p in _model().parameters())
    a, b = BANDWIDTH_BOUND.alpha, BANDWIDTH_BOUND.beta
    dense = cost_model.dense_ring(n, WORLD, a, b)
    for r in run_workers(_switch_worker, WORLD):
        for sig, (ratio, sel) in zip(r, ((0.05, 0.0), (0.5, 0.0), (0.05, 10.0)), strict=True):
            best = cost_model.best_collective(n, ratio, WORLD, a, b)
            compressed = best.costs[best.collective] + sel
            assert sig["dense_s"] == pytest.approx(dense)
            assert sig["compressed_s"] == pytest.approx(compressed)
            expected = "dense" if compressed >= dense else best.collective
            assert sig["collective"] == expected, (ratio, sel)
        assert [s["decision"] for s in r] == ["compressed", "dense", "dense"]


def test_options_are_validated_and_registered():
    assert STRATEGIES["auto"] is Auto
    o = validate_options("auto", {})
    assert (o.ratio, o.skip, o.dense_switch, o.max_local_steps) == ("moo", True, True, 8)
    assert o.network_aware()
    with pytest.raises(ConfigError, match="aggregation must stay 'parameter'"):
        validate_options("auto", {"aggregation": "gradient"})
    with pytest.raises(ConfigError, match="online mode only"):
        validate_options("auto", {"moo": {"mode": "snapshot"}})
    assert validate_options("auto", {"ratio": "gravac"}).gravac.theta_min == 10
    with pytest.raises(ConfigError, match="'gravac' options need ratio: gravac"):
        validate_options("auto", {"gravac": {"window": 5}})
    with pytest.raises(ConfigError, match="error-fed vector only"):
        validate_options("auto", {"ratio": "gravac", "gravac": {"gain_denominator": "raw"}})
    with pytest.raises(ConfigError, match="ratio must be in"):
        validate_options("auto", {"ratio": 0.0})
    with pytest.raises(ConfigError, match="strategy.bogus: unknown option"):
        validate_options("auto", {"bogus": 1})


def test_a_run_logs_every_decision_and_draws_the_timeline(tmp_path):
    cfg = build_config({
        "workers": 2, "steps": 12, "batch_size": 16, "progress": False, "eval": {"every": 12},
        "clock": {"compute": "model"}, "out": str(tmp_path / "run"),
        "data": {"classes": 10, "train_size": 600, "test_size": 100},
        "network": {"kind": "modeled", "alpha": "1ms", "bandwidth": "100mbit"},
        "stream": {"rates": [20, 35], "policy": "persistence"},
        "strategy": {"name": "auto", "window": 3, "moo": {"warmup_steps": 3}}})
    summary = train(cfg)
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert len(rows) == 12
    for r in rows:
        assert r["decision"] in ("local", "compressed", "dense")
        assert r["sync"] == (r["decision"] != "local")
        assert r["alpha"] == pytest.approx(1e-3) and r["beta"] == pytest.approx(8e-8)
        assert (r["collective"] == "none") == (not r["sync"])
        if r["sync"]:
            assert 0 < r["ratio"] <= 1
    assert {r["decision"] for r in rows} >= {"local", "compressed"}
    assert len({tuple(r["batches"]) for r in rows}) >= 1 and rows[0]["batches"][0] != \
        rows[0]["batches"][1]                  # per-device batches from the streams' rates
    assert sum(summary["auto"]["decisions"].values()) == 12
    assert (tmp_path / "run" / "decisions.png").stat().st_size > 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["strategy"] == "auto"
