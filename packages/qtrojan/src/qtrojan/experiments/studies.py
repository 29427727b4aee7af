"""Studies beyond the paper's table: CDA/ASR under hardware noise (issue 21).

Why: the paper and the design evaluate on the exact statevector; a NISQ device adds gate and
readout errors, and a dormant QTrojan compiled as ``RX(0)`` gates (``omit_when_disabled =
false``) executes real gates that add error even while it is off.

Protocol per task and seed (``cfg.seed + k``, ``k < cfg.seeds``): the clean victim and one
DPBA model (the setting passed in, normally the validation-chosen one from ``comparison.json``)
are trained on the exact simulator, as a user would; then every model is *evaluated* on the
test split under each noise strength with the density-matrix path of :mod:`qtrojan.noise`,
with exact expectations and with ``cfg.shots`` shots. Depolarising and readout noise are
swept separately (the other at 0). Results are means with Student-t 95 % intervals over seeds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch

from qtrojan.attacks import dpba
from qtrojan.attacks.qtrojan import build_config, deploy, select_target_state
from qtrojan.circuit import Circuit
from qtrojan.data import TaskData
from qtrojan.experiments.config import ExperimentConfig, TaskConfig
from qtrojan.experiments.runner import fit, load_task_data, new_model
from qtrojan.metrics import accuracy, attack_success_rate
from qtrojan.noise import NoiseModel, noisy_expval_z, noisy_sampled_expval_z
from qtrojan.qnn import QNN
from qtrojan.stats import t_interval

#: the quantities measured at each noise strength (columns of the noise table)
NOISE_METRICS = ("clean_cda", "qt_off_cda", "qt_asr", "dpba_cda", "dpba_asr")


def _predict(model: QNN, circuit: Circuit, x: torch.Tensor, noise: NoiseModel, shots: int,
             gen: torch.Generator) -> torch.Tensor:
    wires = list(range(model.n_classes))
    w = model.weights.detach()
    if shots:
        ev = noisy_sampled_expval_z(circuit, x, w, noise, wires, shots, gen)
    else:
        with torch.no_grad():
            ev = noisy_expval_z(circuit, x, w, noise, wires)
    return ev.argmax(dim=1)


def _noise_point(models: dict[str, tuple[QNN, Circuit]], data: TaskData, trig: dpba.Trigger,
                 target: int, noise: NoiseModel, shots: int, gen: torch.Generator
                 ) -> dict[str, float]:
    x, y = data.x_test, data.y_test
    nt = y != target

    def pred(name: str, inputs: torch.Tensor) -> torch.Tensor:
        model, circuit = models[name]
        return _predict(model, circuit, inputs, noise, shots, gen)

    return {
        "clean_cda": accuracy(pred("clean", x), y),
        "qt_off_cda": accuracy(pred("qt_off", x), y),
        "qt_asr": attack_success_rate(pred("qt_on", x[nt]), target),
        "dpba_cda": accuracy(pred("dpba", x), y),
        "dpba_asr": attack_success_rate(pred("dpba", trig.stamp(x[nt])), target),
    }


def noise_seed(task: TaskConfig, cfg: ExperimentConfig, data: TaskData, trig: dpba.Trigger,
               rate: float, strengths: Sequence[NoiseModel]) -> list[dict[str, float]]:
    """One seed: train victim and DPBA model, evaluate each at every noise strength."""
    t = cfg.target
    clean = new_model(task, cfg)
    fit(clean, data.x_train, data.y_train, task.epochs, cfg)
    state = select_target_state(clean, t, cfg.target_mode)
    off, _ = deploy(clean, build_config(clean, state, enabled=False))  # RX(0) gates kept
    on, _ = deploy(clean, build_config(clean, state, enabled=True))
    ps = dpba.poison(data.x_train, data.y_train, rate, t, trig, seed=cfg.seed)
    poisoned = new_model(task, cfg)
    fit(poisoned, ps.x, ps.y, task.epochs, cfg)
    models = {"clean": (clean, clean.circuit), "qt_off": (clean, off), "qt_on": (clean, on),
              "dpba": (poisoned, poisoned.circuit)}
    gen = torch.Generator().manual_seed(cfg.seed)
    rows = []
    for noise in strengths:
        for shots in (0, cfg.shots) if cfg.shots else (0,):
            row = {"depolarizing": noise.depolarizing, "readout": noise.readout,
                   "shots": shots, "seed": cfg.seed}
            row.update(_noise_point(models, data, trig, t, noise, shots, gen))
            rows.append(row)
    return rows


def noise_study(cfg: ExperimentConfig, depolarizing: Sequence[float], readout: Sequence[float],
                dpba_settings: dict[str, tuple[int, float, float]] | None = None,
                log: Callable[[str], None] = lambda s: None) -> list[dict[str, Any]]:
    """Per-seed rows for every task; ``dpba_settings`` maps task -> (feature, value, rate)."""
    strengths = [NoiseModel(depolarizing=p) for p in depolarizing]
    strengths += [NoiseModel(readout=q) for q in readout if q > 0]
    rows: list[dict[str, Any]] = []
    for task in cfg.tasks:
        feature, value, rate = (dpba_settings or {}).get(
            task.name, (cfg.trigger_feature, cfg.trigger_value, cfg.fixed_rate))
        trig = dpba.Trigger(feature, value)
        data = load_task_data(task, cfg)
        for k in range(cfg.seeds):
            seed_cfg = dataclasses.replace(cfg, seed=cfg.seed + k)
            for row in noise_seed(task, seed_cfg, data, trig, rate, strengths):
                rows.append({"task": task.name, "dpba": f"x{feature}:={value:.3g}, r={rate:g}",
                             **row})
            log(f"[{task.name}] noise study seed {seed_cfg.seed} done")
    return rows


def summarize_noise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± t interval over seeds per (task, depolarizing, readout, shots)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["dpba"], r["depolarizing"], r["readout"], r["shots"]),
                          []).append(r)
    out = []
    for (task, setting, p, q, shots), rs in groups.items():
        entry: dict[str, Any] = {"task": task, "dpba": setting, "depolarizing": p,
                                 "readout": q, "shots": shots, "n_seeds": len(rs)}
        for m in NOISE_METRICS:
            vals = [r[m] for r in rs]
            entry[m] = t_interval(vals).to_dict() if len(vals) > 1 else \
                {"mean": vals[0], "half_width": float("nan"), "n": 1}
        out.append(entry)
    return out


def format_noise(summary: list[dict[str, Any]]) -> str:
    """Markdown table of the noise study (mean ± half-width of the 95 % t interval)."""
    head = ("| task | depolarising p | readout q | shots | clean CDA | QTrojan-off CDA (RX(0) "
            "kept) | QTrojan ASR | DPBA CDA | DPBA ASR |")
    lines = [head, "|" + "---|" * 9]
    for e in summary:
        cells = [f"{e[m]['mean']:.3f} ± {e[m]['half_width']:.3f}" for m in NOISE_METRICS]
        lines.append(f"| {e['task']} | {e['depolarizing']:g} | {e['readout']:g} | "
                     f"{e['shots'] or 'exact'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
