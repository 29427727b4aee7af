"""The configuration contract: visible defaults, overrides, and clear rejections."""

import pytest

from flexsync.config import ConfigError, build_config, dump_config, load_config


def test_defaults_follow_the_contract():
    cfg = build_config()
    assert cfg.workers == 4 and cfg.steps == 300 and cfg.seed == 0
    assert cfg.dataset == "synthetic-images" and cfg.model == "cnn"
    assert cfg.strategy.name == "dense" and cfg.network.kind == "modeled"
    # validated into SI numbers: seconds and bytes per second
    assert "alpha: 0.001" in dump_config(cfg) and "bandwidth: 12500000.0" in dump_config(cfg)


def test_yaml_file_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("workers: 2\nepochs: 1.5\nnetwork: {kind: modeled, alpha: 5ms}\n"
                 "target: {accuracy: 0.8}\n")
    cfg = load_config(p, ["workers=3", "network.bandwidth=1Gbit", "optimizer.lr=0.05"])
    assert cfg.workers == 3 and cfg.epochs == 1.5 and cfg.steps is None
    assert cfg.network.alpha == 0.005 and cfg.network.bandwidth == 1.25e8
    assert cfg.optimizer.lr == 0.05 and cfg.target.accuracy == 0.8


def test_changing_network_kind_replaces_the_section():
    cfg = build_config({}, ["network.kind=schedule", "network.preset=C1",
                            "network.stretch=0.25"])
    assert cfg.network.kind == "schedule" and cfg.network.preset == "C1"
    assert build_config({"network": "loopback"}).network.kind == "loopback"


@pytest.mark.parametrize("tree, overrides, message", [
    ({"wokers": 4}, [], "wokers: unknown key"),
    ({}, ["workers=0"], "workers: Input should be greater than or equal to 1"),
    ({}, ["strategy.name=nope"], "strategy.name: unknown value 'nope'"),
    ({}, ["strategy.algo=butterfly"], "strategy.algo"),
    ({}, ["network.alpha=fast"], "network.alpha: expected a duration"),
    ({}, ["network.bandwidth=lots"], "network.bandwidth: expected a bandwidth"),
    ({}, ["network.kind=schedule"], "exactly one of 'preset'"),
    ({}, ["dataset=imagenet"], "dataset: Input should be"),
    ({}, ["model=lstm"], "does not fit dataset"),
    ({"steps": 10, "epochs": 1}, [], "either 'steps' or 'epochs'"),
    ({}, ["optimizer.momentum=1.5"], "optimizer.momentum"),
    ({}, ["target.accuracy=2"], "target.accuracy"),
    ({}, ["eval.every=0"], "eval.every"),
    ({"network": {"kind": "modeled", "latency": "1ms"}}, [], "network.latency: unknown key"),
])
def test_bad_configs_are_rejected_naming_the_key(tree, overrides, message):
    with pytest.raises(ConfigError, match="invalid configuration") as e:
        build_config(tree, overrides)
    assert message in str(e.value)


def test_malformed_set_and_files(tmp_path):
    with pytest.raises(ConfigError, match="key=value"):
        build_config({}, ["workers"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(bad)
