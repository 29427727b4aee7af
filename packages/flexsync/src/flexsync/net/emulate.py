"""Emulated slow links: one Linux network namespace per worker, joined by a bridge, each
worker's uplink shaped with ``tc tbf`` (this kernel has no netem).

    bridge b<tag>  ──  veth <tag>v<i>  ═══  eth0 in netns <tag>-<i>  (10.77.0.<i+1>/24, tbf)

The bridge has no address and nothing routes out: workers can reach only each other. A
forked worker enters its namespace with ``setns`` before joining the process group
(rendezvous goes through a file store, which every namespace shares through the file
system), and gloo is pinned to ``eth0``. Everything is torn down on every exit path; names
carry the owning process id, so namespaces left by a run that was SIGKILLed are removed by
the next run.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import ClassVar

CLONE_NEWNET = 0x40000000
SUBNET = "10.77.0"


class EmulationUnavailable(RuntimeError):
    """The machine cannot emulate links (not root, or no ``ip``/``tc``)."""


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    return proc


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def check_available() -> None:
    if os.geteuid() != 0:
        raise EmulationUnavailable(
            "network kind 'emulated' creates network namespaces and needs root; run as root, "
            "or use the modeled network instead: --set network.kind=modeled")
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            raise EmulationUnavailable(
                f"network kind 'emulated' needs '{tool}' (Debian package iproute2); "
                "or use --set network.kind=modeled")


def cleanup_stale() -> list[str]:
    """Remove namespaces and bridges of earlier runs whose owner process is gone."""
    removed = []
    for line in _run("ip", "netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        m = re.fullmatch(r"fx(\d+)x\d+-\d+", name)
        if m and not _pid_alive(int(m.group(1))):
            _run("ip", "netns", "del", name, check=False)
            removed.append(name)
    for line in _run("ip", "-o", "link", "show", "type", "bridge", check=False).stdout.splitlines():
        m = re.search(r"\d+: (bfx(\d+)x\d+):", line)
        if m and not _pid_alive(int(m.group(2))):
            _run("ip", "link", "del", m.group(1), check=False)
            removed.append(m.group(1))
    return removed


@dataclass
class EmulatedNetwork:
    """A shaped link per worker. ``bandwidth`` in bytes/s (each worker's uplink)."""

    workers: int
    bandwidth: float
    owner: int = 0
    _made: ClassVar[int] = 0

    def __post_init__(self) -> None:
        if self.workers < 1 or self.workers > 250:
            raise ValueError(f"emulation supports 1..250 workers, got {self.workers}")
        self.owner = self.owner or os.getpid()
        EmulatedNetwork._made += 1               # unique names for every network of a process
        self.tag = f"fx{self.owner}x{EmulatedNetwork._made}"
        self.bridge = f"b{self.tag}"
        self.up_done = False

    def namespace(self, rank: int) -> str:
        return f"{self.tag}-{rank}"

    def address(self, rank: int) -> str:
        return f"{SUBNET}.{rank + 1}"

    def up(self) -> EmulatedNetwork:
        check_available()
        cleanup_stale()
        try:
            _run("ip", "link", "add", self.bridge, "type", "bridge")
            _run("ip", "link", "set", self.bridge, "up")
            rate = f"{int(self.bandwidth * 8)}bit"
            # A bucket of 4 ms worth of bytes: large enough for the kernel to keep the rate,
            # small enough that a message is not mostly sent at line speed from the burst.
            burst = f"{max(4096, int(self.bandwidth * 0.004))}b"
            for r in range(self.workers):
                ns, veth = self.namespace(r), f"{self.tag}v{r}"
                _run("ip", "netns", "add", ns)
                _run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0",
                     "netns", ns)
                _run("ip", "link", "set", veth, "master", self.bridge, "up")
                _run("ip", "-n", ns, "link", "set", "lo", "up")
                _run("ip", "-n", ns, "addr", "add", f"{self.address(r)}/24", "dev", "eth0")
                _run("ip", "-n", ns, "link", "set", "eth0", "up")
                _run("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "eth0", "root",
                     "tbf", "rate", rate, "burst", burst, "latency", "200ms")
        except BaseException:
            self.down()
            raise
        self.up_done = True
        return self

    def down(self) -> None:
        """Delete every namespace (their veth ends go with them) and the bridge."""
        problems = []
        for r in range(self.workers):
            # Deleting the host end removes the pair at once (a namespace's devices otherwise
            # linger briefly after the namespace is deleted).
            _run("ip", "link", "del", f"{self.tag}v{r}", check=False)
            p = _run("ip", "netns", "del", self.namespace(r), check=False)
            if p.returncode != 0 and "No such file" not in p.stderr:
                problems.append(p.stderr.strip())
        p = _run("ip", "link", "del", self.bridge, check=False)
        if p.returncode != 0 and "Cannot find device" not in p.stderr:
            problems.append(p.stderr.strip())
        self.up_done = False
        if problems:
            print(f"flexsync: emulated network teardown: {'; '.join(problems)}", file=sys.stderr)

    def __enter__(self) -> EmulatedNetwork:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    def enter(self, rank: int) -> None:
        """Move the calling (single-threaded, freshly forked) process into rank's namespace
        and pin gloo to its shaped interface."""
        fd = os.open(f"/var/run/netns/{self.namespace(rank)}", os.O_RDONLY)
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            if libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns into {self.namespace(rank)}: {os.strerror(err)}")
        finally:
            os.close(fd)
        os.environ["GLOO_SOCKET_IFNAME"] = "eth0"
        os.environ["MASTER_ADDR"] = self.address(0)

    def exists(self) -> bool:
        names = _run("ip", "netns", "list", check=False).stdout
        bridge = _run("ip", "link", "show", self.bridge, check=False).returncode == 0
        return bridge or any(line.startswith(self.tag + "-") for line in names.splitlines())
