"""Disc obstacles (issue 22): clearance, line-of-sight blockage and seeded placement."""

import numpy as np
import pytest

from swarmgames.core.config import ConfigError, from_dict
from swarmgames.core.obstacles import ObstacleConfig, Obstacles, place_obstacles


def test_clearance_is_distance_to_the_nearest_surface():
    obs = Obstacles([[0.0, 0.0], [10.0, 0.0]], [2.0, 1.0])
    c = obs.clearance(np.array([[0.0, 5.0], [10.0, 0.5], [5.0, 0.0]]))
    np.testing.assert_allclose(c, [3.0, -0.5, 3.0])
    assert np.isinf(Obstacles(np.zeros((0, 2)), np.zeros(0)).clearance(np.zeros((3, 2)))).all()


def test_a_link_is_blocked_only_when_its_segment_crosses_a_disc():
    obs = Obstacles([[0.0, 0.0]], [1.0])
    pos = np.array([[-5.0, 0.0], [5.0, 0.0], [-5.0, 3.0], [5.0, 3.0], [0.5, 5.0]])
    b = obs.blocked(pos)
    assert b[0, 1] and b[1, 0]                         # straight through the disc
    assert not b[2, 3] and not b[0, 2] and not b[1, 3]  # passes above / beside it
    assert not b.diagonal().any() and (b == b.T).all()
    loss = obs.blockage_db(pos, 20.0)
    assert loss[0, 1] == -20.0 and loss[2, 3] == 0.0


def test_placement_is_seeded_without_overlap_and_clear_of_the_start():
    cfg = ObstacleConfig(count=6)
    start = np.random.default_rng(0).uniform(0, 40, size=(16, 2))
    a = place_obstacles(cfg, start, np.array([2.0, 1.0]), np.random.default_rng(5))
    b = place_obstacles(cfg, start, np.array([2.0, 1.0]), np.random.default_rng(5))
    np.testing.assert_array_equal(a.centres, b.centres)
    assert len(a) == 6
    d = np.linalg.norm(a.centres[:, None] - a.centres[None], axis=2)
    iu = np.triu_indices(6, 1)
    assert (d[iu] >= (a.radii[:, None] + a.radii[None])[iu]).all()
    assert (a.clearance(start) >= cfg.start_clear_m - 1e-9).all()
    assert len(place_obstacles(ObstacleConfig(), start, np.ones(2),
                               np.random.default_rng(0))) == 0


def test_impossible_placement_and_bad_config_name_the_key():
    with pytest.raises(ValueError, match="could not place"):
        place_obstacles(ObstacleConfig(count=5, radius_m=(30.0, 30.0), along_m=(50.0, 50.0),
                                       lateral_m=0.0), np.zeros((1, 2)), np.ones(2),
                        np.random.default_rng(0))
    with pytest.raises(ConfigError, match="radius_m"):
        from_dict(ObstacleConfig, {"radius_m": [5.0, 1.0]})
