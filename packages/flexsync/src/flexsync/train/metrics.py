"""Run-directory outputs: per-step ``metrics.jsonl`` and the final ``summary.json``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class MetricsWriter:
    """Append-only JSONL writer; one line per training step (evaluations add keys), each
    carrying the run id."""

    def __init__(self, path: Path, run_id: str = "", resume_after: int | None = None) -> None:
        """A fresh file, or with ``resume_after`` the existing one cut after that step (rows
        a crashed run wrote past its last checkpoint, or rows of another run, are dropped)
        and appended to."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.run_id = run_id
        if resume_after is not None and path.exists():
            keep = [r for r in read_metrics(path)
                    if r["step"] <= resume_after and r.get("run_id", run_id) == run_id]
            path.write_text("".join(json.dumps(r) + "\n" for r in keep))
        self._f = path.open("a" if resume_after is not None else "w", buffering=1)

    def write(self, row: dict[str, Any]) -> None:
        row = {"run_id": self.run_id, **row} if self.run_id else row
        self._f.write(json.dumps({k: _clean(v) for k, v in row.items()}) + "\n")

    def close(self) -> None:
        self._f.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    with Path(path).open() as f:
        return [json.loads(line) for line in f if line.strip()]


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps({k: _clean(v) for k, v in data.items()}, indent=2) + "\n")
