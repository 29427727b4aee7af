"""Noise study: at strength 0 it reproduces the noiseless evaluation; noise moves the numbers."""

from __future__ import annotations

import dataclasses
import math

import pytest

from qtrojan.attacks import dpba
from qtrojan.experiments.config import ExperimentConfig, TaskConfig
from qtrojan.experiments.runner import fit, load_task_data, new_model
from qtrojan.experiments.studies import format_noise, noise_study, summarize_noise
from qtrojan.metrics import accuracy, attack_success_rate

TINY = ExperimentConfig(tasks=(TaskConfig("d0123", "digits", (0, 1, 2, 3), n_layers=2,
                                          epochs=3),),
                        seeds=2, shots=0, fixed_rate=0.2, trigger_feature=1,
                        trigger_value=math.pi)


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return noise_study(TINY, [0.0, 0.2], [0.3])


def test_strength_zero_equals_the_noiseless_evaluation(rows: list[dict]) -> None:
    task = TINY.tasks[0]
    data = load_task_data(task, TINY)
    trig = dpba.Trigger(1, math.pi)
    for k in range(TINY.seeds):
        cfg = dataclasses.replace(TINY, seed=k)
        clean = new_model(task, cfg)
        fit(clean, data.x_train, data.y_train, task.epochs, cfg)
        ps = dpba.poison(data.x_train, data.y_train, 0.2, 0, trig, seed=k)
        poisoned = new_model(task, cfg)
        fit(poisoned, ps.x, ps.y, task.epochs, cfg)
        x_trig, _ = dpba.triggered_test(data.x_test, data.y_test, 0, trig)
        (r,) = [r for r in rows if r["seed"] == k and r["depolarizing"] == 0
                and r["readout"] == 0]
        assert r["clean_cda"] == accuracy(clean.predict(data.x_test), data.y_test)
        assert r["qt_off_cda"] == r["clean_cda"] and r["qt_asr"] == 1.0
        assert r["dpba_cda"] == accuracy(poisoned.predict(data.x_test), data.y_test)
        assert r["dpba_asr"] == attack_success_rate(poisoned.predict(x_trig), 0)


def test_strong_noise_changes_results_and_readout_alone_keeps_exact_argmax(rows: list[dict]
                                                                         ) -> None:
    zero = {r["seed"]: r for r in rows if r["depolarizing"] == 0 and r["readout"] == 0}
    strong = {r["seed"]: r for r in rows if r["depolarizing"] == 0.2}
    flips = {r["seed"]: r for r in rows if r["readout"] == 0.3}
    assert any(strong[s]["clean_cda"] != zero[s]["clean_cda"] for s in zero)
    # symmetric readout flips scale every <Z_c> by (1 - 2q): the exact argmax cannot move
    assert all(flips[s][m] == zero[s][m] for s in zero for m in ("clean_cda", "dpba_asr"))
    summary = summarize_noise(rows)
    assert len(summary) == 3 and all(e["n_seeds"] == 2 for e in summary)
    assert "QTrojan ASR" in format_noise(summary)


def test_detection_study_on_held_out_seeds() -> None:
    from qtrojan.experiments.studies import (
        detection_rows,
        format_detection,
        summarize_detection,
    )

    cfg = dataclasses.replace(TINY, seeds=4, shots=0)
    rows = detection_rows(cfg)
    assert len(rows) == 4 * 5
    s = summarize_detection(rows)
    assert s["calibration_seeds"] == [0, 1] and s["held_out_seeds"] == [2, 3]
    audit = s["detectors"]["audit"]
    assert audit["held_out_fpr"] == 0.0
    assert audit["kinds"]["qtrojan_on"]["tpr"] == 1.0
    assert audit["kinds"]["qtrojan_dormant_omitted"]["tpr"] == 0.0   # nothing to see
    assert s["detectors"]["audit_after_strip"]["kinds"]["qtrojan_dormant_rx0"]["tpr"] == 0.0
    assert s["detectors"]["output_spread"]["kinds"]["qtrojan_on"]["auc"] == 1.0
    assert s["qtrojan_on_asr_after_strip_min"] == 1.0
    assert "output_spread" in format_detection(s)
