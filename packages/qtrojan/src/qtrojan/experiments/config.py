"""Experiment configuration: the task grid and protocol of design qtrojan.md §1, §3, §6.

Read from YAML (or JSON) and validated at the edge; every error names the offending field.
The defaults below are the design's n = 4 grid (digits {0,1}, {0-3}; MNIST-5k {0,1}, {3,6},
{0-3}), which the CLI runs when no config file is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from qtrojan.attacks.qtrojan import SELECTION_MODES
from qtrojan.circuit import ANSATZ_KINDS, ROTATION_AXES
from qtrojan.data import DATASETS, FEATURE_METHODS


def _check_keys(data: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"config field '{where}' must be a mapping")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValueError(f"unknown config field(s) {unknown} in '{where}'; allowed: "
                         f"{list(allowed)}")


def _int(value: Any, name: str, low: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"config field '{name}' must be an integer, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"config field '{name}' must be >= {low}, got {value}")
    return value


def _float(value: Any, name: str, low: float | None = None, high: float | None = None,
           low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"config field '{name}' must be a finite number, got {value!r}")
    value = float(value)
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"config field '{name}' must be {'>' if low_open else '>='} {low}, "
                         f"got {value}")
    if high is not None and value > high:
        raise ValueError(f"config field '{name}' must be <= {high}, got {value}")
    return value


def _choice(value: Any, name: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ValueError(f"config field '{name}' must be one of {list(options)}, got {value!r}")
    return value


@dataclass(frozen=True)
class TaskConfig:
    """One classification task of the grid."""

    name: str
    dataset: str
    classes: tuple[int, ...]
    n_qubits: int = 4
    n_layers: int = 4
    epochs: int = 20
    idx_images: str | None = None
    idx_labels: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> TaskConfig:
        _check_keys(data, tuple(f.name for f in fields(cls)), where)
        for req in ("dataset", "classes"):
            if req not in data:
                raise ValueError(f"config field '{where}.{req}' is required")
        dataset = _choice(data["dataset"], f"{where}.dataset", DATASETS)
        classes = data["classes"]
        if (not isinstance(classes, list) or len(classes) < 2
                or any(isinstance(c, bool) or not isinstance(c, int) for c in classes)
                or len(set(classes)) != len(classes)):
            raise ValueError(f"config field '{where}.classes' must be a list of >= 2 distinct "
                             f"integer labels, got {classes!r}")
        n_qubits = _int(data.get("n_qubits", 4), f"{where}.n_qubits", 2)
        if n_qubits > 10:
            raise ValueError(f"config field '{where}.n_qubits' must be <= 10 (statevector "
                             f"simulation on CPU), got {n_qubits}")
        if len(classes) > n_qubits:
            raise ValueError(f"config field '{where}.classes' has {len(classes)} classes, more "
                             f"than n_qubits={n_qubits} readout qubits")
        name = data.get("name") or f"{dataset}-{'-'.join(str(c) for c in classes)}-n{n_qubits}"
        if not isinstance(name, str):
            raise ValueError(f"config field '{where}.name' must be a string")
        for key in ("idx_images", "idx_labels"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise ValueError(f"config field '{where}.{key}' must be a path string")
        if dataset == "idx" and (data.get("idx_images") is None or data.get("idx_labels") is None):
            raise ValueError(f"config fields '{where}.idx_images' and '{where}.idx_labels' are "
                             f"required for dataset 'idx'")
        return cls(name=name, dataset=dataset, classes=tuple(classes), n_qubits=n_qubits,
                   n_layers=_int(data.get("n_layers", 4), f"{where}.n_layers", 1),
                   epochs=_int(data.get("epochs", 20), f"{where}.epochs", 1),
                   idx_images=data.get("idx_images"), idx_labels=data.get("idx_labels"))


def default_tasks() -> tuple[TaskConfig, ...]:
    """The design's n = 4 grid (§6)."""
    return (
        TaskConfig("digits-01", "digits", (0, 1), epochs=20),
        TaskConfig("digits-0123", "digits", (0, 1, 2, 3), epochs=30),
        TaskConfig("mnist5k-01", "mnist5k", (0, 1), epochs=20),
        TaskConfig("mnist5k-36", "mnist5k", (3, 6), epochs=20),
        TaskConfig("mnist5k-0123", "mnist5k", (0, 1, 2, 3), epochs=30),
    )


