"""The fair DPBA comparison: selection never reads the test split, the choice rule, intervals."""

from __future__ import annotations

import math

import pytest
import torch

from qtrojan.data import TaskData
from qtrojan.experiments.compare import (
    Candidate,
    choose,
    comparison_markdown,
    format_comparison,
    run_comparison,
    select_dpba,
    summarize_comparison,
)
from qtrojan.experiments.config import ExperimentConfig, TaskConfig
from qtrojan.stats import t_interval


class _Forbidden(torch.Tensor):
    """A tensor on which every torch operation (even ``.shape``) raises."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN206
        raise AssertionError("the test split was read during DPBA selection")


def _forbid(t: torch.Tensor) -> torch.Tensor:
    return t.as_subclass(_Forbidden)


TINY = ExperimentConfig(tasks=(TaskConfig("d01", "digits", (0, 1), n_layers=1, epochs=2),),
                        poison_rates=(0.1,), fixed_rate=0.1, trigger_values=(0.0, math.pi),
                        seeds=2, shots=0)


def test_forbidden_tensor_really_raises(digits01: TaskData) -> None:
    x = _forbid(digits01.x_test)
    with pytest.raises(AssertionError, match="test split"):
        x.shape  # noqa: B018
    with pytest.raises(AssertionError, match="test split"):
        x[:, 0] = 1.0


def test_selection_never_reads_the_test_split(digits01: TaskData) -> None:
    sealed = TaskData(digits01.x_train, digits01.y_train, _forbid(digits01.x_test),
                      _forbid(digits01.y_test), digits01.classes)
    sel = select_dpba(sealed, TINY.tasks[0], TINY)
    # 4 features x 2 values x 1 rate, each with metrics measured on validation data
    assert len(sel.candidates) == 8
    assert all(0.0 <= c.val_asr <= 1.0 and 0.0 <= c.val_cda <= 1.0 for c in sel.candidates)
    assert sel.best_at_fixed_rate.rate == 0.1
    # every candidate knows what its trigger does to the unpoisoned model; the implanted choice
    # respects the bound whenever some candidate does
    assert all(0.0 <= c.clean_val_asr <= 1.0 for c in sel.candidates)
    if any(c.clean_val_asr <= TINY.implanted_max_clean_asr for c in sel.candidates):
        assert sel.best_implanted.clean_val_asr <= TINY.implanted_max_clean_asr


def test_choice_prefers_stealthy_then_highest_asr() -> None:
    cands = (Candidate(0, 0.0, 0.1, val_cda=0.80, val_asr=1.0),   # too costly in CDA
             Candidate(1, 0.0, 0.1, val_cda=0.97, val_asr=0.6),
             Candidate(2, 0.0, 0.3, val_cda=0.98, val_asr=0.6),   # tie on ASR, higher CDA
             Candidate(3, 0.0, 0.05, val_cda=0.96, val_asr=0.2))
    assert choose(cands, clean_val_cda=1.0, tolerance=0.05).feature == 2
    assert choose(cands, clean_val_cda=1.0, tolerance=0.25).feature == 0
    # nobody stealthy: fall back to the highest ASR
    assert choose(cands[:1], clean_val_cda=1.0, tolerance=0.0).feature == 0
    with pytest.raises(ValueError):
        choose((), 1.0, 0.05)


def test_t_interval_matches_formula() -> None:
    iv = t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    # t_{0.975, 4} = 2.776445, s = sqrt(2.5)
    assert iv.mean == pytest.approx(3.0)
    assert iv.half_width == pytest.approx(2.776445 * math.sqrt(2.5) / math.sqrt(5), rel=1e-5)
    assert t_interval([0.5, 0.5]).half_width == 0.0
    with pytest.raises(ValueError):
        t_interval([1.0])


def test_comparison_deltas_are_paired_by_seed() -> None:
    results = run_comparison(TINY)
    (r,) = results
    assert len(r.seeds) == 2
    summary = summarize_comparison(results)
    for name in ("original", "best_at_fixed_rate", "best_over_sweep", "best_implanted"):
        da = [s.qt_asr - s.dpba[name][1] for s in r.seeds]
        assert summary["tasks"]["d01"][name]["delta_asr"]["mean"] == pytest.approx(sum(da) / 2)
        assert summary["overall"][name]["delta_asr"]["mean"] == pytest.approx(sum(da) / 2)
    for s in r.seeds:
        assert s.qt_cda == s.clean_cda          # the disabled backdoor is transparent
    assert r.settings["original"] == Candidate(0, math.pi, 0.1)
    assert "best_over_sweep" in format_comparison(summary)
    md = comparison_markdown(summary)
    assert md.count("| d01 |") == 1 and "DPBA best over sweep" in md


def test_worker_processes_give_the_sequential_results() -> None:
    import dataclasses

    sequential = run_comparison(TINY)
    parallel = run_comparison(dataclasses.replace(TINY, jobs=2))
    assert parallel == sequential
