"""Summary statistics and tables shared by the games runner and the fleet evaluation."""

from __future__ import annotations

import numpy as np


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and 95% normal-approximation half-width (t≈1.96·s/√n; 0 for one value)."""
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan")
    hw = 1.96 * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0
    return float(v.mean()), float(hw)


def mean_t_ci(values: list[float]) -> tuple[float, float]:
    """Mean and Student-t 95% half-width t_{0.975, n-1}·s/√n over the finite values (0 for one
    value).  Used by every table added with issue 22; ``mean_ci`` (normal approximation) is
    kept so the earlier README tables reproduce."""
    from scipy import stats

    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan")
    if len(v) == 1:
        return float(v[0]), 0.0
    t = float(stats.t.ppf(0.975, len(v) - 1))
    return float(v.mean()), float(t * v.std(ddof=1) / np.sqrt(len(v)))


def markdown_table(results: dict[str, dict[str, tuple[float, float]]],
                   metrics: list[str] | None = None) -> str:
    """Rows = variants, columns = metrics, cells 'mean ± ci'."""
    labels = list(results)
    metrics = metrics or [m for m in results[labels[0]] if m not in ("wall_s",)]
    lines = ["| variant | " + " | ".join(metrics) + " |",
             "|---" * (len(metrics) + 1) + "|"]
    for lab in labels:
        cells = []
        for m in metrics:
            mu, hw = results[lab].get(m, (float("nan"), float("nan")))
            cells.append(f"{mu:.3g}" + (f" ± {hw:.2g}" if hw and np.isfinite(hw) else ""))
        lines.append(f"| {lab} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
