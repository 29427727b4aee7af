"""Bad input to the Python API is refused where it enters, naming the field and the range."""

import math
from types import SimpleNamespace

import pytest
import torch

from flexsync.net.conditions import NetworkConditions
from flexsync.strategies import build_strategy

COMM = SimpleNamespace(rank=0, world_size=1)     # never reached: validation comes first


@pytest.mark.parametrize("alpha, bandwidth, field", [
    (-1e-3, 1e6, "alpha"), (math.nan, 1e6, "alpha"), (1e-3, -5.0, "bandwidth"),
    (1e-3, 0.0, "bandwidth"), (1e-3, math.inf, "bandwidth"), ("1ms", 1e6, "alpha"),
])
def test_network_conditions_must_be_finite_and_in_range(alpha, bandwidth, field):
    with pytest.raises(ValueError, match=f"NetworkConditions.{field} must be a finite number"):
        NetworkConditions(alpha, bandwidth)


@pytest.mark.parametrize("name, options, match", [
    ("nope", {}, "unknown strategy 'nope'; expected one of"),
    ("topk", {"ratio": 1.5}, r"strategy.ratio: ratio must be in \(0, 1\] or 'moo' \(got 1.5\)"),
    ("topk", {"ratio": 0}, r"strategy.ratio: ratio must be in \(0, 1\]"),
    ("artopk", {"ratio": True}, r"strategy.ratio: a boolean is not a number \(got True\)"),
    ("artopk", {"ratio": 0.1, "index": "middle"},
     "strategy.index: Input should be 'star' or 'var'"),
])
def test_strategies_reject_bad_options_by_name(name, options, match):
    p = torch.nn.Parameter(torch.zeros(4))
    with pytest.raises(ValueError, match=match):
        build_strategy(name, [p], torch.optim.SGD([p], lr=0.1), COMM, **options)
