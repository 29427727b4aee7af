"""Typed result records: one :class:`Record` per trained or compiled model of the grid.

A record is built once with every value it reports (no key is written twice), and serialised
with :meth:`Record.to_dict` for ``results.json`` / ``results.csv``. Fields that do not apply to
a method are ``None`` (for example ``n_poison`` of the clean model).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

METHODS = ("clean", "qtrojan", "dpba")


@dataclass(frozen=True)
class TaskInfo:
    """What every record of one task shares."""

    task: str
    dataset: str
    classes: tuple[int, ...]
    n_qubits: int
    n_layers: int
    target: int
    target_label: int
    n_train: int
    n_test: int


@dataclass(frozen=True)
class Record:
    """One model's results on the test split (design §4 metrics).

    ``asr`` is the non-target ASR (the DPBA convention): the triggered non-target test samples
    for DPBA and the clean model, the attacked non-target test samples for QTrojan.
    """

    info: TaskInfo
    method: str
    poison_rate: float
    cda: float
    asr: float
    asr_all: float
    asr_nontarget: float
    asr_shots_all: float | None = None
    asr_shots_nontarget: float | None = None
    asr_after_ft: float | None = None
    asr_retrained: float | None = None
    gate_overhead: int = 0
    depth_overhead: int = 0
    train_time_s: float = 0.0
    n_poison: int | None = None
    transparent: bool | None = None
    target_state: str | None = None
    margin: float | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"record method must be one of {METHODS}, got {self.method!r}")

    @property
    def task(self) -> str:
        return self.info.task

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-ready mapping (task fields first, then this record's values)."""
        out = asdict(self.info)
        out["classes"] = list(self.info.classes)
        body = asdict(self)
        del body["info"]
        out.update(body)
        return out
