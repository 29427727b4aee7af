"""``flexsync bench quality``: the pricing shortcut is exact, network-independent strategies
really are, targets and intervals are computed as stated, and a run that misses the target is
never a speed-up."""

import importlib.util
import math

import pytest

from flexsync import quality
from flexsync.api import train
from flexsync.train.metrics import read_metrics

TINY = ["data.classes=10", "data.train_size=1600", "data.test_size=400", "steps=6",
        "eval.every=3"]


def _run(strategy: str, regime: str, tmp_path, seed: int = 0):
    cfg = quality._config("cnn", strategy, regime, seed, 2, TINY)
    out = tmp_path / f"{strategy}-{regime}"
    s = train(cfg.model_copy(update={"out": str(out)}))
    return cfg, s, read_metrics(out / "metrics.jsonl")


@pytest.mark.parametrize("regime", ["bw-100mbit", "changing-C1", "bw-100mbit@resnet101"])
def test_pricing_a_run_under_its_own_network_reproduces_its_clock(regime, tmp_path):
    cfg, s, rows = _run("topk-100x", regime, tmp_path)
    curve = quality.priced_curve(rows, cfg, s["params"])
    assert [step for step, _ in curve] == [r["step"] for r in rows]
    for (_, t), r in zip(curve, rows, strict=True):
        assert t == pytest.approx(r["modeled_time"], rel=1e-9)


PRICED = [n for n, o in quality.STRATEGIES.items()
          if not quality._config("cnn", n, "bw-100mbit", 0, 2, TINY).strategy.network_aware()]


def test_the_adaptive_methods_that_read_the_network_are_declared_network_aware():
    aware = set(quality.STRATEGIES) - set(PRICED)
    assert {"gravac", "flexible-100x", "flexible-moo", "auto"} <= aware
    assert {"dense", "topk-100x", "selsync", "accordion", "ddp-powersgd-r4"} <= set(PRICED)


# One of each kind in the default suite; every priced strategy behind the slow marker.
SAMPLE = {"dense", "topk-100x", "selsync", "ddp-powersgd-r4", "accordion"}


# torchft's peers (issue #19) need the optional extra
_NO_TORCHFT = pytest.mark.skipif(importlib.util.find_spec("torchft") is None,
                                 reason="torchft not installed")


@pytest.mark.parametrize("strategy", [
    s if s in SAMPLE else pytest.param(s, marks=[pytest.mark.slow] + (
        [_NO_TORCHFT] if quality.STRATEGIES[s]["name"] == "torchft" else []))
    for s in PRICED])
def test_a_strategy_priced_afterwards_sends_the_same_messages_under_every_network(
        strategy, tmp_path):
    _, _, fast = _run(strategy, "latency-10ms-10gbit", tmp_path)
    _, _, slow = _run(strategy, "bw-20mbit", tmp_path)
    assert [r["comm"] for r in fast] == [r["comm"] for r in slow]
    assert [r["loss"] for r in fast] == [r["loss"] for r in slow]


def test_plan_trains_network_aware_strategies_once_per_regime_and_the_rest_once():
    regimes = ["bw-100mbit", "bw-20mbit", "latency-10ms-10gbit"]
    cells = quality.plan(["cnn"], regimes, ["topk-100x", "gravac"], [0, 1], 2, TINY)
    by = {}
    for c in cells:
        by.setdefault(c.strategy, []).append(c)
    assert cells[0].strategy == "dense"                 # dense sets the target: first
    assert len(by["dense"]) == len(by["topk-100x"]) == 2
    assert all(c.priced == regimes for c in by["topk-100x"])
    assert len(by["gravac"]) == 6 and all(len(c.priced) == 1 for c in by["gravac"])
    assert len({c.dir for c in cells}) == len(cells)


def test_t_interval_matches_the_student_t_formula():
    m, h = quality.t_interval([1.0, 2.0, 3.0])
    assert m == 2.0 and h == pytest.approx(4.302652729911275 / math.sqrt(3), rel=1e-9)
    assert quality.t_interval([5.0]) == (5.0, 0.0)


def test_targets_are_dense_quality_less_the_stated_tolerance():
    acc, ppl = quality.WORKLOADS["cnn"], quality.WORKLOADS["transformer"]
    assert acc.target(0.9) == pytest.approx(0.89)
    assert ppl.target(20.0) == pytest.approx(20.4)
    assert acc.reached(0.89, 0.89) and not acc.reached(0.88, 0.89)
    assert ppl.reached(20.4, 20.4) and not ppl.reached(20.5, 20.4)
    assert not acc.reached(float("nan"), 0.1) and not acc.reached(None, 0.1)


def _outcome(strategy, seed, ttt):
    return quality.Outcome("cnn", strategy, "bw-20mbit", seed, 0.9, 10.0, ttt,
                           None if ttt is None else 100, 1000, "modeled")


def test_a_strategy_that_misses_the_target_on_any_seed_has_no_speedup():
    results = [_outcome("dense", s, 8.0) for s in range(3)]
    results += [_outcome("fast-but-flaky", 0, 1.0), _outcome("fast-but-flaky", 1, 1.0),
                _outcome("fast-but-flaky", 2, None)]
    results += [_outcome("steady", s, 4.0) for s in range(3)]
    rows = {r["strategy"]: r for r in quality.summarize(results, "cnn", "bw-20mbit")}
    assert rows["fast-but-flaky"]["reached"] == 2 and rows["fast-but-flaky"]["speedup"] is None
    assert rows["steady"]["speedup"] == pytest.approx(2.0)


def test_unknown_names_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown strategy 'nope'; expected one of"):
        quality.run(None, ["cnn"], ["bw-100mbit"], ["nope"], [0], 2, [], "")


def test_the_demo_prints_time_to_dense_quality(tmp_path, monkeypatch, capsys):
    from flexsync.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--workers", "2", "--steps", "8", "--out", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "resnet-hard · bw-20mbit" in out and "ddp-powersgd-r4" in out
    assert (tmp_path / "d" / "quality.md").exists()


def test_an_emulated_only_suite_takes_its_target_from_the_emulated_dense_runs(tmp_path,
                                                                                monkeypatch):
    monkeypatch.chdir(tmp_path)
    cells = quality.plan(["cnn"], ["emulated-20mbit"], ["topk-100x"], [0, 1], 2, TINY)
    for c, acc in zip([c for c in cells if c.strategy == "dense"], (0.90, 0.94), strict=True):
        c.dir.mkdir(parents=True)
        (c.dir / "metrics.jsonl").write_text(
            '{"step": 6, "test_accuracy": 0.5}\n' f'{{"step": 6, "test_accuracy": {acc}}}\n')
    assert quality.dense_targets(cells, "cnn") == pytest.approx({0: 0.89, 1: 0.93})
