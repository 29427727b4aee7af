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


# --- detection (issue 21): audit, identity stripping, output-spread probe; ROC on held-out ---

#: circuits of the detection study: the benign victim and four backdoored deployments
DETECTION_KINDS = ("benign", "qtrojan_on", "qtrojan_dormant_rx0", "qtrojan_dormant_omitted",
                   "dpba")
#: detectors (higher score = more suspicious)
DETECTORS = ("audit", "audit_after_strip", "output_spread")


def _deployments(task: TaskConfig, cfg: ExperimentConfig, data: TaskData,
                 setting: tuple[int, float, float]) -> dict[str, tuple[QNN, Circuit]]:
    """The five circuits of one (task, seed): ``(model, circuit the compiler produced)``."""
    t = cfg.target
    clean = new_model(task, cfg)
    fit(clean, data.x_train, data.y_train, task.epochs, cfg)
    state = select_target_state(clean, t, cfg.target_mode)
    feature, value, rate = setting
    ps = dpba.poison(data.x_train, data.y_train, rate, t, dpba.Trigger(feature, value),
                     seed=cfg.seed)
    poisoned = new_model(task, cfg)
    fit(poisoned, ps.x, ps.y, task.epochs, cfg)
    variants = (("qtrojan_on", True, False), ("qtrojan_dormant_rx0", False, False),
                ("qtrojan_dormant_omitted", False, True))
    compiled = {kind: deploy(clean, build_config(clean, state, enabled=on,
                                                 omit_when_disabled=omit))[0]
                for kind, on, omit in variants}
    return {"benign": (clean, clean.circuit), **{k: (clean, c) for k, c in compiled.items()},
            "dpba": (poisoned, poisoned.circuit)}


def detection_rows(cfg: ExperimentConfig, dpba_settings: dict[str, tuple[int, float, float]]
                   | None = None, log: Callable[[str], None] = lambda s: None
                   ) -> list[dict[str, Any]]:
    """One row per (task, seed, circuit kind) with every detector's score.

    The probe inputs of ``output_spread`` are the task's test split (held out from training);
    with ``cfg.shots`` > 0 the probe sees finite-shot estimates, as a black-box user would.
    """
    from qtrojan.detect import gate_audit, output_spread, strip_identities

    rows = []
    for task in cfg.tasks:
        setting = (dpba_settings or {}).get(
            task.name, (cfg.trigger_feature, cfg.trigger_value, cfg.fixed_rate))
        data = load_task_data(task, cfg)
        for k in range(cfg.seeds):
            seed_cfg = dataclasses.replace(cfg, seed=cfg.seed + k)
            gen = torch.Generator().manual_seed(seed_cfg.seed)
            for kind, (model, circuit) in _deployments(task, seed_cfg, data, setting).items():
                rows.append({
                    "task": task.name, "seed": seed_cfg.seed, "kind": kind,
                    "audit": float(gate_audit(model.circuit, circuit).score),
                    "audit_after_strip": float(gate_audit(
                        model.circuit, strip_identities(circuit)).score),
                    "output_spread": -output_spread(model, circuit, data.x_test, cfg.shots,
                                                    gen),
                    "asr_after_strip": _strip_asr(model, circuit, data, cfg.target)
                    if kind == "qtrojan_on" else None,
                })
            log(f"[{task.name}] detection seed {seed_cfg.seed} done")
    return rows


def _strip_asr(model: QNN, circuit: Circuit, data: TaskData, target: int) -> float:
    from qtrojan.detect import strip_identities

    return attack_success_rate(model.predict(data.x_test, strip_identities(circuit)), target,
                               data.y_test, non_target_only=True)


def summarize_detection(rows: list[dict[str, Any]], max_fpr: float = 0.05) -> dict[str, Any]:
    """Calibrate on the first half of the seeds, evaluate on the held-out second half.

    Per detector and backdoor kind: the threshold chosen on calibration benign circuits for a
    false positive rate <= ``max_fpr``, then on the held-out circuits the detection rate (TPR),
    the false positive rate, and the ROC curve with its AUC.
    """
    from qtrojan.detect import roc, threshold_at_fpr

    seeds = sorted({r["seed"] for r in rows})
    if len(seeds) < 2:
        raise ValueError("the detection study needs >= 2 seeds (calibration and held-out)")
    calib = set(seeds[: len(seeds) // 2])
    out: dict[str, Any] = {"max_fpr": max_fpr, "calibration_seeds": sorted(calib),
                           "held_out_seeds": [s for s in seeds if s not in calib],
                           "detectors": {}}
    for det in DETECTORS:
        cal_benign = [r[det] for r in rows if r["kind"] == "benign" and r["seed"] in calib]
        th = threshold_at_fpr(cal_benign, max_fpr)
        held = [r for r in rows if r["seed"] not in calib]
        benign = [r[det] for r in held if r["kind"] == "benign"]
        entry: dict[str, Any] = {"threshold": th,
                                 "held_out_fpr": sum(s >= th for s in benign) / len(benign),
                                 "kinds": {}}
        for kind in DETECTION_KINDS[1:]:
            attacked = [r[det] for r in held if r["kind"] == kind]
            curve = roc(benign, attacked)
            entry["kinds"][kind] = {"tpr": sum(s >= th for s in attacked) / len(attacked),
                                    "auc": curve.auc, "roc_fpr": list(curve.fpr),
                                    "roc_tpr": list(curve.tpr), "n": len(attacked)}
        out["detectors"][det] = entry
    strip = [r["asr_after_strip"] for r in rows if r["asr_after_strip"] is not None]
    out["qtrojan_on_asr_after_strip_min"] = min(strip) if strip else None
    return out


def format_detection(summary: dict[str, Any]) -> str:
    """Markdown table: detection rate at the calibrated threshold and AUC, held-out circuits."""
    kinds = DETECTION_KINDS[1:]
    lines = ["| detector | held-out FPR | " + " | ".join(f"{k}: TPR / AUC" for k in kinds)
             + " |", "|" + "---|" * (2 + len(kinds))]
    for det, e in summary["detectors"].items():
        cells = [f"{e['kinds'][k]['tpr']:.2f} / {e['kinds'][k]['auc']:.2f}" for k in kinds]
        lines.append(f"| {det} | {e['held_out_fpr']:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
