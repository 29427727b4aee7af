"""SelSync, FedAvg and the data pipeline through the real loop and config: partition and
injection chosen from YAML, LSSR in summary.json, and every byte accounted."""

import pytest
import yaml

from flexsync import build_config, train
from flexsync.config import ConfigError, dump_config
from flexsync.train.metrics import read_metrics

SMALL = {"workers": 3, "steps": 16, "progress": False, "eval": {"every": 8},
         "data": {"classes": 6, "train_size": 900, "test_size": 120, "image_size": 8},
         "batch_size": 12}


def test_selsync_config_defaults_and_rejections():
    cfg = build_config({"strategy": "selsync", "data": {"partition": "seldp"}})
    s = cfg.strategy
    assert (s.delta, s.delta_mode, s.window, s.signal, s.aggregation, s.average_buffers) == \
        (0.3, "absolute", 25, "paper_sq_global", "parameter", True)
    never = build_config({"strategy": "selsync"}, ["strategy.delta=.inf"])
    assert never.strategy.delta == float("inf")
    again = build_config(yaml.safe_load(dump_config(never)))     # written as null = never
    assert again.strategy.delta in (None, float("inf"))
    assert build_config({"strategy": "fedavg"}).strategy.period_epochs == 0.25
    inj = build_config({"data": {"injection": {}}}).data.injection
    assert (inj.alpha, inj.beta, inj.mode) == (0.5, 0.5, "sender_selection")
    for tree, msg in [({"strategy": {"name": "selsync", "aggregation": "model"}},
                       "strategy.aggregation"),
                      ({"strategy": {"name": "fedavg", "period_epochs": 1, "period_steps": 5}},
                       "not both"),
                      ({"data": {"partition": "iid"}}, "data.partition"),
                      ({"data": {"injection": {"alpha": 2}}}, "data.injection.alpha")]:
        with pytest.raises(ConfigError, match=msg):
            build_config(tree)


def test_selsync_with_noniid_injection_runs_and_accounts_every_byte(tmp_path):
    cfg = build_config({**SMALL, "out": str(tmp_path / "sel"),
                        "data": {**SMALL["data"], "partition": "noniid",
                                 "injection": {"alpha": 0.5, "beta": 0.5}},
                        "strategy": {"name": "selsync", "delta": 0.05, "window": 3}})
    s = train(cfg)
    rows = read_metrics(tmp_path / "sel" / "metrics.jsonl")
    syncs = sum(r["sync"] for r in rows)
    assert s["sync_steps"] == syncs >= 3 and s["local_steps"] == 16 - syncs
    assert s["lssr"] == pytest.approx((16 - syncs) / 16)
    # b' = round(12 / (1 + 0.25·3)) = 7, share ⌊3.5⌋ = 3 samples of 8·8·3 fp32 + int64 label
    sample = 3 * 8 * 8 * 4 + 8
    assert all(r["injected_bytes"] == 2 * 3 * sample for r in rows)   # ⌈0.5·3⌉ = 2 senders
    assert s["injected_bytes"] == 16 * 2 * 3 * sample
    model = 4 * s["params"]
    assert s["bytes_sent"] == syncs * model + 16 * 8 + s["injected_bytes"]  # PA + flags + data


def test_fedavg_on_seldp_syncs_every_quarter_epoch(tmp_path):
    cfg = build_config({**SMALL, "out": str(tmp_path / "fa"), "steps": 20,
                        "data": {**SMALL["data"], "partition": "seldp"},
                        "strategy": {"name": "fedavg", "period_steps": 5}})
    s = train(cfg)
    rows = read_metrics(tmp_path / "fa" / "metrics.jsonl")
    assert [r["step"] for r in rows if r["sync"]] == [5, 10, 15, 20]
    assert s["lssr"] == 0.8 and s["bytes_sent"] == 4 * 4 * s["params"]
