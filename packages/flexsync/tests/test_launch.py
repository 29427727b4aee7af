"""The launcher tears everything down: a dead worker fails the run, naming its rank, quickly,
and leaves no process behind."""

import datetime
import multiprocessing as mp
import os
import shutil
import signal
import time

import pytest
import torch
import torch.distributed as dist

from flexsync.launch import WorkerFailed, WorkerStalled, init_from_env, run_local
from tests.procs import children_of


def _one_rank_dies(victim):
    t = torch.ones(10)
    dist.all_reduce(t)                       # everyone is connected
    if dist.get_rank() == victim:
        os.kill(os.getpid(), signal.SIGKILL)
    for _ in range(100):                     # the survivors block in collectives
        dist.all_reduce(t)
        time.sleep(0.01)
    return "finished"


@pytest.mark.parametrize("world, victim", [(3, 2), (4, 1)])
def test_dead_worker_fails_the_run_naming_its_rank(world, victim):
    start = time.monotonic()
    with pytest.raises(WorkerFailed, match=f"rank {victim} was killed by signal 9") as err:
        run_local(_one_rank_dies, world, (victim,), timeout_s=30, deadline_s=60)
    assert err.value.rank == victim
    assert time.monotonic() - start < 30
    assert children_of(os.getpid()) == []


def _raises_on_rank_one():
    if dist.get_rank() == 1:
        raise ValueError("bad shard")
    dist.barrier()


def test_exception_in_a_worker_is_reported_with_its_rank(capfd):
    with pytest.raises(WorkerFailed, match="rank 1 exited with code 1"):
        run_local(_raises_on_rank_one, 2, timeout_s=20, deadline_s=60)
    err = capfd.readouterr().err
    assert "[rank 1] Traceback" in err and "ValueError: bad shard" in err
    assert children_of(os.getpid()) == []


def _hangs():
    time.sleep(600)


def test_deadline_turns_a_hang_into_an_error_and_kills_workers():
    with pytest.raises(TimeoutError, match="still running"):
        run_local(_hangs, 2, deadline_s=2)
    assert children_of(os.getpid()) == []


def _rank_and_size():
    return dist.get_rank(), dist.get_world_size(), torch.get_num_threads()


def test_results_come_back_in_rank_order():
    assert run_local(_rank_and_size, 3, deadline_s=60) == [(0, 3, 1), (1, 3, 1), (2, 3, 1)]


def _rank_two_stalls():
    t = torch.ones(4)
    dist.all_reduce(t)
    if dist.get_rank() == 2:
        time.sleep(600)                      # alive but never joins the next collective
    dist.all_reduce(t)


def test_a_stalled_worker_is_named_after_the_collective_timeout():
    start = time.monotonic()
    with pytest.raises(WorkerFailed, match="rank 2 stopped responding") as err:
        run_local(_rank_two_stalls, 3, timeout_s=3, deadline_s=60)
    assert err.value.rank == 2
    assert time.monotonic() - start < 30
    assert children_of(os.getpid()) == []


def _rank_one_wedges():
    from flexsync.train.liveness import mark_progress

    t = torch.ones(4)
    dist.all_reduce(t)
    if dist.get_rank() == 1:
        mark_progress(1)
        time.sleep(600)                      # alive (its heartbeat goes on) but stuck
    mark_progress(2)
    dist.all_reduce(t)                       # the others wait for it here


def test_a_wedged_worker_is_named_by_the_heartbeat_long_before_the_collective_timeout():
    start = time.monotonic()
    with pytest.raises(WorkerStalled, match="rank 1 is wedged: alive but stuck at step 1") \
            as err:
        run_local(_rank_one_wedges, 3, timeout_s=300, stall_s=2, deadline_s=120)
    assert err.value.rank == 1
    assert time.monotonic() - start < 60     # the collective timeout is 300 s
    assert children_of(os.getpid()) == []


