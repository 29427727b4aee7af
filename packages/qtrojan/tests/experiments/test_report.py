"""Summary deltas equal a direct computation over the records (design §4)."""

from __future__ import annotations

import pytest

from qtrojan.experiments.records import Record, TaskInfo
from qtrojan.experiments.report import format_table, summarize


def _rec(task: str, method: str, rate: float, cda: float, asr: float) -> Record:
    info = TaskInfo(task, "digits", (0, 1), 4, 2, 0, 0, 10, 10)
    return Record(info, method, rate, cda, asr=asr, asr_all=asr, asr_nontarget=asr,
                  gate_overhead=8 if method == "qtrojan" else 0)


def test_summary_deltas() -> None:
    recs = [
        _rec("a", "clean", 0.0, 0.9, 0.0), _rec("a", "qtrojan", 0.0, 0.9, 1.0),
        _rec("a", "dpba", 0.1, 0.8, 0.2), _rec("a", "dpba", 0.3, 0.7, 0.9),
        _rec("b", "clean", 0.0, 1.0, 0.0), _rec("b", "qtrojan", 0.0, 1.0, 1.0),
        _rec("b", "dpba", 0.1, 1.0, 0.0), _rec("b", "dpba", 0.3, 0.9, 0.5),
    ]
    s = summarize(recs)
    assert s["n_pairs"] == 4
    assert s["delta_cda"] == pytest.approx((0.1 + 0.2 + 0.0 + 0.1) / 4)
    assert s["delta_asr"] == pytest.approx((0.8 + 0.1 + 1.0 + 0.5) / 4)
    assert s["per_rate"]["0.3"]["delta_asr"] == pytest.approx((0.1 + 0.5) / 2)
    assert s["strongest_dpba"]["delta_cda"] == pytest.approx((0.2 + 0.1) / 2)
    assert s["checks"] == {"a": {"cda_equals_clean": True, "asr_is_one": True},
                           "b": {"cda_equals_clean": True, "asr_is_one": True}}
    text = format_table(recs, s)
    assert "paper +21.0%" in text and "paper +19.9%" in text
