"""Under ``torchrun --max-restarts``, a worker killed mid-run makes torchrun restart the
group, which resumes from the run's latest checkpoint and finishes the run. (Restarts are
allowed more than once: on rare occasions a rank aborts in torch's teardown after the run is
complete, and the property under test is that every restart resumes.)"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from flexsync.train.metrics import read_metrics
from tests.procs import children_of

TORCHRUN = os.path.join(os.path.dirname(sys.executable), "torchrun")


@pytest.mark.skipif(not os.path.exists(TORCHRUN), reason="torchrun not installed")
def test_killed_worker_is_restarted_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({
        "workers": 2, "steps": 400, "progress": False, "out": str(out), "batch_size": 16,
        "clock": {"compute": "model"}, "eval": {"every": 100},
        "data": {"classes": 10, "train_size": 1200, "test_size": 200},
        "checkpoint": {"every": 20}, "timeout_s": 30}))
    proc = subprocess.Popen(
        [TORCHRUN, "--standalone", "--nproc_per_node=2", "--max-restarts=3",
         "-m", "flexsync", "run", str(cfg)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        ckpts = out / "checkpoints"
        while time.monotonic() < deadline and not list(ckpts.glob("step-*/meta.json")):
            time.sleep(0.5)
        workers = children_of(proc.pid)   # torchrun's workers
        assert workers, "torchrun started no workers"
        os.kill(workers[-1], signal.SIGKILL)
        _, err = proc.communicate(timeout=400)
    finally:                      # torchrun's workers too: never leave orphans behind
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert proc.returncode == 0, err[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 400
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == list(range(1, 401))
