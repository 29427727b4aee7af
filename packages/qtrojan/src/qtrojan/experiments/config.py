"""Experiment configuration: the task grid and protocol of design qtrojan.md §1, §3, §6.

Each field is declared once, with its default and its check (a :class:`Check` stored in the
dataclass field's metadata); :func:`_from_mapping` walks the declarations, so adding a field
means adding one line. Every error names the offending field. The defaults below are the
design's n = 4 grid (digits {0,1}, {0-3}; MNIST-5k {0,1}, {3,6}, {0-3}), which the CLI runs
when no config file is given.

:func:`read_config` is the package's one way to read a config: a YAML (or JSON) file plus
``--set key=value`` overrides (dotted keys, list indices as numbers: ``tasks.0.epochs=3``),
with values parsed as YAML.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from qtrojan.attacks.qtrojan import SELECTION_MODES
from qtrojan.circuit import ANSATZ_KINDS, ROTATION_AXES
from qtrojan.data import DATASETS, FEATURE_METHODS

#: largest register the CLI accepts. The planned fast path never builds the 2^n x 2^n unitary
#: (at 16 qubits it would be 32 GiB); target selection above 12 qubits gets the margins of all
#: 2^n basis states exactly from the operator-Schmidt split of :mod:`qtrojan.bipartite`
#: (seconds to a minute at 16 qubits and 2-4 layers).
MAX_QUBITS = 16

Check = Callable[[Any, str], Any]


def _fail(name: str, what: str, value: Any) -> ValueError:
    return ValueError(f"config field '{name}' must be {what}, got {value!r}")


def integer(low: int | None = None, high: int | None = None) -> Check:
    """Check for an integer in ``[low, high]`` (booleans rejected)."""
    def check(value: Any, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(name, "an integer", value)
        if low is not None and value < low:
            raise _fail(name, f">= {low}", value)
        if high is not None and value > high:
            raise _fail(name, f"<= {high}", value)
        return value
    return check


def number(low: float | None = None, high: float | None = None,
           low_open: bool = False) -> Check:
    """Check for a finite number in ``[low, high]`` (``(low, high]`` when ``low_open``)."""
    def check(value: Any, name: str) -> float:
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value)):
            raise _fail(name, "a finite number", value)
        value = float(value)
        if low is not None and (value < low or (low_open and value == low)):
            raise _fail(name, f"{'>' if low_open else '>='} {low}", value)
        if high is not None and value > high:
            raise _fail(name, f"<= {high}", value)
        return value
    return check


def choice(options: Sequence[str]) -> Check:
    """Check for one of ``options``."""
    def check(value: Any, name: str) -> str:
        if value not in options:
            raise _fail(name, f"one of {list(options)}", value)
        return value
    return check


def optional_path() -> Check:
    """Check for ``None`` or a path string."""
    def check(value: Any, name: str) -> str | None:
        if value is not None and not isinstance(value, str):
            raise _fail(name, "a path string", value)
        return value
    return check


def text() -> Check:
    """Check for a string."""
    def check(value: Any, name: str) -> str:
        if not isinstance(value, str):
            raise _fail(name, "a string", value)
        return value
    return check


def axes_string() -> Check:
    """Check for a non-empty string over the rotation axes (the encoder's axes)."""
    def check(value: Any, name: str) -> str:
        if not isinstance(value, str) or not value or any(a not in ROTATION_AXES for a in value):
            raise _fail(name, f"a non-empty string over {list(ROTATION_AXES)}", value)
        return value
    return check


def seq(item: Check, min_len: int = 1, distinct: bool = False) -> Check:
    """Check for a list whose entries each pass ``item``; returned as a tuple."""
    def check(value: Any, name: str) -> tuple[Any, ...]:
        if not isinstance(value, (list, tuple)) or len(value) < min_len:
            raise _fail(name, f"a list of >= {min_len} entries", value)
        out = tuple(item(v, f"{name}[{i}]") for i, v in enumerate(value))
        if distinct and len(set(out)) != len(out):
            raise _fail(name, "a list of distinct entries", value)
        return out
    return check


def spec(default: Any = MISSING, check: Check | None = None, factory: Any = MISSING,
         doc: str = "") -> Any:
    """A dataclass field carrying its validation ``check`` and a one-line ``doc``."""
    meta = {"check": check, "doc": doc}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _from_mapping(cls: type, data: Any, where: str) -> dict[str, Any]:
    """Validate ``data`` against the declared fields of ``cls``; return constructor kwargs."""
    prefix = "" if where == "<root>" else f"{where}."
    if not isinstance(data, dict):
        raise ValueError(f"config field '{where}' must be a mapping")
    declared = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(declared))
    if unknown:
        raise ValueError(f"unknown config field(s) {unknown} in '{where}'; allowed: "
                         f"{list(declared)}")
    kw: dict[str, Any] = {}
    for name, f in declared.items():
        if name in data:
            kw[name] = f.metadata["check"](data[name], prefix + name)
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ValueError(f"config field '{prefix}{name}' is required")
    return kw


