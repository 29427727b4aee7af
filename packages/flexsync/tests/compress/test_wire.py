"""Compact sparse messages (docs/methods.md §0.2, "Compact messages"): block-coded positions are
exact and as long as promised; 16-bit values are clipped so sums stay finite, and what rounding
removes stays in error feedback."""

import pytest
import torch

from flexsync.compress import ErrorFeedback
from flexsync.compress.wire import (
    ascending,
    decode_indices,
    encode_indices,
    encode_values,
    index_coding,
    index_nbytes,
)


@pytest.mark.parametrize("numel, k", [(400, 20), (300_000, 3_000), (1_000_000, 10_000),
                                      (200_000, 1), (65_536 * 3 + 7, 500)])
def test_positions_round_trip_in_the_promised_number_of_bytes(numel, k):
    g = torch.Generator().manual_seed(numel + k)
    idx = torch.randperm(numel, generator=g)[:k].sort().values
    if numel > 65_536 * 3:
        idx[-1] = numel - 1                     # the last, partial block
    msg = encode_indices(idx, numel)
    assert msg.dtype == torch.uint8 and msg.numel() == index_nbytes(numel, k)
    assert torch.equal(decode_indices(msg, numel, k), idx)


def test_block_coding_is_chosen_exactly_when_smaller():
    assert index_coding(10_000_000, 100_000) == "block16"       # 2·k + 4·153 < 4·k
    assert index_nbytes(10_000_000, 100_000) == 2 * 100_000 + 4 * 153
    assert index_coding(10_000_000, 100) == "int32"             # 200 + 612 > 400
    assert index_nbytes(10_000_000, 100) == 400


def test_values_are_cast_and_fp16_is_clipped_for_the_sum():
    v = torch.tensor([1e6, -1e6, 0.1])
    assert encode_values(v, "fp32").dtype == torch.float32
    assert encode_values(v, "bf16").dtype == torch.bfloat16
    h = encode_values(v, "fp16", summands=4)
    assert h.dtype == torch.float16 and float(h[0]) == pytest.approx(65504 / 4, rel=1e-3)
    assert bool(torch.isfinite(h.float() * 4).all())
    with pytest.raises(ValueError, match=r"values must be one of \['bf16', 'fp16', 'fp32'\]"):
        encode_values(v, "int4")


def test_rounding_error_stays_in_the_residual():
    fed = torch.randn(1000, generator=torch.Generator().manual_seed(0)) * 100
    idx = torch.arange(0, 1000, 7)
    for name in ("fp16", "bf16"):
        ef = ErrorFeedback(1000)
        sent = encode_values(fed[idx], name).float()
        ef.absorb(fed, idx, sent)
        out = torch.zeros(1000)
        out[idx] = sent
        assert torch.equal(out + ef.residual, fed)               # nothing lost
        assert bool((ef.residual[idx] != 0).any())               # rounding did happen


def test_ascending_reorders_pairs_only_when_needed():
    v, i = torch.tensor([3.0, 1.0, 2.0]), torch.tensor([30, 10, 20])
    sv, si = ascending(v, i)
    assert si.tolist() == [10, 20, 30] and sv.tolist() == [1.0, 2.0, 3.0]
    v2, i2 = ascending(sv, si)
    assert v2 is sv and i2 is si
