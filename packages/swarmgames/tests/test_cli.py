"""CLI: `swarmgames run CONFIG.yaml --set k=v` writes metrics.jsonl, summary.json, plots."""

import json
from pathlib import Path

from swarmgames.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_run_coco_with_overrides_and_gif(tmp_path):
    out = tmp_path / "coco"
    rc = main(["run", str(CONFIGS / "coco_8uav_5ue.yaml"), "--set", "coco.steps=4",
               "--set", "coco.n_uavs=4", "--out", str(out), "--gif"])
    assert rc == 0
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4 and "ue_connectivity" in json.loads(lines[0])
    summary = json.loads((out / "summary.json").read_text())
    assert "coverage_last" in summary and len(summary["trajectory_hash"]) == 64
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["coco"]["n_uavs"] == 4
    for f in ("snapshot_initial.png", "snapshot_final.png", "timeline.png", "episode.gif"):
        assert (out / f).stat().st_size > 0


def test_sweep_writes_table(tmp_path):
    out = tmp_path / "sweep"
    rc = main(["run", str(CONFIGS / "flock_scaling.yaml"), "--set", "flock.steps=3",
               "--set", "seeds=[0, 1]", "--set", "sweep={flock.n_agents: [3, 4]}",
               "--set", "output.plots=false", "--out", str(out)])
    assert rc == 0
    table = (out / "table.md").read_text()
    assert "flock.n_agents=3" in table and "flock.n_agents=4" in table
    assert (out / "flock.n_agents=4" / "seed1" / "metrics.jsonl").exists()


def test_config_error_names_key(tmp_path, capsys):
    rc = main(["run", str(CONFIGS / "flock_8uav.yaml"), "--set", "flock.solver.k_max=0",
               "--out", str(tmp_path / "x")])
    assert rc == 2
    assert "flock.solver.k_max" in capsys.readouterr().err


def test_all_shipped_configs_validate():
    """Every shipped config loads with its system's validator (AAM configs have their own)."""
    from swarmgames.fleet.train.config import load_aam_config
    from swarmgames.runner import load_config

    for path in sorted(CONFIGS.glob("*.yaml")):
        if path.name.startswith("aam_"):
            load_aam_config(path)
        else:
            load_config(path)
