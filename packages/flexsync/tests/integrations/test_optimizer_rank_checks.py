"""Ranks built differently fail at construction, on every rank, naming the rank (world 2).

Specification: when rank 1 builds another layer width, another strategy, another keep
fraction, another learning rate, or passes an invalid option, constructing
DistributedOptimizer raises ConfigError on *every* rank within 10 s (instead of an
IndexError, a gloo size mismatch or a hang until the process-group timeout), and the message
names rank 1 and the difference. Ranks built alike pass the check.
"""

import time

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn

from flexsync import ConfigError, DistributedOptimizer

# case: (what rank 1 builds differently, words the message must contain)
CASES = {
    "width": ({"width": 17}, ["rank 1", "parameters", "0.weight", "(16, 6) float32",
                              "(17, 6) float32"]),
    "strategy": ({"strategy": "topk"}, ["rank 1", "strategy", '"dense"', '"topk"']),
    "ratio": ({"ratio": 0.05}, ["rank 1", "strategy", "ratio", "0.01", "0.05"]),
    "lr": ({"lr": 0.2}, ["rank 1", "optimizer", "lr", "0.1", "0.2"]),
    "invalid": ({"ratio": 1.5}, ["rank 1 could not build", "strategy.ratio"]),
    "alike": ({}, []),
}


def _build(width: int = 16, strategy: str = "artopk", ratio: float = 0.01,
           lr: float = 0.1) -> DistributedOptimizer:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, width), nn.ReLU(), nn.Linear(width, 3))
    options = {} if strategy == "dense" else {"ratio": ratio}
    return DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=lr), model,
                                strategy=strategy, **options)


def _attempt(case: str) -> tuple[str, float]:
    change, _ = CASES[case]
    base = {"strategy": "dense"} if case == "strategy" else {}
    own = {**base, **change} if dist.get_rank() == 1 else base
    start = time.monotonic()
    try:
        _build(**own)
    except ConfigError as e:
        return str(e), time.monotonic() - start
    return "", time.monotonic() - start


def _worker() -> dict[str, tuple[str, float]]:
    # A failed check leaves the process group usable: every case runs in one launch.
    return {case: _attempt(case) for case in CASES}


@pytest.fixture(scope="module")
def results():
    from flexsync.launch import run_local

    return run_local(_worker, 2, (), backend="gloo", timeout_s=60, deadline_s=60)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_mismatch_fails_on_every_rank_naming_the_rank(results, case):
    words = CASES[case][1]
    for rank_results in results:
        message, seconds = rank_results[case]
        assert seconds < 10
        if not words:
            assert message == ""
        for w in words:
            assert w in message, f"{w!r} not in {message!r}"


def test_descriptions_hold_no_process_specific_text():
    """Two processes started separately (torchrun) build equal optimizers whose groups may
    hold objects without a JSON form; their descriptions must still be equal."""
    from flexsync.integrations.consistency import _canonical, model_sections

    def sections():
        torch.manual_seed(0)
        model = nn.Linear(3, 2)
        opt = torch.optim.SGD(model.parameters(), lr=torch.tensor(0.1))
        opt.param_groups[0]["callback"] = object()          # repr would hold an address
        return model_sections(model, opt)

    a, b = sections(), sections()
    assert _canonical(a) == _canonical(b)
    assert '"lr": 0.10000000149011612' in _canonical(a)   # a tensor rate by value
