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
    (["network.bandwidth=-5"], r"network.bandwidth: -5 has no unit; write it with one"),
    (["network.bandwidth=.nan"], "network.bandwidth"),
    (["network.alpha=.inf"], "network.alpha"),
    (["strategy.name=topk", "strategy.ratio=1.5"], r"strategy.ratio: ratio must be in \(0, 1\]"),
    (["strategy.name=nope"], "strategy.name: unknown value 'nope'; expected one of"),
    (["workers=0"], "workers"),
])
def test_bad_values_name_the_key_and_the_allowed_range(overrides, match):
    with pytest.raises(ConfigError, match=match):
        build_config({}, overrides)


# -- the edge, case by case ---------------------------------------------------------------------
# Every value that used to pass validation and then fail inside the workers (or silently mean
# something else) is refused with a message naming its key; each row is (overrides, key).
REFUSED = [
    (["epochs=.inf"], "epochs"), (["epochs=-.inf"], "epochs"), (["epochs=.nan"], "epochs"),
    (["epochs=1e300"], "epochs"), (["epochs=0"], "epochs"), (["steps=0"], "steps"),
    (["steps=1e30"], "steps"), (["steps=true"], "steps"), (["steps=2.5"], "steps"),
    (["timeout_s=.inf"], "timeout_s"), (["timeout_s=1e-9"], "timeout_s"),
    (["timeout_s=0"], "timeout_s"), (["timeout_s=-1"], "timeout_s"),
    (["timeout_s=.nan"], "timeout_s"), (["timeout_s=1e300"], "timeout_s"),
    (["stall_timeout_s=-1"], "stall_timeout_s"), (["stall_timeout_s=.inf"], "stall_timeout_s"),
    (["optimizer.lr=1e300"], "optimizer.lr"), (["optimizer.lr=.inf"], "optimizer.lr"),
    (["optimizer.lr=0"], "optimizer.lr"), (["optimizer.lr=-0.1"], "optimizer.lr"),
    (["optimizer.lr=.nan"], "optimizer.lr"), (["optimizer.weight_decay=1e300"],
                                               "optimizer.weight_decay"),
    (["optimizer.momentum=1"], "optimizer.momentum"), (["optimizer.lr=true"], "optimizer.lr"),
    (["stream.rates=[.inf, 10]"], "stream.rates"), (["stream.rates=[10, .nan]"], "stream.rates"),
    (["stream.rates=[1e300]"], "stream.rates"), (["stream.rates=[0, 1]"], "stream.rates"),
    (["stream.rates=[]"], "stream"), (["stream.tau=.inf"], "stream.tau"),
    (["stream.drift=1"], "stream.drift"),
    (["out=/dev/null"], "out"), (["out=.."], "out"), (["out=../.."], "out"), (["out=."], "out"),
    (["out=''"], "out"), (["out=/"], "out"),
    (["network.kind=emulated", "workers=251"], "workers"),
    (["network.kind=emulated", "workers=256"], "workers"),
    (["network.kind=emulated", "network.bandwidth=1bit"], "network.bandwidth"),
    (["network.kind=emulated", "network.bandwidth=8kbit"], "network.bandwidth"),
    (["workers=257"], "workers"), (["workers=0"], "workers"), (["workers=-1"], "workers"),
    (["data.train_size=100000000"], "data"), (["data.image_size=4096"], "data"),
    (["data.test_size=1000000000"], "data"),
    (["dataset=synthetic-text", "model=lstm", "data.train_tokens=10000000000"], "data"),
    (["network.alpha=5"], "network.alpha"), (["network.alpha='5'"], "network.alpha"),
    (["network.alpha=0.001"], "network.alpha"), (["network.bandwidth=100"], "network.bandwidth"),
    (["network.bandwidth='1e6'"], "network.bandwidth"),
    (["network.kind=emulated", "network.delay=2"], "network.delay"),
    (["clock.t1=0.5"], "clock.t1"), (["clock.t0=1"], "clock.t0"),
    (["network.alpha=-1ms"], "network.alpha"), (["network.alpha=.inf"], "network.alpha"),
    (["network.bandwidth=0mbit"], "network.bandwidth"),
    (["network.bandwidth=1e999mbit"], "network.bandwidth"),
    (["network.alpha=true"], "network.alpha"), (["network.bandwidth=false"],
                                                 "network.bandwidth"),
    (["workers=true"], "workers"), (["workers=false"], "workers"),
    (["batch_size=true"], "batch_size"), (["seed=true"], "seed"),
    (["eval.every=true"], "eval.every"), (["checkpoint.every=true"], "checkpoint.every"),
    (["data.train_size=true"], "data.train_size"), (["stream.b_min=true"], "stream.b_min"),
    (["network.kind=schedule", "network.preset=C1", "network.stretch=.inf"], "network.stretch"),
    (["network.kind=schedule", "network.phases=[{start: .inf, alpha: 1ms, bandwidth: 1gbit}]"],
     "network.phases"),
    (["network.kind=schedule", "network.phases=[{start: 0, alpha: 1, bandwidth: 1gbit}]"],
     "network.phases"),
    (["network.model_params=.inf"], "network.model_params"),
    (["target.accuracy=.nan"], "target.accuracy"),
    (["logging.progress_every_s=.inf"], "logging.progress_every_s"),
]


