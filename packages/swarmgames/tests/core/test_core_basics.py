"""Core: seeds, config validation, kinematics labels, channel ranges, mobility (§2)."""

import numpy as np
import pytest

from swarmgames.core.channel import Channel, ChannelConfig
from swarmgames.core.config import ConfigError, from_dict, set_dotted, to_dict
from swarmgames.core.kinematics import DoubleIntegrator, acceleration_labels, waypoint_ring
from swarmgames.core.mobility import MobilityConfig, UEMobility
from swarmgames.core.rng import SeedStreams, trajectory_hash
from swarmgames.games.config import FlockConfig


def test_streams_are_named_independent_and_reproducible():
    a, b = SeedStreams(7), SeedStreams(7)
    assert np.array_equal(a["layout"].random(5), b["layout"].random(5))
    # drawing from one stream does not shift another
    a["shadowing"].random(100)
    assert np.array_equal(a["policy"].random(3), b["policy"].random(3))
    other = SeedStreams(8)["layout"].random(5)
    assert not np.array_equal(other, SeedStreams(7)["layout"].random(5))
    with pytest.raises(KeyError, match="unknown random stream"):
        a["nope"]


def test_trajectory_hash_rounding_and_sensitivity():
    x = np.linspace(0, 1, 10)
    assert trajectory_hash({"x": x}) == trajectory_hash({"x": x + 1e-13})
    assert trajectory_hash({"x": x}) != trajectory_hash({"x": x + 1e-6})


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"^n_agents: expected an integer"):
        from_dict(FlockConfig, {"n_agents": "many"})
    with pytest.raises(ConfigError, match=r"^payoff\.w_goal: must be >= 0"):
        from_dict(FlockConfig, {"payoff": {"w_goal": -1}})
    with pytest.raises(ConfigError, match=r"^comm\.neighbourhod: unknown key"):
        from_dict(FlockConfig, {"comm": {"neighbourhod": "knn"}})
    with pytest.raises(ConfigError, match=r"^channel\.preset: must be one of"):
        from_dict(FlockConfig, {"channel": {"preset": "n9"}})


def test_config_round_trip_and_dotted_set():
    cfg = from_dict(FlockConfig, {"n_agents": 5, "goal": {"velocity": [1, 2]}})
    assert from_dict(FlockConfig, to_dict(cfg)) == cfg
    d: dict = {}
    set_dotted(d, "a.b.c", 3)
    assert d == {"a": {"b": {"c": 3}}}


def test_acceleration_labels_grid():
    lab = acceleration_labels(1.0, 5)
    assert lab.shape == (25, 2)
    assert np.allclose(np.unique(lab[:, 0]), [-1, -0.5, 0, 0.5, 1])
    assert len(waypoint_ring(8, (0.5, 1.0), 10.0)) == 17


def test_double_integrator_prediction_and_feasibility():
    dyn = DoubleIntegrator(dt=0.5, u_max=1.0, v_max=2.0)
    p = np.array([[0.0, 0.0], [5.0, 5.0]])
    v = np.array([[1.9, 0.0], [0.0, -2.0]])
    lab = acceleration_labels(1.0, 5)
    p2, v2, mask = dyn.predict_labels(p, v, lab)
    np.testing.assert_allclose(p2, p[:, None] + v[:, None] * 0.5 + 0.5 * lab[None] * 0.25)
    np.testing.assert_allclose(v2, v[:, None] + lab[None] * 0.5)
    assert np.array_equal(mask, np.max(np.abs(v2), axis=2) <= 2.0 + 1e-9)
    assert not mask.all() and mask.any(axis=1).all()
    pn, vn = dyn.step(p, v, np.array([[5.0, 0.0], [0.0, 0.0]]))
    assert np.abs(vn).max() <= 2.0 + 1e-12


@pytest.mark.parametrize("th,expected", [(-82, 147), (-85, 196), (-89, 288), (-96, 563)])
def test_channel_range_table_n24(th, expected):
    """§2.2 range table (σ = 0)."""
    assert Channel(ChannelConfig()).range_m(th) == pytest.approx(expected, abs=1.0)


def test_channel_preset_n30_addendum():
    ch = Channel(ChannelConfig(preset="n3.0"))
    assert ch.range_m(-85) == pytest.approx(65, abs=1.5)
    assert ch.range_m(-94) == pytest.approx(129, abs=1.5)
    # 30 dB per decade
    assert ch.rx_power(10.0) - ch.rx_power(100.0) == pytest.approx(30.0)


def test_links_directed_with_heterogeneous_power_and_symmetric_shadowing():
    ch = Channel(ChannelConfig(sigma_db=5.0))
    pos = np.array([[0.0, 0.0], [250.0, 0.0]])
    adj, _ = ch.links(pos, ptx_dbm=np.array([26.0, 16.02]))
    assert adj[0, 1] and not adj[1, 0]  # 1 hears the louder 0, not vice versa
    x = ch.draw_shadowing(6, np.random.default_rng(0))
    assert np.allclose(x, x.T) and np.all(np.diag(x) == 0) and x.std() > 0


def test_mobility_bounds_and_stationary():
    rng = np.random.default_rng(0)
    pos = rng.uniform(100, 900, (5, 2))
    st = UEMobility(MobilityConfig(), pos, 100, 900, rng)
    assert np.array_equal(st.step(1.0), pos)
    mv = UEMobility(MobilityConfig(model="random_waypoint"), pos, 100, 900, rng)
    for _ in range(300):
        p = mv.step(1.0)
        assert np.all((p >= 100) & (p <= 900))
    assert not np.allclose(p, pos)
