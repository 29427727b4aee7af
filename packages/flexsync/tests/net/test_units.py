import pytest

from flexsync.net.units import parse_bandwidth, parse_duration


@pytest.mark.parametrize("text, seconds", [
    ("1ms", 1e-3), ("250us", 2.5e-4), ("0.5s", 0.5), ("2", 2.0), (0.25, 0.25), ("1e-3s", 1e-3),
])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text, bytes_per_s", [
    ("100mbit", 12.5e6), ("10Gbit", 1.25e9), ("1gbps", 1.25e8), ("25MB/s", 25e6),
    ("8kbit", 1e3), (1000, 1000.0),
])
def test_bandwidths(text, bytes_per_s):
    assert parse_bandwidth(text) == pytest.approx(bytes_per_s)


@pytest.mark.parametrize("bad", ["fast", "1 parsec", "-1ms", "", True])
def test_bad_durations_are_rejected(bad):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize("bad", ["quick", "100", "0mbit", "10 furlongs", -5])
def test_bad_bandwidths_are_rejected(bad):
    with pytest.raises(ValueError, match="bandwidth"):
        parse_bandwidth(bad)
