"""Parse human-readable durations and bandwidths ("1ms", "100mbit", "10Gbit")."""

from __future__ import annotations

import math
import re

_NUM = r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*"

_TIME_UNITS = {"s": 1.0, "sec": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "": 1.0}

# Bandwidth units, as bytes per second. Bits use decimal prefixes (1 Gbit/s = 1.25e8 B/s, the
# conversion the papers' code uses); "B" means bytes.
_BW_UNITS = {
    "bit": 1 / 8, "kbit": 1e3 / 8, "mbit": 1e6 / 8, "gbit": 1e9 / 8, "tbit": 1e12 / 8,
    "bps": 1 / 8, "kbps": 1e3 / 8, "mbps": 1e6 / 8, "gbps": 1e9 / 8, "tbps": 1e12 / 8,
    "b/s": 1.0, "kb/s": 1e3, "mb/s": 1e6, "gb/s": 1e9,
}


def parse_duration(value: str | float | int) -> float:
    """Return seconds. Plain numbers are seconds; strings may carry s, ms, us or ns."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '1ms', got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"duration must be a finite number >= 0, got {value!r}")
        return float(value)
    m = re.fullmatch(_NUM + r"([a-zµ]*)\s*", str(value).lower())
    if not m or m.group(2) not in _TIME_UNITS:
        raise ValueError(f"expected a duration like '1ms', '250us' or '0.5s', got {value!r}")
    seconds = float(m.group(1)) * _TIME_UNITS[m.group(2)]
    if not math.isfinite(seconds):
        raise ValueError(f"duration must be finite, got {value!r}")
    return seconds


def parse_bandwidth(value: str | float | int) -> float:
    """Return bytes per second. Plain numbers are bytes/s; strings like '100mbit', '10Gbit',
    '1gbps' (bits) or '25MB/s' (bytes)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a bandwidth like '100mbit', got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"bandwidth must be a finite number > 0, got {value!r}")
        return float(value)
    text = str(value).strip()
    m = re.fullmatch(_NUM + r"([A-Za-z/]+)\s*", text)
    if m:
        unit = m.group(2)
        # "MB/s" (bytes) versus "mbit"/"Mbps" (bits): a capital B followed by /s means bytes.
        key = unit.lower() if not unit.endswith("B/s") else unit[:-3].lower() + "b/s"
        if key in _BW_UNITS:
            bw = float(m.group(1)) * _BW_UNITS[key]
            if not math.isfinite(bw) or bw <= 0:
                raise ValueError(f"bandwidth must be finite and > 0, got {value!r}")
            return bw
    raise ValueError(
        f"expected a bandwidth like '100mbit', '10Gbit', '1gbps' or '25MB/s', got {value!r}"
    )


def format_duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"


def format_bandwidth(bytes_per_s: float) -> str:
    bits = bytes_per_s * 8
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bits >= scale:
            return f"{bits / scale:.3g} {unit}"
    return f"{bits:.3g} bit/s"


def format_bytes(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"
