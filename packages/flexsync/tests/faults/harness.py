"""A launcher under test: ``flexsync run`` in a forked process (torch is already imported,
so it starts in a fraction of a second), its stdout and stderr in files, and what it leaves
behind: processes, work directories, network namespaces."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.procs import children_of

#: A small run that trains until stopped (faults arrive while it runs).
ENDLESS = {"workers": 2, "steps": 100000, "progress": False, "batch_size": 16,
           "eval": {"every": 100000}, "clock": {"compute": "model"},
           "data": {"classes": 10, "train_size": 600, "test_size": 100}}


@dataclass
class Launched:
    pid: int
    out: Path              # the run directory
    stdout: Path
    stderr: Path
    seen: set[int]         # every worker pid observed while it ran
    rc: int | None = None

    def workers(self) -> list[int]:
        kids = children_of(self.pid)
        self.seen.update(kids)
        return kids

    def wait(self, timeout: float = 120) -> int:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.workers()
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.rc = os.waitstatus_to_exitcode(status)
                return self.rc
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise AssertionError(f"the launcher did not exit within {timeout} s")

    def err_lines(self) -> list[str]:
        return [ln for ln in self.stderr.read_text().splitlines() if ln.strip()]

    def rank_pid(self, rank: int, timeout: float = 60) -> int:
        """The pid of worker ``rank``, from the first line of its log."""
        log = self.out / "logs" / f"rank{rank}.log"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if log.is_file():
                m = re.search(r"pid (\d+)", log.read_text())
                if m:
                    return int(m.group(1))
            time.sleep(0.05)
        raise AssertionError(f"no {log} after {timeout} s")

    def wait_for_steps(self, n: int = 2, timeout: float = 90) -> None:
        metrics = self.out / "metrics.jsonl"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if metrics.is_file() and len(metrics.read_text().splitlines()) >= n:
                return
            if os.waitpid(self.pid, os.WNOHANG)[0]:
                raise AssertionError(f"the launcher exited early: {self.stderr.read_text()}")
            time.sleep(0.05)
        raise AssertionError(f"no {n} metrics rows after {timeout} s")


def write_config(path: Path, tree: dict) -> Path:
    path.write_text(yaml.safe_dump(tree))
    return path


def launch(argv: list[str], cwd: Path, out: Path) -> Launched:
    """Fork a process that runs ``flexsync <argv>`` in ``cwd`` and exits with its code."""
    cwd.mkdir(parents=True, exist_ok=True)
    so, se = cwd / f"stdout-{time.monotonic_ns()}", cwd / f"stderr-{time.monotonic_ns()}"
    pid = os.fork()
    if pid == 0:                                       # the launcher
        code = 99
        try:
            import faulthandler

            faulthandler.disable()          # pytest's: a crashing worker would write to it
            os.chdir(cwd)
            for fd, path in ((1, so), (2, se)):
                f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(f, fd)
                os.close(f)
            # pytest's capture replaced sys.stdout/stderr: write to the real descriptors
            sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
            sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
            for sig in (signal.SIGTERM, signal.SIGINT):   # as a fresh interpreter has them
                signal.signal(sig, signal.SIG_DFL if sig == signal.SIGTERM
                              else signal.default_int_handler)
            from flexsync.cli import main

            code = main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    return Launched(pid, out, so, se, set())


def workdirs_of(pid: int) -> list[str]:
    return [n for n in os.listdir(tempfile.gettempdir()) if n.startswith(f"flexsync-{pid}-")]


def alive(pids: set[int]) -> list[int]:
    """Those of ``pids`` that still exist and are not zombies."""
    out = []
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    out.append(p)
        except OSError:
            pass
    return out


def namespaces_of(pid: int) -> list[str]:
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [ln.split()[0] for ln in names.splitlines() if ln.startswith(f"fx{pid}x")]


def snapshot(d: Path) -> dict[str, str]:
    """Every file under ``d`` with its SHA-256 (the run directory as it stands)."""
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}


def assert_clean_exit(run: Launched, code: int, pattern: str) -> None:
    """The documented exit code, one ``flexsync:`` line matching ``pattern`` and no
    traceback on stderr, no worker left, no work directory left."""
    assert run.rc == code, (run.rc, run.stderr.read_text())
    text = run.stderr.read_text()
    mine = [ln for ln in run.err_lines() if ln.startswith("flexsync:")]
    assert len(mine) == 1 and re.search(pattern, mine[0]), text
    assert "Traceback" not in text, text
    time.sleep(0.2)
    assert alive(run.seen) == [], f"orphans {alive(run.seen)}"
    assert workdirs_of(run.pid) == []
