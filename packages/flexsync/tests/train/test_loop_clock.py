"""The run's modeled clock charges everything the training loop sends: the strategy's
collectives and the loop's own two per step (the non-finite flag and the agreed step
statistics). Unpriced, the clock ran 30-50 % fast against wall time on an emulated link for
the strategies that send little (issue 23)."""

import pytest

from flexsync import build_config, train
from flexsync.net import cost_model as cm
from flexsync.train.metrics import read_metrics

ALPHA, BW = 0.01, 1.25e9          # latency-bound: 10 ms, 10 Gbit/s


def test_a_step_without_strategy_traffic_still_pays_the_loops_bookkeeping(tmp_path):
    cfg = build_config({
        "workers": 2, "steps": 6, "progress": False, "eval": {"every": 6}, "batch_size": 8,
        "data": {"classes": 4, "train_size": 200, "test_size": 40, "image_size": 8},
        "strategy": {"name": "localsgd", "average_every": 100},
        "network": {"kind": "modeled", "alpha": "10ms", "bandwidth": "10gbit"},
        "out": str(tmp_path / "run")})
    train(cfg)
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    steps = [r for r in rows if "step_compute_s" in r]
    quiet = [r for r in steps if not r["comm"]]
    assert quiet, "local SGD with a long period sends nothing on most steps"
    flag = cm.ring_allreduce(8, 2, ALPHA, 1 / BW)
    stats = cm.allgather(40, 2, ALPHA, 1 / BW)
    for r in quiet:
        assert r["step_comm_s"] == pytest.approx(flag + stats, rel=1e-9)
        assert r["step_bytes"] == 0                      # priced, not counted as sent
