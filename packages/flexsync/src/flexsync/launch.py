"""Start N worker processes on this machine, or join a ``torchrun`` job.

Local launch forks the current interpreter (torch is already imported, so a worker starts in
well under a second, where ``spawn`` costs 10–40 s on a small machine). Rendezvous goes through a
``FileStore`` in a private temporary directory (``/tmp/flexsync-<launcher pid>-*``): no port
is reserved, so concurrent launches cannot collide; gloo then opens its own ephemeral ports.
Each child runs with one intra-op thread and the default SIGTERM/SIGINT handlers, dies with
its parent (``PR_SET_PDEATHSIG``), and the parent tears every child down on any exit path: a
worker failure, a stalled worker (:mod:`flexsync.train.liveness`), Ctrl-C, or its own
error. A launcher that was SIGKILLed cannot clean up; the next launch removes work
directories whose launcher is gone. With ``log_dir`` each rank's stderr (its tracebacks,
native errors) goes to ``rank<r>.log`` there, and a failure is one line naming the rank,
what happened and that log.
"""

from __future__ import annotations

import ctypes
import datetime
import multiprocessing as mp
import multiprocessing.connection
import os
import pickle
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist


class WorkerFailed(RuntimeError):
    """A worker process exited abnormally; the one-line message names its rank, what
    happened and (``log``) where its traceback is."""

    def __init__(self, rank: int, exitcode: int, detail: str = "", log: str | None = None
                 ) -> None:
        how = (f"was killed by signal {-exitcode} ({signal.Signals(-exitcode).name})"
               if exitcode < 0 else f"exited with code {exitcode}")
        super().__init__(f"worker rank {rank} {how}{detail}" + (f"; log: {log}" if log else ""))
        self.rank = rank
        self.exitcode = exitcode
        self.log = log


class WorkerStalled(WorkerFailed):
    """A worker stopped responding (no heartbeat, or stuck behind its peers) and every
    worker was stopped; the message names the rank."""

    def __init__(self, rank: int, what: str, log: str | None = None) -> None:
        super().__init__(rank, 0, log=log)
        self.args = (f"worker rank {rank} {what}; stopped every worker"
                     + (f"; log: {log}" if log else ""),)


def under_torchrun() -> bool:
    """True when started by torchrun (or any env:// launcher that sets RANK and WORLD_SIZE)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def pick_backend(requested: str = "auto") -> str:
    if requested == "auto":
        return "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    return requested


def init_from_env(backend: str = "auto", timeout_s: float = 300) -> torch.device:
    """Join a torchrun (env://) job; returns this process's device."""
    backend = pick_backend(backend)
    device = torch.device("cpu")
    if backend == "nccl":
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 1)))
    timeout = datetime.timedelta(seconds=timeout_s)
    store = _attempt_store(timeout)
    if store is None:
        dist.init_process_group(backend, init_method="env://", timeout=timeout)
    else:
        dist.init_process_group(backend, store=store, rank=int(os.environ["RANK"]),
                                world_size=int(os.environ["WORLD_SIZE"]), timeout=timeout)
    return device


def _attempt_store(timeout: datetime.timedelta) -> dist.Store | None:
    """A store namespace of its own for this torchrun restart attempt, or None for plain env://.

    torchrun's agent hosts one TCPStore for the whole job and hands the same address to the
    workers of every restart; the process group writes fixed key names into it (gloo's peer
    addresses, NCCL's unique id, the init barrier). A restarted worker can then read a dead
    peer's address and fail with "Connection refused", or wait forever inside gloo's connect.
    Prefixing the keys with the restart count gives each attempt a clean namespace. On one node
    every worker has the same count; across nodes the agents count restarts separately, so there
    we leave env:// alone and point at torch's own switch for a fresh store per round.
    """
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    if int(os.environ.get("GROUP_WORLD_SIZE", "1")) > 1:
        if (int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0")) > 0
                and os.environ.get("RANK") == "0"):
            warnings.warn("torchrun restarts across several nodes reuse the agent's store and "
                          "can hang the restarted process group; export "
                          "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 on every node before torchrun "
                          "to give each restart a fresh store", stacklevel=3)
        return None
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                          int(os.environ["WORLD_SIZE"]), is_master=False, timeout=timeout)
    attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    return dist.PrefixStore(f"flexsync/attempt{attempt}", store)


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)          # PR_SET_PDEATHSIG
    except OSError:                            # not Linux: rely on the parent's teardown
        pass