@dataclass(frozen=True)
class ExperimentConfig:
    """Protocol shared by all tasks (design §1, §3, §4)."""

    tasks: tuple[TaskConfig, ...] = field(default_factory=default_tasks)
    seed: int = 0
    target: int = 0
    target_mode: str = "basis"
    poison_rates: tuple[float, ...] = (0.05, 0.10, 0.20, 0.30)
    trigger_feature: int = 0
    trigger_value: float = math.pi
    finetune_epochs: int = 1
    shots: int = 1024
    lr: float = 0.05
    batch_size: int = 64
    tau: float = 3.0
    axes: str = "Y"
    ansatz: str = "ryrz"
    features: str = "pca"
    test_size: float = 0.3

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ExperimentConfig:
        """Validate a parsed mapping; missing fields take the defaults."""
        data = {} if data is None else data
        _check_keys(data, tuple(f.name for f in fields(cls)), "<root>")
        kw: dict[str, Any] = {}
        if "tasks" in data:
            if not isinstance(data["tasks"], list) or not data["tasks"]:
                raise ValueError("config field 'tasks' must be a non-empty list")
            kw["tasks"] = tuple(TaskConfig.from_dict(t, f"tasks[{i}]")
                                for i, t in enumerate(data["tasks"]))
        for name in ("seed", "trigger_feature", "finetune_epochs"):
            if name in data:
                kw[name] = _int(data[name], name, 0)
        if "target" in data:
            kw["target"] = _int(data["target"], "target", 0)
        for name, low in (("shots", 0), ("batch_size", 1)):
            if name in data:
                kw[name] = _int(data[name], name, low)
        if "target_mode" in data:
            kw["target_mode"] = _choice(data["target_mode"], "target_mode", SELECTION_MODES)
        if "ansatz" in data:
            kw["ansatz"] = _choice(data["ansatz"], "ansatz", ANSATZ_KINDS)
        if "features" in data:
            kw["features"] = _choice(data["features"], "features", FEATURE_METHODS)
        if "axes" in data:
            axes = data["axes"]
            if not isinstance(axes, str) or not axes or any(a not in ROTATION_AXES for a in axes):
                raise ValueError(f"config field 'axes' must be a non-empty string over "
                                 f"{list(ROTATION_AXES)}, got {axes!r}")
            kw["axes"] = axes
        if "poison_rates" in data:
            rates = data["poison_rates"]
            if not isinstance(rates, list) or not rates:
                raise ValueError("config field 'poison_rates' must be a non-empty list")
            kw["poison_rates"] = tuple(_float(r, f"poison_rates[{i}]", 0.0, 1.0, low_open=True)
                                       for i, r in enumerate(rates))
        if "trigger_value" in data:
            kw["trigger_value"] = _float(data["trigger_value"], "trigger_value")
        if "lr" in data:
            kw["lr"] = _float(data["lr"], "lr", 0.0, low_open=True)
        if "tau" in data:
            kw["tau"] = _float(data["tau"], "tau", 0.0, low_open=True)
        if "test_size" in data:
            kw["test_size"] = _float(data["test_size"], "test_size", 0.0, 0.9, low_open=True)
        cfg = cls(**kw)
        for i, t in enumerate(cfg.tasks):
            if cfg.target >= len(t.classes):
                raise ValueError(f"config field 'target' ({cfg.target}) is an index into each "
                                 f"task's classes, but tasks[{i}] has {len(t.classes)} classes")
            if cfg.trigger_feature >= t.n_qubits * len(cfg.axes):
                raise ValueError(f"config field 'trigger_feature' ({cfg.trigger_feature}) is "
                                 f"out of range for tasks[{i}]")
        return cfg

    @classmethod
    def load(cls, path: str | Path) -> ExperimentConfig:
        """Read a YAML/JSON experiment config file."""
        try:
            data = yaml.safe_load(Path(path).read_text())
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML/JSON: {e}") from e
        return cls.from_dict(data)
