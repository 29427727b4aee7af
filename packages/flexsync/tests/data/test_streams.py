"""Stream model and buffer policies (docs/methods.md §4.1, §4.3)."""

import math

import pytest
import torch

from flexsync.data.streams import (
    CyclicSource,
    StreamBuffer,
    clamp_batch,
    draw_rates,
)


def _buffer(rate, policy):
    return StreamBuffer(rate, CyclicSource(torch.arange(1000), seed=0), policy)


def test_persistence_grows_linearly_by_t_s_minus_b_per_step():
    S, t, b = 40.0, 1.5, 50
    buf = _buffer(S, "persistence")
    for step in range(1, 21):
        buf.advance(t)
        _, wait = buf.take(b)
        assert wait == 0.0
        assert buf.queue == pytest.approx(step * (t * S - b))


def test_truncation_keeps_at_most_the_last_steps_arrivals():
    S, t, b = 40.0, 1.5, 50
    buf = _buffer(S, "truncation")
    for _ in range(20):
        buf.advance(t)
        assert buf.queue <= S * t + 1e-9
        buf.take(b)
        assert buf.queue == pytest.approx(S * t - b)


@pytest.mark.parametrize("policy", ["persistence", "truncation"])
def test_wait_is_the_missing_samples_over_the_rate(policy):
    S, b = 12.0, 64
    buf = _buffer(S, policy)
    buf.advance(1.2)                                 # 14.4 samples held
    idx, wait = buf.take(b)
    assert wait == pytest.approx((b - 14.4) / S)
    assert len(idx) == b and buf.queue == pytest.approx(0.0)


def test_truncation_serves_the_newest_and_persistence_the_oldest_samples():
    src = CyclicSource(torch.arange(1000), seed=0)
    order = src.take(0, 200)
    tr = StreamBuffer(10.0, src, "truncation")
    tr.advance(10.0)                                 # positions 0..99 arrived
    assert torch.equal(tr.take(20)[0], order[80:100])
    pe = StreamBuffer(10.0, src, "persistence")
    pe.advance(10.0)
    assert torch.equal(pe.take(20)[0], order[0:20])
    assert torch.equal(pe.take(20)[0], order[20:40])


def test_cyclic_source_visits_the_whole_partition_each_pass():
    src = CyclicSource(torch.arange(50) * 2, seed=1)
    first, second = src.take(0, 50), src.take(50, 50)
    assert sorted(first.tolist()) == list(range(0, 100, 2)) == sorted(second.tolist())
    assert not torch.equal(first, second)
    assert torch.equal(src.take(45, 10), torch.cat([first[45:], second[:5]]))


def test_clamp_bounds():
    assert clamp_batch(3.0) == 8 and clamp_batch(5000.0) == 1024 and clamp_batch(38.4) == 38
    assert clamp_batch(40.0, tau=2.0, b_min=1, b_max=64) == 64


def test_rate_presets_match_the_papers_distributions_and_agree_across_ranks():
    r = draw_rates("S1", 20_000, seed=3)
    assert r == draw_rates("S1", 20_000, seed=3)
    t = torch.tensor(r)
    assert t.mean().item() == pytest.approx(38, rel=0.05)
    assert t.min().item() >= 1.0
    assert t.max().item() <= 38 + math.sqrt(3) * 24 + 1e-9
    n = torch.tensor(draw_rates("S2-normal", 20_000, seed=3))
    assert n.mean().item() == pytest.approx(256, rel=0.02)
    assert n.std().item() == pytest.approx(28, rel=0.05)
    assert draw_rates([5, 6, 7], 2, 0) == [5.0, 6.0]
    with pytest.raises(ValueError, match="3 rates for 4 workers"):
        draw_rates([1, 2, 3], 4, 0)
