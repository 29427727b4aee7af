"""A plain-text results table over run directories' ``summary.json`` files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flexsync.net.units import format_bytes


def load_summary(run_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / "summary.json").read_text())


def _fmt_time(v: float | None) -> str:
    return "never" if v is None else f"{v:.1f}"


def _num(v: float | None, spec: str, scale: float = 1.0) -> str:
    """A number, or ``non-finite`` where the summary holds null (NaN/inf are written so)."""
    return "non-finite" if v is None else format(scale * v, spec)


def results_table(run_dirs: list[str | Path]) -> str:
    rows = []
    for d in run_dirs:
        s = load_summary(d)
        metric = (f"ppl {_num(s['final_perplexity'], '.1f')}" if "final_perplexity" in s
                  else _num(s["final_accuracy"], ".1f", 100) + "%")
        if s.get("nonfinite_eval"):
            metric += " (non-finite eval!)"
        rows.append([
            Path(d).name, s["strategy"], str(s["world_size"]), str(s["steps"]), metric,
            _num(s["final_loss"], ".3f"), format_bytes(s["bytes_sent"]),
            f"{s['modeled_time_s']:.1f}", _fmt_time(s["time_to_target_modeled_s"]),
            f"{s['wall_time_s']:.1f}",
        ])
    head = ["run", "strategy", "N", "steps", "test", "loss", "sent/worker",
            "modeled s", "to target (modeled s)", "wall s"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)