@pytest.mark.parametrize("overrides, key", REFUSED, ids=[" ".join(o) for o, _ in REFUSED])
def test_each_edge_value_is_refused_naming_its_key(overrides, key, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        build_config({}, overrides)
    text = str(err.value)
    assert f"  {key}" in text or text.startswith(key), text


# Values at the edge that are right: accepted, and meaning what they say.
ACCEPTED = [
    (["network.alpha=5ms"], lambda c: c.network.alpha == pytest.approx(0.005)),
    (["network.alpha=0"], lambda c: c.network.alpha == 0.0),
    (["network.bandwidth=25MB/s"], lambda c: c.network.bandwidth == 25e6),
    (["network.bandwidth=100mbit"], lambda c: c.network.bandwidth == 12.5e6),
    (["timeout_s=1"], lambda c: c.timeout_s == 1.0),
    (["network.kind=emulated", "workers=250"], lambda c: c.workers == 250),
    (["network.kind=emulated", "network.bandwidth=64kbit"],
     lambda c: c.network.bandwidth == 8000),
    (["stall_timeout_s=0"], lambda c: c.stall_timeout_s == 0),
    (["epochs=2.5"], lambda c: c.epochs == 2.5 and c.steps is None),
    (["out=runs/x"], lambda c: c.out == "runs/x"),
]


@pytest.mark.parametrize("overrides, check", ACCEPTED, ids=[" ".join(o) for o, _ in ACCEPTED])
def test_edge_values_that_are_right_mean_what_they_say(overrides, check, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check(build_config({}, overrides))


def test_a_config_written_by_a_run_loads_back_to_the_same_values(tmp_path):
    """Durations and bandwidths are written with their units, so config.yaml round-trips."""
    import yaml

    from flexsync.config import dump_config

    cfg = build_config({}, ["network.alpha=3ms", "network.bandwidth=40mbit", "clock.t1=2us"])
    again = build_config(yaml.safe_load(dump_config(cfg)))
    assert again == cfg


def _cli(argv, tmp_path, monkeypatch, capsys):
    from flexsync.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("text, where", [
    ("workers: 2\nsteps: [1,\n", "c.yaml:3:1"),
    ("workers: 2\n  steps: 3\n", "c.yaml:2:8"),
    ("a: b: c\n", "c.yaml:1:5"),
    ("workers: !!python/object:os.system 'echo hi'\n", "c.yaml:1:10"),
    ("\tworkers: 2\n", "c.yaml:1:1"),
])
def test_a_yaml_error_names_file_line_and_column(text, where, tmp_path, monkeypatch, capsys):
    (tmp_path / "c.yaml").write_text(text)
    code, err = _cli(["run", "c.yaml", "--print-config"], tmp_path, monkeypatch, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and where in lines[0], err


def test_a_config_file_that_is_not_text_is_refused(tmp_path, monkeypatch, capsys):
    (tmp_path / "c.yaml").write_bytes(b"\xff\xfe\x00bad")
    code, err = _cli(["run", "c.yaml", "--print-config"], tmp_path, monkeypatch, capsys)
    assert code == 2 and "c.yaml" in err


def test_set_without_equals_is_not_read_as_a_config_path(tmp_path, monkeypatch, capsys):
    code, err = _cli(["run", "--set", "workers", "3"], tmp_path, monkeypatch, capsys)
    assert code == 2 and "did you mean --set workers=3?" in err


def test_nccl_without_cuda_is_refused_before_any_worker(tmp_path, monkeypatch, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, err = _cli(["run", "--set", "backend=nccl", "--set", "steps=1"], tmp_path,
                     monkeypatch, capsys)
    assert code == 2 and "backend: 'nccl' needs a CUDA device" in err


def test_the_edge_table_covers_at_least_75_cases():
    assert len(REFUSED) + len(ACCEPTED) >= 75
