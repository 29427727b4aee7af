"""Progress of the step loop when nobody is watching a terminal.

tqdm draws a bar on a terminal and nothing when stderr is a file or a pipe (a batch job, CI,
``nohup``). There :class:`LineProgress` prints one plain line every ``every_s`` seconds and
one at the end, e.g. ``train: step 120/300 (40%), 12.3 s, loss=0.712, t_model=4.1s``, with
the same ``update``/``set_postfix``/``close`` calls the loop makes on a tqdm bar.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class LineProgress:
    """A tqdm stand-in that prints periodic lines to ``stream`` (stderr by default)."""

    def __init__(self, total: int, initial: int = 0, every_s: float = 30.0,
                 stream: TextIO | None = None, desc: str = "train") -> None:
        self.total, self.n, self.every_s, self.desc = total, initial, every_s, desc
        self.stream = stream or sys.stderr
        self.started = self.last = time.monotonic()
        self.postfix: dict[str, Any] = {}

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            self._print(now)

    def set_postfix(self, **values: Any) -> None:
        self.postfix = values

    def close(self) -> None:
        self._print(time.monotonic())

    def _print(self, now: float) -> None:
        pct = 100.0 * self.n / self.total if self.total else 100.0
        extra = "".join(f", {k}={v}" for k, v in self.postfix.items())
        self.stream.write(f"{self.desc}: step {self.n}/{self.total} ({pct:.0f}%), "
                          f"{now - self.started:.1f} s{extra}\n")
        self.stream.flush()
