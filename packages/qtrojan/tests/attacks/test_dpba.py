"""DPBA poison builder (design §3, §10 item 9)."""

from __future__ import annotations

import math

import pytest
import torch

from qtrojan.attacks.dpba import Trigger, poison, poison_count, triggered_test


def _data(n: int = 200, classes: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 4, generator=gen), torch.randint(0, classes, (n,), generator=gen)


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.1, 0.2, 0.3])
@pytest.mark.parametrize("target", [0, 2])
def test_poisoned_set_counts_sources_labels_and_trigger(rate: float, target: int) -> None:
    x, y = _data()
    trig = Trigger(feature=1, value=math.pi)
    ps = poison(x, y, rate, target, trig, seed=3)
    k = math.floor(rate * len(y))
    assert ps.n_poison == k == poison_count(rate, len(y))
    assert ps.x.shape[0] == len(y) + k and ps.n_clean == len(y)
    assert torch.equal(ps.x[:len(y)], x) and torch.equal(ps.y[:len(y)], y)
    assert len(set(ps.indices.tolist())) == k  # no sample poisoned twice
    assert (y[ps.indices] != target).all()
    assert (ps.y[len(y):] == target).all()
    added = ps.x[len(y):]
    assert (added[:, 1] == math.pi).all()
    other = [0, 2, 3]
    assert torch.equal(added[:, other], x[ps.indices][:, other])


def test_same_seed_same_indices_other_seed_differs() -> None:
    x, y = _data()
    a = poison(x, y, 0.2, 0, Trigger(), seed=1).indices
    assert torch.equal(a, poison(x, y, 0.2, 0, Trigger(), seed=1).indices)
    assert not torch.equal(a, poison(x, y, 0.2, 0, Trigger(), seed=2).indices)


def test_triggered_test_excludes_target_class() -> None:
    x, y = _data()
    xt, yt = triggered_test(x, y, 1, Trigger())
    assert (yt != 1).all() and xt.shape[0] == int((y != 1).sum())
    assert (xt[:, 0] == math.pi).all()
    xa, _ = triggered_test(x, y, 1, Trigger(), non_target_only=False)
    assert xa.shape[0] == len(y)
    assert not torch.equal(x[:, 0], xa[:, 0])  # stamping copies, never edits in place
    assert (x[:, 0] != math.pi).all()


def test_invalid_requests() -> None:
    x, y = _data(20, 2)
    with pytest.raises(ValueError, match="rate"):
        poison(x, y, 1.5, 0, Trigger())
    y = torch.zeros(20, dtype=torch.long)
    y[:2] = 1
    with pytest.raises(ValueError, match="non-target"):
        poison(x, y, 0.3, 0, Trigger())
    with pytest.raises(ValueError, match="feature"):
        Trigger(feature=9).stamp(x)
