"""TensorBoard event files for a run: every metrics row becomes scalars at its step.

``logging: {tensorboard: DIR}`` in a config makes rank 0 write, next to ``metrics.jsonl``,
one scalar per numeric key of each step's row (``loss``, ``bytes_sent``, ``step_bytes``,
``modeled_time``, ``step_comm_s``, ``alpha``, ``bandwidth``, ``test_accuracy``, the
strategy's signals such as ``ratio`` or ``gain``, …) under the same name. Point
``tensorboard --logdir DIR`` at it. For your own training loop see
:func:`flexsync.log_to`, which logs the optimizer wrapper's steps to a ``SummaryWriter``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from flexsync.integrations.optimizer import step_scalars


class RowWriter(Protocol):
    def write(self, row: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class TensorBoardWriter:
    """Write metrics rows as TensorBoard scalars in ``log_dir`` (needs the ``tensorboard``
    package, a flexsync dependency)."""

    def __init__(self, log_dir: str | Path, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(log_dir), purge_step=purge_step)

    def write(self, row: dict[str, Any]) -> None:
        step = int(row["step"])
        for key, value in step_scalars(row).items():
            if key != "step":
                self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.close()


class Tee:
    """One writer interface over several (the JSONL metrics and TensorBoard)."""

    def __init__(self, *writers: RowWriter) -> None:
        self.writers = writers

    def write(self, row: dict[str, Any]) -> None:
        for w in self.writers:
            w.write(row)

    def close(self) -> None:
        for w in self.writers:
            w.close()
