"""Experiment config validation (errors name the field) and the shipped config files."""

from __future__ import annotations

from pathlib import Path

import pytest

from qtrojan.experiments.config import ExperimentConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_default_yaml_equals_builtin_default() -> None:
    assert ExperimentConfig.load(CONFIGS / "default.yaml") == ExperimentConfig()


@pytest.mark.parametrize("name", ["n8.yaml", "smoke.yaml"])
def test_shipped_configs_are_valid(name: str) -> None:
    cfg = ExperimentConfig.load(CONFIGS / name)
    assert cfg.tasks


@pytest.mark.parametrize("data, field", [
    ({"tasks": [{"dataset": "fashion", "classes": [0, 1]}]}, "tasks[0].dataset"),
    ({"tasks": [{"dataset": "digits"}]}, "tasks[0].classes"),
    ({"tasks": [{"dataset": "digits", "classes": [1, 1]}]}, "tasks[0].classes"),
    ({"tasks": [{"dataset": "digits", "classes": [0, 1, 2, 3, 4], "n_qubits": 4}]},
     "tasks[0].classes"),
    ({"tasks": [{"dataset": "digits", "classes": [0, 1], "epochs": 0}]}, "tasks[0].epochs"),
    ({"tasks": [{"dataset": "idx", "classes": [0, 1]}]}, "tasks[0].idx_images"),
    ({"tasks": [{"dataset": "digits", "classes": [0, 1], "qubits": 4}]}, "qubits"),
    ({"poison_rates": [0.1, 1.5]}, "poison_rates[1]"),
    ({"poison_rates": [0]}, "poison_rates[0]"),
    ({"target": 2, "tasks": [{"dataset": "digits", "classes": [0, 1]}]}, "target"),
    ({"target_mode": "random"}, "target_mode"),
    ({"lr": -1}, "lr"),
    ({"shots": "many"}, "shots"),
    ({"axes": "YW"}, "axes"),
    ({"learning_rate": 0.1}, "learning_rate"),
])
def test_invalid_fields_are_named(data: dict, field: str) -> None:
    with pytest.raises(ValueError) as err:
        ExperimentConfig.from_dict(data)
    assert field in str(err.value)


def test_bad_yaml(tmp_path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("tasks: [\n")
    with pytest.raises(ValueError, match="YAML"):
        ExperimentConfig.load(p)


def test_set_overrides_nested_fields_and_values_parse_as_yaml(tmp_path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("seed: 3\ntasks:\n  - {dataset: digits, classes: [0, 1], epochs: 5}\n")
    cfg = ExperimentConfig.load(p, ["tasks.0.epochs=2", "poison_rates=[0.2]", "seed=4"])
    assert cfg.tasks[0].epochs == 2 and cfg.poison_rates == (0.2,) and cfg.seed == 4
    # no file: overrides apply to the built-in grid, a task field starts from its tasks
    base = ExperimentConfig.load(None, ["tasks.1.epochs=7"])
    assert base.tasks[1].epochs == 7 and base.tasks[0] == ExperimentConfig().tasks[0]


@pytest.mark.parametrize("item, message", [
    ("seed", "key=value"), ("tasks.9.epochs=1", "index"), ("seed=[", "YAML"),
    ("seed=-1", "'seed'"), ("tasks.0.epochs=0", "tasks[0].epochs"),
])
def test_bad_overrides_are_named(item: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        ExperimentConfig.load(None, [item])


def test_every_field_is_declared_with_a_check() -> None:
    from dataclasses import fields

    from qtrojan.experiments.config import TaskConfig

    for cls in (ExperimentConfig, TaskConfig):
        for f in fields(cls):
            assert callable(f.metadata.get("check")), f"{cls.__name__}.{f.name}"


def test_sixteen_qubits_accepted_seventeen_rejected() -> None:
    task = {"dataset": "digits", "classes": [0, 1], "n_qubits": 16}
    assert ExperimentConfig.from_dict({"tasks": [task]}).tasks[0].n_qubits == 16
    with pytest.raises(ValueError, match="n_qubits"):
        ExperimentConfig.from_dict({"tasks": [{**task, "n_qubits": 17}]})