def _classes(value: Any, name: str) -> tuple[int, ...]:
    return seq(integer(), min_len=2, distinct=True)(value, name)


@dataclass(frozen=True)
class TaskConfig:
    """One classification task of the grid."""

    name: str = spec(check=text(), doc="label in the tables (default dataset-classes-n)")
    dataset: str = spec(check=choice(DATASETS), doc="digits, mnist5k or idx")
    classes: tuple[int, ...] = spec(check=_classes, doc=">= 2 distinct labels; target first")
    n_qubits: int = spec(4, integer(2, MAX_QUBITS), doc="register width (one feature each)")
    n_layers: int = spec(4, integer(1), doc="ansatz layers")
    epochs: int = spec(20, integer(1), doc="training epochs")
    idx_images: str | None = spec(None, optional_path(), doc="IDX images (dataset idx)")
    idx_labels: str | None = spec(None, optional_path(), doc="IDX labels (dataset idx)")

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> TaskConfig:
        """Validate one task mapping; ``where`` prefixes field names in errors."""
        if isinstance(data, dict) and data.get("name") is None:
            data = {**data, "name": ""}
        kw = _from_mapping(cls, data, where)
        if len(kw["classes"]) > kw.get("n_qubits", 4):
            raise ValueError(f"config field '{where}.classes' has {len(kw['classes'])} "
                             f"classes, more than n_qubits={kw.get('n_qubits', 4)} readout "
                             f"qubits")
        if kw["dataset"] == "idx" and (kw.get("idx_images") is None
                                       or kw.get("idx_labels") is None):
            raise ValueError(f"config fields '{where}.idx_images' and '{where}.idx_labels' are "
                             f"required for dataset 'idx'")
        task = cls(**kw)
        if not task.name:
            name = f"{task.dataset}-{'-'.join(map(str, task.classes))}-n{task.n_qubits}"
            task = cls(**{**kw, "name": name})
        return task


def default_tasks() -> tuple[TaskConfig, ...]:
    """The design's n = 4 grid (§6)."""
    return (
        TaskConfig("digits-01", "digits", (0, 1), epochs=20),
        TaskConfig("digits-0123", "digits", (0, 1, 2, 3), epochs=30),
        TaskConfig("mnist5k-01", "mnist5k", (0, 1), epochs=20),
        TaskConfig("mnist5k-36", "mnist5k", (3, 6), epochs=20),
        TaskConfig("mnist5k-0123", "mnist5k", (0, 1, 2, 3), epochs=30),
    )


def _tasks(value: Any, name: str) -> tuple[TaskConfig, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"config field '{name}' must be a non-empty list")
    return tuple(TaskConfig.from_dict(t, f"{name}[{i}]") for i, t in enumerate(value))


_RATE = number(0.0, 1.0, low_open=True)


