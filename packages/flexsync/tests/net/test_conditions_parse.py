"""NetworkConditions.parse takes the units config files use and names the field it rejects."""

import pytest

import flexsync
from flexsync import ConfigError, NetworkConditions


def test_parse_reads_config_units():
    c = NetworkConditions.parse(alpha="1ms", bandwidth="100mbit")
    assert c == NetworkConditions(1e-3, 12.5e6)
    assert NetworkConditions.parse(alpha=0.002, bandwidth="25MB/s") == NetworkConditions(2e-3, 25e6)
    assert flexsync.NetworkConditions is NetworkConditions        # exported


@pytest.mark.parametrize("alpha, bandwidth, match", [
    ("1 parsec", "100mbit", r"NetworkConditions\.alpha: expected a duration like '1ms'"),
    ("1ms", "fast", r"NetworkConditions\.bandwidth: expected a bandwidth like '100mbit'"),
    (-1, "100mbit", r"NetworkConditions\.alpha: duration must be a finite number >= 0"),
    ("1ms", 0, r"NetworkConditions\.bandwidth: bandwidth must be a finite number > 0"),
])
def test_parse_rejects_bad_values_naming_the_field(alpha, bandwidth, match):
    with pytest.raises(ConfigError, match=match):
        NetworkConditions.parse(alpha=alpha, bandwidth=bandwidth)
