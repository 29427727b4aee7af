"""The ``qtrojan`` command end to end on a tiny grid."""

from __future__ import annotations

import csv
import json

import pytest

from qtrojan.cli import main
from qtrojan.experiments.report import CSV_COLUMNS


def test_run_writes_results_table_and_plot(tmp_path, capsys) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("poison_rates: [0.3]\nshots: 128\ntasks:\n"
                   "  - {dataset: digits, classes: [0, 1], n_layers: 2, epochs: 3}\n")
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    records = json.loads((out / "results.json").read_text())
    assert {r["method"] for r in records} == {"clean", "qtrojan", "dpba"}
    for r in records:
        for key in ("task", "method", "poison_rate", "cda", "asr"):
            assert key in r
    by = {r["method"]: r for r in records}
    assert by["qtrojan"]["cda"] == by["clean"]["cda"] and by["qtrojan"]["transparent"]
    assert by["qtrojan"]["asr"] == 1.0 and by["qtrojan"]["gate_overhead"] == 8
    with (out / "results.csv").open() as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 1 + len(records)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_pairs"] == 1
    assert summary["delta_cda"] == pytest.approx(by["qtrojan"]["cda"] - by["dpba"]["cda"])
    assert (out / "tradeoff.png").stat().st_size > 0
    assert "dCDA" in capsys.readouterr().out


def test_invalid_config_exits_2(tmp_path, capsys) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("poison_rates: [2]\n")
    assert main(["run", str(cfg), "--out", str(tmp_path)]) == 2
    assert "poison_rates[0]" in capsys.readouterr().err


def test_comparison_only_skips_the_grid(tmp_path, capsys) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("poison_rates: [0.1]\nshots: 0\nseeds: 2\njobs: 2\ntasks:\n"
                   "  - {dataset: digits, classes: [0, 1], n_layers: 1, epochs: 2}\n")
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--quiet", "--comparison-only"]) == 0
    assert (out / "comparison.json").exists() and not (out / "results.json").exists()
    assert "best_over_sweep" in capsys.readouterr().out
    assert main(["run", str(cfg), "--out", str(out), "--comparison-only",
                 "--set", "compare=false"]) == 2
    assert "'compare'" in capsys.readouterr().err


def test_switch_toggles_the_config_file(tmp_path, capsys) -> None:
    from qtrojan.compiler import WrapConfig

    p = tmp_path / "cal.json"
    WrapConfig(enabled=False, pre=[1.0], post=[2.0]).save(p)
    assert main(["switch", "on", str(p)]) == 0
    assert WrapConfig.load(p).enabled
    assert main(["switch", "off", str(p)]) == 0
    loaded = WrapConfig.load(p)
    assert not loaded.enabled and loaded.pre == (1.0,) and loaded.post == (2.0,)
    assert main(["switch", "on", str(tmp_path / "missing.json")]) == 2


def test_attack_writes_the_config_that_switch_and_export_use(tmp_path, capsys) -> None:
    from qtrojan.compiler import WrapConfig
    from qtrojan.qnn import QNN

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("tasks:\n  - {name: d01, dataset: digits, classes: [0, 1], n_layers: 2, "
                   "epochs: 3}\n")
    out = tmp_path / "att"
    assert main(["attack", str(cfg), "--out", str(out)]) == 0
    summary = json.loads((out / "attack.json").read_text())
    assert summary["cda_config_off"] == summary["cda_clean"]
    assert summary["asr_config_on"] == 1.0 and summary["gates_added_when_on"] == 8
    cal = out / "backend_calibration.json"
    assert not WrapConfig.load(cal).enabled          # planted dormant
    assert main(["switch", "on", str(cal)]) == 0 and WrapConfig.load(cal).enabled
    for fmt, ext in (("qasm", "qasm"), ("pennylane", "py")):
        assert main(["export", str(out), "--format", fmt]) == 0
        clean, trojaned = (out / f"clean.{ext}").read_text(), (out / f"trojaned.{ext}").read_text()
        assert trojaned.count("calibration") == clean.count("calibration") + 8
    # the saved victim is the one that was attacked: re-attacking it gives the same state
    again = tmp_path / "again"
    assert main(["attack", str(cfg), "--out", str(again), "--model", str(out / "victim.json"),
                 "--omit-when-disabled"]) == 0
    assert json.loads((again / "attack.json").read_text())["state_bits"] == summary["state_bits"]
    assert QNN.load(again / "victim.json").to_dict() == QNN.load(out / "victim.json").to_dict()
    capsys.readouterr()
    assert main(["attack", str(cfg), "--out", str(again), "--task", "nope"]) == 2
    assert "no task 'nope'" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing")]) == 2