@dataclass(frozen=True)
class ExperimentConfig:
    """Protocol shared by all tasks (design §1, §3, §4) and the fair DPBA comparison."""

    tasks: tuple[TaskConfig, ...] = spec(check=_tasks, factory=default_tasks,
                                         doc="the task grid")
    seed: int = spec(0, integer(0), doc="data split, init, shuffling and poisoning seed")
    target: int = spec(0, integer(0), doc="index into each task's class list")
    target_mode: str = spec("basis", choice(SELECTION_MODES), doc="QTrojan target search")
    poison_rates: tuple[float, ...] = spec((0.05, 0.10, 0.20, 0.30), seq(_RATE),
                                           doc="DPBA poisoning rates of the grid and sweep")
    trigger_feature: int = spec(0, integer(0), doc="DPBA trigger of the grid: feature ...")
    trigger_value: float = spec(math.pi, number(), doc="... set to this angle")
    finetune_epochs: int = spec(1, integer(0), doc="clean fine-tuning epochs (ASR_ft)")
    shots: int = spec(1024, integer(0), doc="finite-shot readout (0 = skip)")
    lr: float = spec(0.05, number(0.0, low_open=True), doc="Adam learning rate")
    batch_size: int = spec(64, integer(1), doc="minibatch size")
    tau: float = spec(3.0, number(0.0, low_open=True), doc="logit scale")
    axes: str = spec("Y", axes_string(), doc="encoding axes")
    ansatz: str = spec("ryrz", choice(ANSATZ_KINDS), doc="ansatz kind")
    features: str = spec("pca", choice(FEATURE_METHODS), doc="pca or pool")
    test_size: float = spec(0.3, number(0.0, 0.9, low_open=True), doc="test fraction")
    # --- the fair comparison (issue 21): selection on validation, several seeds ---
    compare: bool = spec(True, lambda v, n: _bool(v, n), doc="run the fair DPBA comparison")
    seeds: int = spec(5, integer(2), doc="evaluation seeds of the comparison")
    val_size: float = spec(0.2, number(0.0, 0.5, low_open=True),
                           doc="validation fraction carved from the training split")
    fixed_rate: float = spec(0.10, _RATE, doc="poisoning rate fixed in advance")
    trigger_values: tuple[float, ...] = spec((0.0, math.pi), seq(number()),
                                             doc="trigger values swept (every feature)")
    cda_tolerance: float = spec(0.05, number(0.0, 1.0),
                                doc="max validation CDA loss an attacker accepts")
    implanted_max_clean_asr: float = spec(0.2, number(0.0, 1.0),
                                          doc="an 'implanted' trigger moves at most this share "
                                          "of the unpoisoned model's validation inputs")
    jobs: int = spec(1, integer(1, 64), doc="worker processes (fork) for the comparison's "
                     "models; the results do not depend on it")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ExperimentConfig:
        """Validate a parsed mapping; missing fields take the defaults."""
        cfg = cls(**_from_mapping(cls, {} if data is None else data, "<root>"))
        for i, t in enumerate(cfg.tasks):
            if cfg.target >= len(t.classes):
                raise ValueError(f"config field 'target' ({cfg.target}) is an index into each "
                                 f"task's classes, but tasks[{i}] has {len(t.classes)} classes")
            if cfg.trigger_feature >= t.n_qubits * len(cfg.axes):
                raise ValueError(f"config field 'trigger_feature' ({cfg.trigger_feature}) is "
                                 f"out of range for tasks[{i}]")
        return cfg

    @classmethod
    def load(cls, path: str | Path | None, overrides: Sequence[str] = ()) -> ExperimentConfig:
        """Read a YAML/JSON experiment config file (or the defaults) plus ``--set`` overrides."""
        return cls.from_dict(read_config(path, overrides))


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(name, "true or false", value)
    return value


def _parse_override(item: str) -> tuple[list[str], Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"override {item!r} must look like key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ValueError(f"override {item!r}: value is not valid YAML: {e}") from e
    return key.strip().split("."), value


def _set_path(data: dict[str, Any], keys: list[str], value: Any, item: str) -> None:
    node: Any = data
    for i, k in enumerate(keys):
        last = i == len(keys) - 1
        if isinstance(node, list):
            if not k.isdigit() or int(k) >= len(node):
                raise ValueError(f"override {item!r}: '{k}' is not an index of a "
                                 f"{len(node)}-entry list")
            if last:
                node[int(k)] = value
            else:
                node = node[int(k)]
        elif isinstance(node, dict):
            if last:
                node[k] = value
            else:
                node = node.setdefault(k, {})
        else:
            raise ValueError(f"override {item!r}: '{'.'.join(keys[:i])}' is not a mapping")


def read_config(path: str | Path | None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The raw config mapping: a YAML/JSON file (``None``: empty) with overrides applied.

    An override ``tasks.0.epochs=3`` sets a nested entry; overriding a field of ``tasks`` when
    the file has none starts from the built-in task grid.
    """
    data: Any = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text())
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML/JSON: {e}") from e
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise ValueError(f"{path}: the top level must be a mapping of config fields")
    for item in overrides:
        keys, value = _parse_override(item)
        if keys[0] == "tasks" and len(keys) > 1 and "tasks" not in data:
            data["tasks"] = [_task_dict(t) for t in default_tasks()]
        _set_path(data, keys, value, item)
    return data


def _task_dict(task: TaskConfig) -> dict[str, Any]:
    out = {f.name: getattr(task, f.name) for f in fields(task)}
    out["classes"] = list(task.classes)
    return out
