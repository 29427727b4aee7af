"""End-to-end runs through the real launcher: outputs, world sizes, learning, torchrun."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch.nn as nn

from flexsync import WorkerFailed, build_config, train
from flexsync.cli import main
from flexsync.train.metrics import read_metrics

SUMMARY_KEYS = {
    "final_accuracy", "final_loss", "steps", "wall_time_s", "modeled_time_s", "bytes_sent",
    "time_to_target_modeled_s", "time_to_target_wall_s", "world_size", "strategy",
}
SMALL = {"data": {"classes": 10, "train_size": 1600, "test_size": 400}, "steps": 20,
         "eval": {"every": 10}, "progress": False, "target": {"accuracy": 0.05}}


@pytest.mark.parametrize("world", [1, 3, 8])
def test_world_sizes_run_and_write_a_complete_run_directory(world, tmp_path):
    cfg = build_config({**SMALL, "workers": world, "out": str(tmp_path / "run")})
    s = train(cfg)
    assert SUMMARY_KEYS <= s.keys() and s["world_size"] == world and s["steps"] == 20
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(s))
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 21))
    assert all({"loss", "wall_time", "modeled_time", "bytes_sent", "epoch"} <= r.keys()
               for r in rows)
    assert sum(1 for r in rows if "test_accuracy" in r) == 2
    expected_per_step = 0 if world == 1 else 4 * s["params"]
    assert s["bytes_sent"] == 20 * expected_per_step
    assert (tmp_path / "run" / "curves.png").stat().st_size > 0
    assert (tmp_path / "run" / "config.yaml").exists()


def test_dense_four_workers_learns_the_synthetic_task(tmp_path):
    cfg = build_config({"workers": 4, "steps": 300, "eval": {"every": 100}, "progress": False,
                        "target": {"accuracy": 0.3}, "out": str(tmp_path / "dense")})
    s = train(cfg)
    accs = [r["test_accuracy"] for r in read_metrics(tmp_path / "dense" / "metrics.jsonl")
            if "test_accuracy" in r]
    assert accs[-1] > 0.3 > 10 * 0.01          # 100 classes: chance is 1 %
    assert accs[-1] > accs[0]
    assert s["time_to_target_modeled_s"] is not None
    assert s["modeled_time_s"] > s["time_to_target_modeled_s"] > 0


def test_language_model_perplexity_falls(tmp_path):
    cfg = build_config({"dataset": "synthetic-text", "model": "lstm", "workers": 2, "steps": 40,
                        "batch_size": 10, "optimizer": {"name": "adam", "lr": 0.01},
                        "data": {"vocab": 100, "train_tokens": 20000, "test_tokens": 2000},
                        "eval": {"every": 20}, "progress": False, "out": str(tmp_path / "lm")})
    s = train(cfg)
    rows = [r for r in read_metrics(tmp_path / "lm" / "metrics.jsonl") if "test_perplexity" in r]
    assert rows[-1]["test_perplexity"] < rows[0]["test_perplexity"] < 100 * 1.2
    assert s["final_perplexity"] > s["optimal_perplexity"] > 1


def test_user_dataset_and_model_through_the_python_api(tmp_path):
    from flexsync.data.synthetic import synthetic_images

    data = synthetic_images(seed=1, classes=5, train_size=400, test_size=100, image_size=8)

    def model_fn(d):
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, d.num_classes))

    cfg = build_config({"workers": 2, "steps": 10, "eval": {"every": 5}, "progress": False})
    s = train(cfg, dataset=data, model_fn=model_fn, out=tmp_path / "user")
    assert s["model"] == "user" and s["params"] == 3 * 64 * 5 + 5


def test_a_failing_worker_fails_train_naming_the_rank(tmp_path):
    def model_fn(d):
        import torch.distributed as dist
        if dist.get_rank() == 2:
            raise RuntimeError("cannot build model on this worker")
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, d.num_classes))

    cfg = build_config({**SMALL, "workers": 3, "timeout_s": 20})
    with pytest.raises(WorkerFailed, match="rank 2"):
        train(cfg, model_fn=model_fn, out=tmp_path / "x")


def test_cli_run_plan_and_bad_config(tmp_path, capsys):
    cfgfile = tmp_path / "tiny.yaml"
    cfgfile.write_text(json.dumps({**SMALL, "workers": 2, "out": str(tmp_path / "cli")}))
    assert main(["run", str(cfgfile), "--set", "steps=10"]) == 0
    out = capsys.readouterr().out
    assert "dense" in out and "run directory" in out
    assert main(["table", str(tmp_path / "cli")]) == 0

    assert main(["plan", "--params", "25e6", "--workers", "64", "--alpha", "1ms",
                 "--bandwidth", "10Gbit", "--ratio", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "<- best" in out and "ring allreduce" in out and "art_ring" in out

    assert main(["run", str(cfgfile), "--set", "strategy.name=nope"]) == 2
    assert "strategy.name: unknown value 'nope'" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("torchrun") is None and not os.path.exists(
    os.path.join(os.path.dirname(sys.executable), "torchrun")), reason="torchrun not installed")
def test_same_entry_point_runs_under_torchrun(tmp_path):
    cfgfile = tmp_path / "tr.yaml"
    cfgfile.write_text(json.dumps({**SMALL, "steps": 10, "out": str(tmp_path / "tr")}))
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", "-m", "flexsync", "run", str(cfgfile)],
        capture_output=True, text=True, timeout=200, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = json.loads((tmp_path / "tr" / "summary.json").read_text())
    assert s["world_size"] == 2 and s["steps"] == 10


@pytest.mark.parametrize("strategy", [
    {"name": "topk", "ratio": 0.05, "selector": "threshold"},
    {"name": "artopk", "ratio": 0.05, "index": "var", "algo": "tree"},
])
def test_sparse_strategies_run_end_to_end_and_log_their_signals(strategy, tmp_path):
    cfg = build_config({**SMALL, "workers": 2, "strategy": strategy, "out": str(tmp_path / "s")})
    s = train(cfg)
    rows = read_metrics(tmp_path / "s" / "metrics.jsonl")
    assert all({"ratio", "collective", "gain", "k"} <= r.keys() for r in rows)
    assert all(0 < r["gain"] <= 1 for r in rows)
    assert s["bytes_sent"] < 0.2 * 20 * 4 * s["params"]


def test_flexible_with_moo_switches_collective_when_the_network_changes(tmp_path):
    phases = [{"start": 0, "alpha": "50ms", "bandwidth": "10Gbit"},
              {"start": 15, "alpha": "10us", "bandwidth": "1mbit"}]
    cfg = build_config({
        **SMALL, "workers": 3, "steps": 30, "out": str(tmp_path / "f"),
        "network": {"kind": "schedule", "unit": "step", "phases": phases,
                    "model_params": 5e6},
        "strategy": {"name": "flexible", "ratio": "moo",
                     "moo": {"warmup_steps": 5, "cooldown": 1000}}})
    train(cfg)
    rows = read_metrics(tmp_path / "f" / "metrics.jsonl")
    assert rows[0]["collective"] == "dense" and rows[0]["ratio"] == 1.0     # warm-up
    late = [r["collective"] for r in rows[5:15]]
    assert set(late) == {"allgather"}                   # latency-bound: allgather
    assert set(r["collective"] for r in rows[16:]) == {"art_ring"}   # bandwidth-bound
    assert {r["moo_phase"] for r in rows} == {"warmup", "run"}
    assert all(0.001 <= r["ratio"] <= 0.1 for r in rows[5:])
