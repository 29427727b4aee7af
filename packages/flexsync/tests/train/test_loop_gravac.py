"""GraVAC and Accordion through the real loop and config: YAML options reach the strategy,
the per-step signals and the throughput table are written, and the factor is plotted."""

import pytest

from flexsync import build_config, train
from flexsync.config import ConfigError
from flexsync.train.metrics import read_metrics

SMALL = {"workers": 2, "steps": 12, "progress": False, "eval": {"every": 12},
         "data": {"classes": 6, "train_size": 600, "test_size": 120, "image_size": 8},
         "batch_size": 12}


def test_gravac_and_accordion_configs_defaults_and_rejections():
    g = build_config({"strategy": "gravac"}).strategy
    assert (g.theta_min, g.theta_max, g.policy, g.epsilon, g.omega, g.window, g.smoothing,
            g.gain_smoothing, g.gain_norm) == (10, 1000, "exponential", 0.7, 0.01, 500, None,
                                               "ratio_of_ewma", "sq")
    a = build_config({"strategy": "accordion"}).strategy
    assert (a.low_cf, a.high_cf, a.eta, a.window, a.smoothing, a.interval) == \
        (10, 1000, 0.2, 100, 0.02, 100)
    for tree, key in [({"strategy": {"name": "gravac", "theta_min": 100, "theta_max": 50}},
                       "strategy"),
                      ({"strategy": {"name": "gravac", "policy": "linear"}}, "strategy.policy"),
                      ({"strategy": {"name": "accordion", "low_cf": 100, "high_cf": 10}},
                       "strategy")]:
        with pytest.raises(ConfigError, match=key):
            build_config(tree)


def test_gravac_run_logs_factor_gains_decision_and_throughput_table(tmp_path):
    cfg = build_config({**SMALL, "out": str(tmp_path / "g"), "strategy": {
        "name": "gravac", "window": 4, "epsilon": 0.3, "gain_norm": "l2"}})
    s = train(cfg)
    rows = read_metrics(tmp_path / "g" / "metrics.jsonl")
    assert all({"cf", "delta_min", "delta_c", "decision"} <= r.keys() for r in rows)
    assert {r["decision"] for r in rows} <= {"dense", "min", "candidate"}
    assert [r["theta_c"] for r in rows][::4] == [20, 40, 160]          # window 4
    table = s["gravac"]["throughput_table"]
    assert sum(v["steps"] for v in table.values()) == 11               # the last is unpriced
    assert all(v["throughput"] > 0 for v in table.values())
    assert (tmp_path / "g" / "factor.png").stat().st_size > 0