def _log_to(path: str | None, rank: int, world: int, header: str) -> None:
    """Send this worker's stderr (and a non-zero rank's stdout) to its log file, which starts
    with ``header`` (the run id); rank 0 keeps the terminal for its progress lines through
    ``sys.stderr``."""
    if path is None:
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    os.write(fd, f"{header}rank {rank} of {world}, pid {os.getpid()}, {stamp} UTC\n".encode())
    if rank == 0:
        sys.stderr = os.fdopen(os.dup(2), "w", buffering=1)
    else:
        os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _beat(workdir: str, rank: int, stall_s: float | None) -> None:
    if stall_s:
        from flexsync.train.liveness import Beater, interval_for, store_publisher

        store = dist.FileStore(os.path.join(workdir, "heartbeat"), -1)
        Beater(store_publisher(store, rank), interval_for(stall_s)).start()


def _child(rank: int, world: int, workdir: str, backend: str, timeout_s: float,
           fn: Callable[..., Any], args: tuple, emulation: Any, log: str | None = None,
           stall_s: float | None = None, log_header: str = "") -> None:
    _die_with_parent()
    for sig in (signal.SIGTERM, signal.SIGINT):      # not the launcher's handlers
        signal.signal(sig, signal.SIG_DFL)
    _log_to(log, rank, world, log_header)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    code = 0
    try:
        _beat(workdir, rank, stall_s)
        if emulation is not None:
            emulation.enter(rank)
        elif backend == "gloo":    # local workers talk over loopback only, unless told otherwise
            os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
        device = torch.device("cpu")
        if backend == "nccl":
            torch.cuda.set_device(rank % torch.cuda.device_count())
            device = torch.device("cuda", rank % torch.cuda.device_count())
        store = dist.FileStore(os.path.join(workdir, "store"), world)
        dist.init_process_group(backend, store=store, rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=timeout_s))
        result = fn(*args, device=device) if _accepts_device(fn) else fn(*args)
        dist.barrier()         # leave together: a rank tearing down early can abort its peers
        with open(os.path.join(workdir, f"result-{rank}.pkl"), "wb") as f:
            pickle.dump(result, f)
    except BaseException as e:
        # Record when and why first: the parent names the earliest failure as the cause,
        # since peers fail moments later on broken connections.
        with open(os.path.join(workdir, f"error-{rank}"), "w") as f:
            f.write(f"{time.time()!r}\n{type(e).__name__}: {e}"[:2000])
        text = f"[rank {rank}] " + traceback.format_exc()
        if log is None:
            sys.stderr.write(text)
        else:
            with open(log, "a") as f:
                f.write(text)
        code = 1
    finally:
        try:
            if dist.is_initialized():
                dist.destroy_process_group()
        except Exception as e:  # report, but the exit code already says what matters
            sys.stderr.write(f"[rank {rank}] while closing the process group: {e!r}\n")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)       # skip the parent's inherited atexit handlers


def _accepts_device(fn: Callable[..., Any]) -> bool:
    import inspect

    try:
        return "device" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _stop(procs: list[mp.Process], grace_s: float = 3.0) -> None:
    for p in procs:
        if p.is_alive():
            p.terminate()
            try:
                os.kill(p.pid, signal.SIGCONT)     # a stopped worker must run to see SIGTERM
            except (ProcessLookupError, TypeError):
                pass
    deadline = grace_s
    for p in procs:
        p.join(timeout=max(0.1, deadline))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join(timeout=5)


WORKDIR_PREFIX = "flexsync-"


def cleanup_stale_workdirs(root: str | None = None) -> list[str]:
    """Remove ``flexsync-<pid>-*`` work directories whose launcher process is gone (a
    launcher killed by SIGKILL cannot remove its own), as namespaces are
    (:func:`flexsync.net.emulate.cleanup_stale`)."""
    import re

    root = root or tempfile.gettempdir()
    removed = []
    for name in os.listdir(root):
        m = re.fullmatch(re.escape(WORKDIR_PREFIX) + r"(\d+)-\w+", name)
        if m and not worker_pids_alive([int(m.group(1))]):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            removed.append(name)
    return removed


