"""Metrics agree with direct counting (design §4)."""

from __future__ import annotations

import pytest
import torch

from qtrojan.metrics import accuracy, attack_success_rate, target_margin


def test_metrics_match_counting() -> None:
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (500,), generator=gen)
    pred = torch.randint(0, 3, (500,), generator=gen)
    correct = sum(int(a == b) for a, b in zip(pred, y, strict=True))
    assert accuracy(pred, y) == pytest.approx(correct / 500)
    hits = [int(p == 2) for p, t in zip(pred, y, strict=True) if t != 2]
    assert attack_success_rate(pred, 2, y, non_target_only=True) == pytest.approx(
        sum(hits) / len(hits))
    assert attack_success_rate(pred, 2) == pytest.approx(float((pred == 2).float().mean()))


def test_margin_sign_agrees_with_argmax() -> None:
    logits = torch.randn(200, 4, generator=torch.Generator().manual_seed(1))
    for t in range(4):
        m = target_margin(logits, t)
        assert torch.equal(m > 0, logits.argmax(1) == t)


def test_empty_sets_are_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        attack_success_rate(torch.tensor([1, 1]), 1, torch.tensor([1, 1]), non_target_only=True)
    with pytest.raises(ValueError, match="shapes"):
        accuracy(torch.zeros(2), torch.zeros(3))
