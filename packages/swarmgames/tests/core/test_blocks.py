"""Batched environments step their copies in consecutive blocks of at most ``block``."""

import numpy as np
import pytest

from swarmgames.core.blocks import make_blocks


def test_seeds_are_split_in_order_into_blocks_of_at_most_the_given_size():
    seeds, blocks = make_blocks(np.arange(130), 64, list)
    assert seeds == list(range(130)) and all(type(s) is int for s in seeds)
    assert [len(b) for b in blocks] == [64, 64, 2]
    assert [s for b in blocks for s in b] == seeds


@pytest.mark.parametrize("seeds, block, msg", [([], 4, "at least one"), ([1, 2], 0, "block")])
def test_an_empty_seed_list_or_a_block_below_one_is_refused(seeds, block, msg):
    with pytest.raises(ValueError, match=msg):
        make_blocks(seeds, block, list)