def _listening_addresses():
    import subprocess

    t = torch.ones(1)
    dist.all_reduce(t)                       # gloo is connected and listening now
    out = subprocess.run(["ss", "-tlnp"], capture_output=True, text=True).stdout
    return [line.split()[3] for line in out.splitlines() if f"pid={os.getpid()}," in line]


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_local_workers_listen_on_loopback_only(monkeypatch):
    monkeypatch.delenv("GLOO_SOCKET_IFNAME", raising=False)
    for addrs in run_local(_listening_addresses, 2, deadline_s=60):
        assert addrs and all(a.startswith("127.") for a in addrs), addrs


def test_work_directories_of_dead_launchers_are_removed_by_the_next_launch(tmp_path):
    from flexsync.launch import cleanup_stale_workdirs

    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)                       # now a pid that no process has
    dead = tmp_path / f"flexsync-{pid}-abc123"
    live = tmp_path / f"flexsync-{os.getpid()}-def456"
    other = tmp_path / "flexsync-notapid"
    for d in (dead, live, other):
        d.mkdir()
    assert cleanup_stale_workdirs(str(tmp_path)) == [dead.name]
    assert not dead.exists() and live.exists() and other.exists()


def _launcher_listening():
    import subprocess

    t = torch.ones(1)
    dist.all_reduce(t)                       # the group is formed: the store was used
    out = subprocess.run(["ss", "-Htlnp"], capture_output=True, text=True).stdout
    return [line.split()[3] for line in out.splitlines() if f"pid={os.getppid()}," in line]


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_the_local_launcher_itself_listens_on_no_port():
    """Rendezvous goes through a file store: the launcher opens no TCP port at all (unlike
    torchrun's agent store, see the README on binding it)."""
    assert run_local(_launcher_listening, 2, deadline_s=60) == [[], []]


def _torchrun_worker(rank, attempt, port, delay, crash):
    """One rank as torchrun starts it: env vars pointing at the agent's shared store; with
    ``crash`` it dies after its first collective, as a killed job's ranks do."""
    code = 1
    try:
        os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
                           "GROUP_WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                           "MASTER_PORT": str(port), "TORCHELASTIC_USE_AGENT_STORE": "True",
                           "TORCHELASTIC_RESTART_COUNT": str(attempt),
                           "GLOO_SOCKET_IFNAME": "lo"})
        time.sleep(delay)
        init_from_env("gloo", timeout_s=10)
        t = torch.ones(4)
        dist.all_reduce(t)
        if crash:
            os._exit(0 if t.sum().item() == 8 else 2)
        dist.barrier()
        dist.destroy_process_group()
        code = 0 if t.sum().item() == 8 else 2
    finally:
        os._exit(code)


def test_a_restarted_torchrun_attempt_never_reads_the_previous_attempts_keys():
    """torchrun keeps one agent store for every restart; the process group's key names are
    fixed, so a restarted rank that connects before its peer would read the dead attempt's
    address (and then fail, or hang in gloo's connect past every timeout). Each attempt must get
    its own namespace: with one rank late on purpose, each restarted attempt still forms its
    group. (Without the namespace this fails in most runs, not all: gloo's connect retries
    sometimes catch the fresh address in time.)"""
    ctx = mp.get_context("fork")
    server = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False,
                           timeout=datetime.timedelta(seconds=30))
    for attempt, delays in [(0, (0.0, 0.0)), (1, (0.0, 3.0)), (2, (3.0, 0.0))]:
        procs = [ctx.Process(target=_torchrun_worker,
                             args=(r, attempt, server.port, delays[r], attempt < 2))
                 for r in range(2)]
        for p in procs:
            p.start()
        try:
            for p in procs:
                p.join(timeout=30)
            assert [p.exitcode for p in procs] == [0, 0], f"attempt {attempt}"
        finally:
            for p in procs:
                if p.is_alive():
                    p.kill()
                    p.join()