def run_local(fn: Callable[..., Any], world_size: int, args: tuple = (),
              backend: str = "gloo", timeout_s: float = 300,
              deadline_s: float | None = None, emulation: Any = None,
              log_dir: str | os.PathLike | None = None, stall_s: float | None = None,
              log_header: str = "") -> list[Any]:
    """Run ``fn(*args)`` in ``world_size`` forked workers joined in one process group.

    Returns each rank's return value. If any worker fails, the others are stopped at once and
    :class:`WorkerFailed` names the first rank that failed. ``deadline_s`` bounds the whole
    run (tests use it so a hang becomes a failure). ``emulation`` (an
    :class:`~flexsync.net.emulate.EmulatedNetwork` that is up) puts each rank in its own
    network namespace behind a shaped link. ``log_dir``: each rank's stderr goes to
    ``rank<r>.log`` there (after a first line: ``log_header`` and the rank). ``stall_s``: a
    rank whose heartbeat stops, or that is stuck behind its peers, for that long is named
    (:class:`WorkerStalled`) and every worker stopped.
    """
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    backend = pick_backend(backend)
    if backend == "nccl" and torch.cuda.device_count() < 1:
        raise RuntimeError("backend 'nccl' needs a CUDA device; use 'gloo' on CPU")
    ctx = mp.get_context("fork")
    cleanup_stale_workdirs()
    workdir = tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-")
    logs = [None] * world_size
    if log_dir is not None:
        os.makedirs(log_dir, exist_ok=True)
        logs = [os.path.join(log_dir, f"rank{r}.log") for r in range(world_size)]
    procs = [ctx.Process(target=_child, name=f"flexsync-rank{r}",
                         args=(r, world_size, workdir, backend, timeout_s, fn, args,
                               emulation, logs[r], stall_s, log_header))
             for r in range(world_size)]
    try:
        torch.set_num_threads(1)    # no OpenMP pool may be running when we fork
        for p in procs:
            p.start()
        _wait_all(procs, workdir, deadline_s, stall_s, logs)
        results = []
        for r in range(world_size):
            with open(os.path.join(workdir, f"result-{r}.pkl"), "rb") as f:
                results.append(pickle.load(f))
        return results
    finally:
        _stop(procs)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_all(procs: list[mp.Process], workdir: str, deadline_s: float | None,
              stall_s: float | None, logs: list[str | None]) -> None:
    """Return when every worker exited 0; raise the first failure, a stall, or the deadline."""
    from flexsync.train.liveness import Monitor, read_store

    monitor = store = None
    if stall_s:
        monitor = Monitor(len(procs), stall_s)
        store = dist.FileStore(os.path.join(workdir, "heartbeat"), -1)
    pending = {p.sentinel: r for r, p in enumerate(procs)}
    wait_until = None if deadline_s is None else _now() + deadline_s
    while pending:
        left = None if wait_until is None else max(0.0, wait_until - _now())
        if monitor is not None:
            left = min(left, 0.5) if left is not None else 0.5
        ready = mp.connection.wait(list(pending), timeout=left)
        if wait_until is not None and not ready and _now() >= wait_until:
            raise TimeoutError(
                f"workers {sorted(pending.values())} still running after {deadline_s} s")
        for s in ready:
            r = pending.pop(s)
            procs[r].join()
            if procs[r].exitcode != 0:
                raise _root_cause(procs, workdir, logs=logs)
        if monitor is not None and pending:
            monitor.observe(read_store(store, len(procs)))
            found = monitor.verdict()
            if found is not None:
                raise WorkerStalled(found[0], found[1], logs[found[0]])


def _error_text(workdir: str, rank: int) -> str:
    try:
        with open(os.path.join(workdir, f"error-{rank}")) as f:
            return f.read()
    except OSError:
        return ""


def _now() -> float:
    return time.monotonic()


def _root_cause(procs: list[mp.Process], workdir: str, settle_s: float = 2.0,
                logs: list[str | None] | None = None) -> WorkerFailed:
    """After a first failure, let the peers' follow-on failures land, then name the cause:
    a worker killed by a signal, else the one whose exception came first."""
    logs = logs or [None] * len(procs)
    end = _now() + settle_s
    for p in procs:
        p.join(timeout=max(0.0, end - _now()))
    failed = [r for r, p in enumerate(procs) if p.exitcode not in (None, 0)]
    killed = [r for r in failed if procs[r].exitcode < 0]
    if killed:
        return WorkerFailed(killed[0], procs[killed[0]].exitcode, "; stopped the other workers",
                            logs[killed[0]])
    alive = [r for r, p in enumerate(procs) if p.exitcode is None]
    if alive and all("timeout" in _error_text(workdir, r).lower()
                     or "timed out" in _error_text(workdir, r).lower() for r in failed):
        return WorkerStalled(alive[0], f"stopped responding: ranks {failed} timed out "
                             "waiting for it in a collective", logs[alive[0]])
    errors = {}
    for r in failed:
        try:
            with open(os.path.join(workdir, f"error-{r}")) as f:
                stamp, _, why = f.read().partition("\n")
            errors[r] = (float(stamp), why)
        except (OSError, ValueError):
            errors[r] = (float("inf"), "")
    first = min(failed, key=lambda r: (errors[r][0], r))
    why = errors[first][1].strip().split("\n", 1)[0][:300]
    return WorkerFailed(first, procs[first].exitcode,
                        (f" ({why})" if why else "") + "; stopped the other workers",
                        logs[first])


def worker_pids_alive(pids: list[int]) -> list[int]:
    """The subset of ``pids`` that still exist (for tests of teardown)."""
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
            alive.append(pid)
        except ProcessLookupError:
            pass
    return alive

