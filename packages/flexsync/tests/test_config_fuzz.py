"""Fuzzing the configuration edge: random (mostly invalid) config trees and ``--set``
overrides either build a :class:`Config` or raise :class:`ConfigError` — never any other
exception type (a KeyError, TypeError or AttributeError would reach the user as a traceback).

The generator is seeded (reproducible): it starts from real config keys, strategy names and
network kinds, then mutates values to every YAML type (wrong types, negative, NaN/inf, huge,
empty, nested), adds unknown keys, and writes overrides with malformed paths and values.
"""

import math
import random

import pytest

from flexsync.config import Config, ConfigError, build_config, defaults
from flexsync.strategies import STRATEGIES

CASES = 1500

_STRATEGY_KEYS = ["ratio", "selector", "index", "var_score", "gain_norm", "moo", "algo",
                  "collectives", "hook", "delta", "delta_mode", "quantile", "window",
                  "theta_min", "theta_max", "epsilon", "omega", "low_cf", "high_cf", "fraction",
                  "period_epochs", "period_steps", "average_every", "base_batch", "policy"]
_NETWORK_KEYS = ["kind", "alpha", "bandwidth", "model_params", "preset", "stretch", "unit",
                 "phases", "estimate"]


def _scalar(rng: random.Random):
    return rng.choice([
        0, 1, -1, 3, 10**12, -(10**12), 0.5, -0.5, 1.5, 1e-9, math.nan, math.inf, -math.inf,
        True, False, None, "", "x", "moo", "1ms", "-1ms", "100mbit", "-100mbit", "0mbit",
        "1e999mbit", "nan", "star", "var", "ring", "C1", "step", "auto", "gloo",
        rng.random() * rng.choice([1, 10, 1000, -1]), rng.randint(-5, 300),
    ])


def _value(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if depth < 3 and roll < 0.12:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if depth < 3 and roll < 0.24:
        return {rng.choice(["a", "name", "kind", "ratio", 1, "start"]): _value(rng, depth + 1)
                for _ in range(rng.randint(0, 3))}
    return _scalar(rng)


def _section(rng: random.Random, tag: str, names: list[str], keys: list[str]):
    roll = rng.random()
    if roll < 0.1:
        return _value(rng)                         # wrong type for a whole section
    if roll < 0.2:
        return rng.choice(names + ["nope"])        # the string shorthand
    out = {}
    if rng.random() < 0.9:
        out[tag] = rng.choice(names + ["nope", 3, None])
    for key in rng.sample(keys, rng.randint(0, 4)):
        out[key] = _value(rng)
    if rng.random() < 0.1:
        out["unknown_key"] = _value(rng)
    return out


def _tree(rng: random.Random):
    base = defaults()
    tree = {}
    for key in rng.sample(sorted(base), rng.randint(0, 6)):
        default = base[key]
        if isinstance(default, dict) and rng.random() < 0.6:
            tree[key] = {k: (_value(rng) if rng.random() < 0.5 else v)
                         for k, v in default.items() if rng.random() < 0.5}
        else:
            tree[key] = _value(rng)
    if rng.random() < 0.5:
        tree["strategy"] = _section(rng, "name", sorted(STRATEGIES), _STRATEGY_KEYS)
    if rng.random() < 0.4:
        tree["network"] = _section(rng, "kind", ["modeled", "schedule", "loopback", "emulated"],
                                   _NETWORK_KEYS)
    if rng.random() < 0.05:
        tree[rng.choice(["bogus", 7, ""])] = _value(rng)
    return tree


def _override(rng: random.Random) -> str:
    path = rng.choice([
        "workers", "steps", "epochs", "batch_size", "strategy", "strategy.name",
        "strategy.ratio", "strategy.moo.c_low", "network.kind", "network.bandwidth",
        "network.alpha", "network.phases", "data.train_size", "optimizer.lr", "eval.every",
        "a..b", ".", "", "workers.x", "strategy.name.x", "unknown.deep.key",
    ])
    value = rng.choice(["1", "-3", "0", "1e9", ".nan", ".inf", "[1, 2", "{a: 1}", "", "topk",
                        "artopk", "moo", "-1mbit", "0", "null", "true", "'x'", ": :", "!!set {}",
                        "[]", "{}", "2ms"])
    return path if rng.random() < 0.05 else f"{path}={value}"


@pytest.mark.parametrize("seed", range(3))
def test_build_config_returns_a_config_or_raises_config_error(seed):
    rng = random.Random(seed)
    outcomes = {"ok": 0, "error": 0}
    for case in range(CASES // 3):
        tree = _tree(rng) if rng.random() < 0.95 else _value(rng)
        overrides = [_override(rng) for _ in range(rng.choice([0, 0, 1, 2]))]
        try:
            cfg = build_config(tree, overrides)
        except ConfigError as e:
            assert str(e), "a ConfigError must say what is wrong"
            outcomes["error"] += 1
        except Exception as e:                     # noqa: BLE001 - the property under test
            pytest.fail(f"case {seed}/{case}: {type(e).__name__}: {e}\n"
                        f"tree={tree!r}\noverrides={overrides!r}")
        else:
            assert isinstance(cfg, Config)
            outcomes["ok"] += 1
    # the generator must exercise both sides, or the property says little
    assert outcomes["ok"] > 10 and outcomes["error"] > 100, outcomes


@pytest.mark.parametrize("overrides, match", [
    (["network.bandwidth=-100mbit"], "network.bandwidth"),
    (["network.bandwidth=-5"], r"network.bandwidth: bandwidth must be a finite number > 0"),
    (["network.bandwidth=.nan"], "network.bandwidth"),
    (["network.alpha=.inf"], "network.alpha"),
    (["strategy.name=topk", "strategy.ratio=1.5"], r"strategy.ratio: ratio must be in \(0, 1\]"),
    (["strategy.name=nope"], "strategy.name: unknown value 'nope'; expected one of"),
    (["workers=0"], "workers"),
])
def test_bad_values_name_the_key_and_the_allowed_range(overrides, match):
    with pytest.raises(ConfigError, match=match):
        build_config({}, overrides)
