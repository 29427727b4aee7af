import math

import numpy as np
import torch

from flexsync.data import load_dataset
from flexsync.data.partition import ShardSampler, random_equal_split
from flexsync.data.synthetic import markov_chain, synthetic_images, synthetic_text


def test_synthetic_images_are_seeded_and_shaped():
    a = synthetic_images(seed=3, classes=10, train_size=500, test_size=100)
    b = synthetic_images(seed=3, classes=10, train_size=500, test_size=100)
    c = synthetic_images(seed=4, classes=10, train_size=500, test_size=100)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert not torch.equal(a.train_x, c.train_x)
    assert a.train_x.shape == (500, 3, 16, 16) and a.num_classes == 10
    assert set(a.train_y.tolist()) == set(range(10))


def test_synthetic_images_carry_class_signal():
    """Nearest-prototype-mean classification beats chance by far at low noise, and the task
    gets harder as noise grows."""
    def centroid_acc(noise):
        d = synthetic_images(seed=0, classes=10, prototypes=1, noise=noise, train_size=2000,
                             test_size=500)
        cents = torch.stack([d.train_x[d.train_y == k].mean(0) for k in range(10)]).flatten(1)
        pred = torch.cdist(d.test_x.flatten(1), cents).argmin(1)
        return (pred == d.test_y).float().mean().item()
    easy, hard = centroid_acc(0.3), centroid_acc(3.0)
    assert easy > 0.5 and hard < easy


def test_text_entropy_rate_is_the_empirical_cross_entropy_floor():
    d = synthetic_text(seed=0, vocab=50, support=5, train_tokens=60_000, test_tokens=1000)
    P, _ = markov_chain(50, 5, 1.1, 0)
    toks = d.train_x.flatten()
    nxt = d.train_y.flatten()
    nll = -np.log(P[toks.numpy(), nxt.numpy()]).mean()
    assert math.isclose(nll, d.info["entropy_rate_nats"], rel_tol=0.03)
    assert d.task == "language" and d.train_x.shape[1] == 35


def test_bundled_digits_and_mnist_load_offline():
    dg = load_dataset("digits", 0)
    assert dg.train_x.shape[1:] == (1, 8, 8) and len(dg.train_x) + len(dg.test_x) == 1797
    mn = load_dataset("mnist", 0)
    assert mn.train_x.shape[1:] == (1, 28, 28) and len(mn.train_x) + len(mn.test_x) == 5000


def test_equal_split_is_disjoint_and_equal():
    shards = random_equal_split(103, 4, seed=0)
    assert [len(s) for s in shards] == [25] * 4
    allidx = torch.cat(shards)
    assert len(set(allidx.tolist())) == 100


def test_sampler_covers_its_shard_each_epoch_and_reshuffles():
    shard = torch.arange(40)
    s = ShardSampler(shard, 8, seed=1, rank=0)
    epoch0 = torch.cat([s.next() for _ in range(5)])
    epoch1 = torch.cat([s.next() for _ in range(5)])
    assert sorted(epoch0.tolist()) == list(range(40)) == sorted(epoch1.tolist())
    assert not torch.equal(epoch0, epoch1)
    t = ShardSampler(shard, 8, seed=1, rank=0)
    t.load_state_dict({"epoch": 1, "position": 2})
    assert torch.equal(t.next(), epoch1[16:24])
