"""Partitioners (docs/methods.md §2.3–2.4): SelDP's per-step disjointness and per-epoch coverage,
and non-IID label shards for any worker count."""

import pytest
import torch

from flexsync.data.partition import (
    SelDPSampler,
    ShardSampler,
    label_shards,
    make_sampler,
    owned_labels,
)


@pytest.mark.parametrize("n, world, batch", [(1000, 4, 32), (1003, 3, 10), (97, 2, 7)])
def test_seldp_steps_are_disjoint_across_workers_and_each_epoch_covers_the_data(n, world, batch):
    samplers = [SelDPSampler(n, world, batch, seed=5, rank=r) for r in range(world)]
    spe = samplers[0].steps_per_epoch
    used = torch.cat(samplers[0].chunks)
    assert len(used) >= n - world * batch and len(set(used.tolist())) == len(used)
    for _ in range(2):                                       # two data-epochs
        seen = [[] for _ in range(world)]
        for _ in range(spe):
            batches = [s.next() for s in samplers]
            assert all(len(b) == batch for b in batches)
            flat = torch.cat(batches).tolist()
            assert len(set(flat)) == len(flat)               # disjoint across workers
            for r, b in enumerate(batches):
                seen[r] += b.tolist()
        for r in range(world):                               # each worker saw all of D once
            assert sorted(seen[r]) == sorted(used.tolist())
    state = samplers[1].state_dict()
    again = SelDPSampler(n, world, batch, seed=5, rank=1)
    again.load_state_dict(state)
    assert torch.equal(again.next(), samplers[1].next())


def test_seldp_orders_differ_between_epochs_and_rotate_by_rank():
    s = SelDPSampler(400, 4, 20, seed=0, rank=2)
    first = s.next()
    assert set(first.tolist()) <= set(s.chunks[2].tolist())  # worker 2 starts in chunk 2
    for _ in range(s.steps_per_epoch - 1):
        s.next()
    assert not torch.equal(s.next(), first)                  # reshuffled next epoch


@pytest.mark.parametrize("classes, world, per_worker", [(10, 5, None), (10, 4, None),
                                                        (10, 3, 4), (4, 6, None)])
def test_noniid_shards_hold_only_owned_labels(classes, world, per_worker):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(classes, (3000,), generator=g)
    owned = owned_labels(classes, world, per_worker)
    shards = label_shards(labels, world, seed=1, labels_per_worker=per_worker)
    assert len({len(s) for s in shards}) == 1 and len(shards[0]) > 0   # lock-step sizes
    all_idx = torch.cat(shards)
    assert len(set(all_idx.tolist())) == len(all_idx)                  # disjoint
    for r, shard in enumerate(shards):
        assert set(labels[shard].tolist()) <= set(owned[r])
    assert set().union(*map(set, owned)) == set(range(classes))         # every label owned
    if per_worker is None and classes % world == 0:                     # the paper's split
        assert owned == [list(range(r * classes // world, (r + 1) * classes // world))
                         for r in range(world)]


def test_noniid_rejects_unowned_labels_and_make_sampler_dispatches():
    labels = torch.arange(100) % 10
    with pytest.raises(ValueError, match="without a worker"):
        label_shards(labels, 4, seed=0, labels_per_worker=1)
    assert isinstance(make_sampler("seldp", labels, 4, 0, 5, 0), SelDPSampler)
    permute = make_sampler("seldp", labels, 4, 0, 5, 0, seldp_mode="permute")
    assert isinstance(permute, ShardSampler) and len(permute.indices) == 100
    assert isinstance(make_sampler("defdp", labels, 4, 0, 5, 0), ShardSampler)
    with pytest.raises(ValueError, match="partition"):
        make_sampler("iid", labels, 4, 0, 5, 0)
