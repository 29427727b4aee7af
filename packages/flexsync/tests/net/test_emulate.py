"""Emulated links in network namespaces: real shaping, live estimation, and teardown on
every exit path. Needs root and iproute2 (CI runs as root); skipped otherwise."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from flexsync.net import emulate
from flexsync.net.emulate import EmulatedNetwork, EmulationUnavailable, check_available

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("tc") is None,
    reason="network namespaces need root and iproute2")


def test_without_root_the_message_says_so_and_suggests_the_modeled_network(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(EmulationUnavailable, match="needs root.*network.kind=modeled"):
        check_available()


def _fx_namespaces(tag):
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(tag)]


@needs_root
def test_up_and_down_leave_nothing_behind_and_runs_can_follow_each_other():
    tags = set()
    for _ in range(2):               # back-to-back networks of one process never collide
        net = EmulatedNetwork(3, 12.5e6)
        with net:
            assert len(_fx_namespaces(net.tag + "-")) == 3 and net.exists()
        assert not net.exists()
        tags.add(net.tag)
    assert len(tags) == 2


@needs_root
def test_stale_namespaces_of_a_dead_owner_are_removed():
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = EmulatedNetwork(2, 12.5e6, owner=dead.pid)
    emulate.check_available()
    stale.up_done = False
    # build it by hand as a crashed run would have left it
    stale.up()
    assert stale.exists()
    removed = emulate.cleanup_stale()
    assert f"{stale.tag}-0" in removed and not stale.exists()


@needs_root
def test_emulated_run_estimates_the_configured_bandwidth_and_delay(tmp_path):
    from flexsync import build_config, train
    from flexsync.train.metrics import read_metrics

    cfg = build_config({"workers": 3, "steps": 30, "progress": False,
                        "data": {"train_size": 3000, "test_size": 300},
                        "eval": {"every": 30}, "out": str(tmp_path / "emu"),
                        "network": {"kind": "emulated", "bandwidth": "20mbit",
                                    "delay": "5ms"}})
    train(cfg)
    rows = read_metrics(tmp_path / "emu" / "metrics.jsonl")
    estimate = rows[-1]["bandwidth"] * 8
    assert estimate == pytest.approx(20e6, rel=0.2)
    # α: the 5 ms added per message, plus the loopback stack's own latency (≤ 3 ms here)
    assert 5e-3 <= rows[-1]["alpha"] <= 8e-3
    assert not _fx_namespaces(f"fx{os.getpid()}x")


@needs_root
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_a_run_tears_down_namespaces_and_workers(tmp_path, sig):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({
        "workers": 3, "steps": 2000, "progress": False, "out": str(tmp_path / "run"),
        "data": {"classes": 10, "train_size": 1500, "test_size": 300},
        "network": {"kind": "emulated", "bandwidth": "20mbit"}}))
    proc = subprocess.Popen([sys.executable, "-m", "flexsync", "run", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (metrics.exists() and metrics.stat().st_size):
        time.sleep(0.2)
    assert metrics.exists(), proc.communicate(timeout=30)
    assert _fx_namespaces(f"fx{proc.pid}x")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert not _fx_namespaces(f"fx{proc.pid}x")
    ps = subprocess.run(["pgrep", "-f", f"flexsync-rank|{cfg}"], capture_output=True, text=True)
    assert ps.stdout.strip() == "", ps.stdout
