"""Signals into a live run: whatever arrives, the run ends with its documented exit code and
one line naming the cause, leaves no process, work directory or namespace behind, and never
touches another run's directory.

Exit codes (README "Failures"): 1 a worker failed, 3 a worker stopped responding, 130 SIGINT,
143 SIGTERM.
"""

import os
import shutil
import signal
import time

import pytest

from flexsync.net.emulate import check_available
from tests.faults.harness import (
    ENDLESS,
    alive,
    assert_clean_exit,
    launch,
    namespaces_of,
    snapshot,
    workdirs_of,
    write_config,
)


@pytest.fixture
def earlier(tmp_path):
    """An earlier run's directory beside the one under test: it must stay as it is."""
    d = tmp_path / "earlier"
    (d / "logs").mkdir(parents=True)
    (d / "config.yaml").write_text("# flexsync run earlier\nworkers: 2\n")
    (d / "logs" / "rank0.log").write_text("earlier\n")
    return d, snapshot(d)


def _start(tmp_path, **extra):
    cfg = write_config(tmp_path / "c.yaml", {**ENDLESS, **extra})
    run = launch(["run", str(cfg), "--set", "out=r"], tmp_path, tmp_path / "r")
    run.wait_for_steps()
    return run


@pytest.mark.parametrize("sig", [signal.SIGKILL, pytest.param(signal.SIGSEGV,
                                                              marks=pytest.mark.slow)])
def test_a_killed_worker_ends_the_run_with_exit_1_naming_rank_and_log(tmp_path, earlier, sig):
    run = _start(tmp_path)
    os.kill(run.rank_pid(1), sig)
    run.wait()
    name = signal.Signals(sig).name
    assert_clean_exit(run, 1, rf"worker rank 1 was killed by signal {int(sig)} \({name}\).*"
                      r"log: r/logs/rank1\.log")
    assert snapshot(earlier[0]) == earlier[1]


def test_a_stopped_worker_is_named_within_the_stall_bound_with_exit_3(tmp_path, earlier):
    run = _start(tmp_path, stall_timeout_s=3)
    victim = run.rank_pid(1)
    os.kill(victim, signal.SIGSTOP)
    t0 = time.monotonic()
    run.wait()
    took = time.monotonic() - t0
    assert_clean_exit(run, 3, r"worker rank 1 stopped responding: sent no heartbeat for \d+ s"
                      r".*log: r/logs/rank1\.log")
    assert took < 3 + 10, took          # the bound, plus polling and teardown on a busy host
    assert snapshot(earlier[0]) == earlier[1]


@pytest.mark.slow
def test_a_stopped_worker_is_named_within_30_s_with_default_settings(tmp_path):
    run = _start(tmp_path)
    os.kill(run.rank_pid(0), signal.SIGSTOP)
    t0 = time.monotonic()
    run.wait()
    assert time.monotonic() - t0 < 30
    assert_clean_exit(run, 3, r"worker rank 0 stopped responding")


@pytest.mark.parametrize("sig, code, word", [(signal.SIGTERM, 143, "terminated \\(SIGTERM\\)"),
                                             (signal.SIGINT, 130, "interrupted \\(SIGINT\\)")])
def test_a_signalled_launcher_stops_every_worker_with_its_exit_code(tmp_path, earlier, sig,
                                                                     code, word):
    run = _start(tmp_path)
    workers = run.workers()
    assert len(workers) == 2
    os.kill(run.pid, sig)
    run.wait()
    assert_clean_exit(run, code, word + "; all workers stopped")
    logs = [(run.out / "logs" / f"rank{r}.log").read_text() for r in range(2)]
    assert not any("Traceback" in t or "SystemExit" in t for t in logs), logs
    assert snapshot(earlier[0]) == earlier[1]


def _emulation_ok() -> bool:
    try:
        check_available()
    except Exception:
        return False
    return shutil.which("tc") is not None


@pytest.mark.skipif(not _emulation_ok(), reason="emulated links need root, ip and tc")
def test_a_terminated_launcher_removes_its_namespaces(tmp_path):
    run = _start(tmp_path, network={"kind": "emulated", "bandwidth": "1gbit"})
    assert namespaces_of(run.pid), "the emulated run made no namespaces"
    os.kill(run.pid, signal.SIGTERM)
    run.wait()
    assert_clean_exit(run, 143, "terminated")
    assert namespaces_of(run.pid) == []


def test_a_launcher_killed_while_checkpointing_loses_nothing_complete(tmp_path, earlier):
    """SIGKILL of the launcher (no clean-up at all) while checkpoints are written every step:
    the workers die with it, the next run removes the dead launcher's work directory, and a
    resume continues from the newest complete checkpoint, passing over a half-written one."""
    run = _start(tmp_path, checkpoint={"every": 1, "keep": 3})
    ckpts = run.out / "checkpoints"
    while len(list(ckpts.glob("step-*"))) < 3:
        time.sleep(0.01)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    assert run.rc == -signal.SIGKILL
    time.sleep(1.0)
    assert alive(run.seen) == []                  # PR_SET_PDEATHSIG took the workers
    # its work directory leaked (unless a concurrent launch already removed it): the next
    # run removes it (and tests/test_launch.py checks that removal deterministically)
    newest = sorted(ckpts.glob("step-*"))[-1]
    (newest / "meta.json").unlink(missing_ok=True)  # as if killed before the commit
    last = int(sorted(d for d in ckpts.glob("step-*") if (d / "meta.json").exists())[-1]
               .name.split("-")[1])
    again = launch(["run", "--resume", "r", "--set", f"steps={last + 2}"], tmp_path, run.out)
    again.wait()
    assert again.rc == 0, again.stderr.read_text()
    assert workdirs_of(run.pid) == []
    assert any(f"passing over the incomplete checkpoint r/checkpoints/{newest.name}" in ln
               for ln in again.err_lines()), again.err_lines()
    rows = (run.out / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == last + 2
    assert snapshot(earlier[0]) == earlier[1]
