"""Selectors, error feedback and gains (docs/methods.md §0.2, §1.3)."""

import pytest
import torch

from flexsync.compress import (
    ErrorFeedback,
    candidate_gains,
    compression_gain,
    layerwise_topk,
    multilevel_topk,
    randomk,
    select,
    threshold_topk,
    topk,
)


def _vec(n=5000, seed=0):
    return torch.randn(n, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("selector", ["topk", "layerwise", "randomk", "threshold"])
def test_sent_plus_new_residual_equals_error_fed_exactly(selector):
    ef = ErrorFeedback(5000)
    gen = torch.Generator().manual_seed(3)
    for step in range(4):
        fed = ef.feed(_vec(seed=step))
        idx = select(selector, fed, 0.01, sizes=[1000, 4000], generator=gen)
        sent = torch.zeros_like(fed)
        sent[idx] = fed[idx]
        ef.absorb(fed, idx)
        assert torch.equal(sent + ef.residual, fed)
        assert int((ef.residual == 0).sum()) >= idx.numel()


def test_residual_starts_at_zero_resets_and_round_trips():
    ef = ErrorFeedback(10)
    assert torch.equal(ef.residual, torch.zeros(10))
    ef.absorb(torch.arange(10.0), torch.tensor([9]))
    state = ef.state_dict()
    other = ErrorFeedback(10)
    other.load_state_dict(state)
    assert torch.equal(other.residual, ef.residual)
    ef.reset()
    assert torch.equal(ef.residual, torch.zeros(10))


def test_topk_picks_the_largest_magnitudes_with_the_k_rule():
    x = _vec()
    idx = topk(x, 50)
    assert idx.numel() == 50 == len(set(idx.tolist()))
    assert x.abs()[idx].min() >= x.abs().sort(descending=True).values[49]
    assert select("topk", x, 0.0001).numel() == 1          # k = max(1, ⌊c·n⌋)


def test_layerwise_keeps_k_per_layer():
    x = _vec(3000)
    idx = layerwise_topk(x, [1000, 2000], 0.01)
    assert (idx < 1000).sum() == 10 and (idx >= 1000).sum() == 20


def test_randomk_uses_its_own_generator_only():
    before = torch.random.get_rng_state()
    a = randomk(1000, 10, torch.Generator().manual_seed(5))
    b = randomk(1000, 10, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and len(set(a.tolist())) == 10
    assert torch.equal(torch.random.get_rng_state(), before)


def test_threshold_topk_returns_exactly_k_and_mostly_the_true_top():
    x = _vec(100_000)
    idx = threshold_topk(x, 1000, torch.Generator().manual_seed(0))
    assert idx.numel() == 1000 == len(set(idx.tolist()))
    exact = set(topk(x, 1000).tolist())
    assert len(exact & set(idx.tolist())) >= 900


def test_multilevel_equals_direct_topk_on_tie_free_vectors():
    for seed in range(5):
        x = _vec(20_000, seed)
        first = topk(x, 2000)
        vals, idx2 = multilevel_topk(x[first], first, 200)
        direct = topk(x, 200)
        assert set(idx2.tolist()) == set(direct.tolist())
        assert torch.equal(vals.sort().values, x[direct].sort().values)


def test_gain_is_a_fraction_and_candidate_gains_match_direct_compression():
    x = _vec()
    ratios = [0.1, 0.033, 0.011, 0.004, 0.001]
    cands = candidate_gains(x, ratios)
    for r, g in zip(ratios, cands, strict=True):
        idx = select("topk", x, r)
        assert g == pytest.approx(compression_gain(x[idx], x), rel=1e-5)
        assert 0 <= g <= 1
    assert cands == sorted(cands, reverse=True)
    assert compression_gain(x, x) == pytest.approx(1.0)
    l2 = candidate_gains(x, [0.01], norm="l2")[0]
    assert l2 == pytest.approx(candidate_gains(x, [0.01])[0] ** 0.5)
