"""The adaptive-threshold selector (docs/methods.md §0.2, "Selection at memory speed"): exact
top-k whenever its reused threshold keeps enough entries, exactly k always, and cheap steps
(no fresh estimate) while the gradient's scale drifts slowly."""

import pytest
import torch

from flexsync.compress import AdaptiveThreshold, Sparsifier, select, topk


def _vec(n: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(n, generator=torch.Generator().manual_seed(seed))


def test_every_call_is_the_exact_top_k_in_ascending_order():
    sel = AdaptiveThreshold(20_000, torch.Generator().manual_seed(0))
    for step, (scale, k) in enumerate([(1.0, 200), (1.05, 200), (1.1, 200), (0.9, 200),
                                       (1.0, 50), (30.0, 50), (0.01, 400)]):
        x = _vec(20_000, step, scale)
        idx = sel(x, k)
        assert idx.dtype == torch.int64 and idx.numel() == k
        assert bool((idx[1:] > idx[:-1]).all())                     # ascending, distinct
        assert set(idx.tolist()) == set(topk(x, k).tolist())         # tie-free: exact


def test_a_slowly_drifting_gradient_reuses_the_threshold():
    sel = AdaptiveThreshold(50_000, torch.Generator().manual_seed(1))
    for step in range(10):
        sel(_vec(50_000, step, 1.0 + 0.02 * step), 500)
    assert sel.stats["estimates"] == 1 and sel.stats["exact_fallbacks"] == 0
    assert sel.threshold is not None


def test_a_jump_in_scale_re_estimates_and_stays_exact():
    sel = AdaptiveThreshold(50_000, torch.Generator().manual_seed(2))
    sel(_vec(50_000, 0), 500)
    x = _vec(50_000, 1, 1e-3)                     # the old threshold keeps nothing
    assert set(sel(x, 500).tolist()) == set(topk(x, 500).tolist())
    assert sel.stats["estimates"] == 2


def test_large_k_and_wrong_lengths():
    sel = AdaptiveThreshold(100, torch.Generator())
    x = _vec(100, 0)
    assert set(sel(x, 60).tolist()) == set(topk(x, 60).tolist())
    with pytest.raises(ValueError, match="built for 100"):
        sel(_vec(99, 0), 5)


def test_one_off_dispatch_needs_a_generator():
    x = _vec(10_000, 3)
    idx = select("adaptive", x, 0.01, generator=torch.Generator().manual_seed(0))
    assert set(idx.tolist()) == set(topk(x, 100).tolist())
    with pytest.raises(ValueError, match="needs a torch.Generator"):
        select("adaptive", x, 0.01)


def test_the_sparsifier_checkpoints_its_threshold():
    sp = Sparsifier(10_000)                       # adaptive is the default
    assert sp.selector == "adaptive"
    sp.select(_vec(10_000, 0), 0.01)
    state = sp.state_dict()
    other = Sparsifier(10_000)
    other.load_state_dict(state)
    assert other.adaptive.threshold == sp.adaptive.threshold is not None
    del state["selector"]                         # a checkpoint from before the selector
    Sparsifier(10_000).load_state_dict(state)
