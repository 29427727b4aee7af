"""Liveness: name a stalled or wedged rank quickly, off the data path.

Each worker runs a :class:`Beater` thread that writes ``"<beat> <step>"`` under
``flexsync/hb/<rank>`` into a c10d store (the local launcher's file store, or the torchrun
job's store) every ``interval`` seconds; ``<step>`` is the training step this process's main
thread last reached (:func:`mark_progress`). A :class:`Monitor` (the local launcher, or every
torchrun rank's watcher thread) reads the keys and names

* a **stalled** rank: its beat has not changed for ``bound`` seconds (the process is stopped,
  SIGSTOP, frozen, or a native call holds the interpreter), and
* a **wedged** rank: it beats, but no rank's step has advanced for ``bound`` seconds and it is
  behind the others (its peers wait for it in a collective while it is stuck elsewhere).

Both are measured on the monitor's own monotonic clock (no clock agreement between machines
needed) and are independent of the collective timeout (``timeout_s``), which stays the last
resort for a rank that is alive, level with its peers, and still never joins.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

KEY = "flexsync/hb/{rank}"
_progress = [0]


def mark_progress(step: int) -> None:
    """Record that this process's training loop reached ``step`` (read by its beater)."""
    _progress[0] = step


def interval_for(bound: float) -> float:
    """Beat often enough that a missed beat or two never looks like a stall."""
    return max(0.05, min(2.0, bound / 8))


class Beater:
    """A daemon thread calling ``publish("<beat> <step>")`` every ``interval`` seconds."""

    def __init__(self, publish: Callable[[str], None], interval: float) -> None:
        self.publish, self.interval = publish, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="flexsync-heartbeat",
                                        daemon=True)

    def start(self) -> Beater:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        beat = 0
        while not self._stop.is_set():
            beat += 1
            try:
                self.publish(f"{beat} {_progress[0]}")
            except Exception:       # the store is gone: the run is ending, or its monitor
                return              # will name whoever stopped responding
            self._stop.wait(self.interval)


def store_publisher(store, rank: int) -> Callable[[str], None]:
    key = KEY.format(rank=rank)
    return lambda value: store.set(key, value)


def read_store(store, world: int) -> dict[int, str]:
    """The current beat of every rank that has published one."""
    out = {}
    for r in range(world):
        key = KEY.format(rank=r)
        if store.check([key]):
            out[r] = store.get(key).decode()
    return out


@dataclass
class Monitor:
    """Turns successive readings of every rank's beat into a verdict (see module doc)."""

    world: int
    bound: float
    started: float = field(default_factory=time.monotonic)
    _beat: dict[int, tuple[str, float]] = field(default_factory=dict)
    _step: dict[int, int] = field(default_factory=dict)
    _moved: float = field(default_factory=time.monotonic)

    def observe(self, beats: dict[int, str], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for r, value in beats.items():
            if self._beat.get(r, ("", 0.0))[0] != value:
                self._beat[r] = (value, now)
            step = int(value.split()[1]) if len(value.split()) > 1 else 0
            if step > self._step.get(r, -1):
                self._step[r] = step
                self._moved = now

    def verdict(self, now: float | None = None) -> tuple[int, str] | None:
        """(rank, what happened) for the first stalled or wedged rank, else None."""
        now = time.monotonic() if now is None else now
        for r in range(self.world):
            last = self._beat.get(r, ("", self.started))[1]
            if now - last > self.bound:
                seen = "sent no heartbeat" if r in self._beat else "never sent a heartbeat"
                return r, (f"stopped responding: {seen} for {now - last:.0f} s (stopped, "
                           "frozen or hung in native code)")
        if len(self._step) == self.world and now - self._moved > self.bound:
            low = min(self._step.values())
            high = max(self._step.values())
            if low < high:
                r = min(k for k, v in self._step.items() if v == low)
                return r, (f"is wedged: alive but stuck at step {low} for "
                           f"{now - self._moved:.0f} s while other ranks wait at step {high}")
        return None


def watch_in_thread(store, rank: int, world: int, bound: float,
                    on_verdict: Callable[[int, str], None]) -> threading.Thread:
    """Under torchrun: beat for ``rank`` and watch every rank from a daemon thread; call
    ``on_verdict(rank, what)`` once when one is stalled or wedged."""
    Beater(store_publisher(store, rank), interval_for(bound)).start()

    def loop() -> None:
        mon = Monitor(world, bound)
        while True:
            time.sleep(interval_for(bound))
            try:
                mon.observe(read_store(store, world))
            except Exception:
                return
            found = mon.verdict()
            if found is not None:
                on_verdict(*found)
                return

    t = threading.Thread(target=loop, name="flexsync-liveness", daemon=True)
    t.start()
    return t
