"""One-off correction of quality-suite runs of the DDP baselines recorded before commit
139cfd8 (issue #23).

Those runs charged the DDP baselines collectives that no other strategy paid: flexsync's
unaccounted 8-byte non-finite flag allreduce (every step) and 24-byte evaluation sums (after
every evaluation), counted by the baselines' patched ``dist.all_reduce``. Training is
unaffected; only the records priced by the clock are wrong. This drops exactly those
records (allreduces of 8 or 24 bytes: PyTorch's fp16 and PowerSGD hooks send nothing that
small on the suite's ResNet, whose smallest hook message is 2728 bytes) and their bytes from
the cumulative counts, keeping the original file as ``metrics.jsonl.orig``. Runs recorded
after the fix have no such record, so rerunning the suite's command needs no correction.

    python packages/flexsync/benchmarks/drop_ddp_flag_records.py runs/bench/quality
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SPURIOUS = (["allreduce", "ring", 8, 1], ["allreduce", "ring", 24, 1])


def fix(metrics: Path) -> int:
    orig = metrics.with_name("metrics.jsonl.orig")
    if orig.exists():
        return 0                                   # already corrected
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    dropped = dropped_bytes = 0
    for r in rows:
        bad = [c for c in r.get("comm", []) if c in SPURIOUS]
        r["comm"] = [c for c in r.get("comm", []) if c not in SPURIOUS]
        dropped += len(bad)
        dropped_bytes += sum(c[2] for c in bad)
        r["step_bytes"] = r.get("step_bytes", 0) - sum(c[2] for c in bad)
        r["bytes_sent"] = r["bytes_sent"] - dropped_bytes
        r["collectives"] = r.get("collectives", 0) - len(bad)
    metrics.rename(orig)
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = metrics.with_name("summary.json")
    s = json.loads(summary.read_text())
    s["bytes_sent"] -= dropped_bytes
    summary.write_text(json.dumps(s, indent=1))
    return dropped


if __name__ == "__main__":
    root = Path(sys.argv[1])
    for m in sorted(root.glob("*/ddp-*/*/seed*/metrics.jsonl")):
        print(m.parent, fix(m))
