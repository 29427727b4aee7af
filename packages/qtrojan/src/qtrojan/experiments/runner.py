"""Runs clean / QTrojan / DPBA on every task of an :class:`ExperimentConfig` (design §6).

For each task: train the clean victim; compile it with the QTrojan configuration disabled (CDA,
bit-exact transparency) and enabled (ASR, exact and finite-shot); train one DPBA model per
poisoning rate with the same protocol and seed (CDA, ASR) and fine-tune it on clean data
(ASR after fine-tuning, the paper's "erased by retraining" objection). The victim is also
fine-tuned, and retrained from scratch with another seed, and the ORIGINAL QTrojan config (state
chosen from the deployed weights) is compiled onto both: an honest persistence measurement.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from qtrojan.attacks import dpba
from qtrojan.attacks.qtrojan import build_config, deploy, select_target_state
from qtrojan.circuit import Circuit
from qtrojan.compiler import WrapConfig
from qtrojan.data import TaskData, load_images, prepare_task
from qtrojan.experiments.config import ExperimentConfig, TaskConfig
from qtrojan.experiments.records import Record, TaskInfo
from qtrojan.metrics import accuracy, attack_success_rate
from qtrojan.qnn import QNN
from qtrojan.training import train

#: seed offset of the victim retrained from scratch (persistence of the original config)
RETRAIN_SEED_OFFSET = 10_000


def load_task_data(task: TaskConfig, cfg: ExperimentConfig) -> TaskData:
    """Features for one task following the config's pipeline."""
    images, labels = load_images(task.dataset, task.idx_images, task.idx_labels)
    return prepare_task(images, labels, task.classes, task.n_qubits * len(cfg.axes),
                        method=cfg.features, test_size=cfg.test_size, seed=cfg.seed)


def new_model(task: TaskConfig, cfg: ExperimentConfig) -> QNN:
    """A fresh victim for the task, initialised from ``cfg.seed``."""
    return QNN(task.n_qubits, task.n_layers, len(task.classes), axes=cfg.axes,
               ansatz=cfg.ansatz, tau=cfg.tau, seed=cfg.seed)


def fit(model: QNN, x: torch.Tensor, y: torch.Tensor, epochs: int, cfg: ExperimentConfig
         ) -> float:
    """Train in place with the config's protocol and seed; returns the wall time."""
    return train(model, x, y, epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                 seed=cfg.seed).seconds


def _asr_pair(model: QNN, x: torch.Tensor, y: torch.Tensor, target: int,
              circuit: Circuit | None = None, shots: int = 0,
              generator: torch.Generator | None = None) -> dict[str, float | None]:
    """ASR over all rows and over non-target rows, exact and (if shots) sampled."""
    pred = model.predict(x, circuit)
    out: dict[str, float | None] = {
        "asr_all": attack_success_rate(pred, target),
        "asr_nontarget": attack_success_rate(pred, target, y, non_target_only=True),
        "asr_shots_all": None, "asr_shots_nontarget": None,
    }
    if shots and generator is not None:
        sp = model.sampled_logits(x, shots, generator, circuit).argmax(dim=1)
        out["asr_shots_all"] = attack_success_rate(sp, target)
        out["asr_shots_nontarget"] = attack_success_rate(sp, target, y, non_target_only=True)
    return out


def _task_info(task: TaskConfig, cfg: ExperimentConfig, data: TaskData) -> TaskInfo:
    return TaskInfo(task.name, task.dataset, tuple(task.classes), task.n_qubits, task.n_layers,
                    cfg.target, task.classes[cfg.target], int(data.y_train.shape[0]),
                    int(data.y_test.shape[0]))


def _clean_record(info: TaskInfo, clean: QNN, data: TaskData, trig: dpba.Trigger, secs: float,
                  cfg: ExperimentConfig) -> Record:
    """The unpoisoned victim; its ASR is the DPBA trigger applied to it."""
    pairs = _asr_pair(clean, trig.stamp(data.x_test), data.y_test, cfg.target)
    return Record(info, "clean", 0.0, accuracy(clean.predict(data.x_test), data.y_test),
                  asr=pairs["asr_nontarget"], train_time_s=secs, **pairs)


def _nontarget_asr(model: QNN, config: WrapConfig, data: TaskData, target: int) -> float:
    circuit, _ = deploy(model, config)
    return attack_success_rate(model.predict(data.x_test, circuit), target, data.y_test,
                               non_target_only=True)


def _qtrojan_record(info: TaskInfo, task: TaskConfig, clean: QNN, data: TaskData,
                    cfg: ExperimentConfig, gen: torch.Generator) -> Record:
    """The victim compiled with the QTrojan config, disabled (CDA) and enabled (ASR)."""
    t = cfg.target
    state = select_target_state(clean, t, cfg.target_mode)
    off_circuit, _ = deploy(clean, build_config(clean, state, enabled=False))
    on_circuit, report = deploy(clean, build_config(clean, state, enabled=True))
    off_logits = clean(data.x_test, off_circuit).detach()
    # persistence, measured with the ORIGINAL trojan config (state chosen from the deployed
    # weights): after clean fine-tuning, and on a victim retrained from scratch (another seed)
    on_config = build_config(clean, state, enabled=True)
    tuned = copy.deepcopy(clean)
    fit(tuned, data.x_train, data.y_train, cfg.finetune_epochs, cfg)
    retrained = new_model(task, dataclasses.replace(cfg, seed=cfg.seed + RETRAIN_SEED_OFFSET))
    fit(retrained, data.x_train, data.y_train, task.epochs, cfg)
    pairs = _asr_pair(clean, data.x_test, data.y_test, t, on_circuit, cfg.shots, gen)
    return Record(
        info, "qtrojan", 0.0, accuracy(off_logits.argmax(1), data.y_test),
        asr=pairs["asr_nontarget"],
        transparent=bool(torch.equal(off_logits, clean(data.x_test).detach())),
        asr_after_ft=_nontarget_asr(tuned, on_config, data, t),
        asr_retrained=_nontarget_asr(retrained, on_config, data, t),
        gate_overhead=report.gate_overhead, depth_overhead=report.depth_overhead,
        target_state="".join(map(str, state.bits)) if state.mode == "basis" else "opt",
        margin=state.margin, **pairs)


def _dpba_record(info: TaskInfo, task: TaskConfig, data: TaskData, rate: float,
                 trig: dpba.Trigger, cfg: ExperimentConfig, gen: torch.Generator) -> Record:
    """One poisoned model at ``rate``, before and after clean fine-tuning."""
    t = cfg.target
    x_trig, _ = dpba.triggered_test(data.x_test, data.y_test, t, trig)
    ps = dpba.poison(data.x_train, data.y_train, rate, t, trig, seed=cfg.seed)
    model = new_model(task, cfg)
    secs = fit(model, ps.x, ps.y, task.epochs, cfg)
    cda = accuracy(model.predict(data.x_test), data.y_test)
    pairs = _asr_pair(model, trig.stamp(data.x_test), data.y_test, t, None, cfg.shots, gen)
    asr = attack_success_rate(model.predict(x_trig), t)
    fit(model, data.x_train, data.y_train, cfg.finetune_epochs, cfg)
    return Record(info, "dpba", rate, cda, asr=asr,
                  asr_after_ft=attack_success_rate(model.predict(x_trig), t),
                  train_time_s=secs, n_poison=ps.n_poison, **pairs)


def run_task(task: TaskConfig, cfg: ExperimentConfig,
             log: Callable[[str], None] = lambda s: None) -> list[Record]:
    """All records (clean, qtrojan, one dpba per rate) for one task."""
    data = load_task_data(task, cfg)
    trig = dpba.Trigger(cfg.trigger_feature, cfg.trigger_value)
    gen = torch.Generator().manual_seed(cfg.seed)
    info = _task_info(task, cfg, data)

    clean = new_model(task, cfg)
    secs = fit(clean, data.x_train, data.y_train, task.epochs, cfg)
    records = [_clean_record(info, clean, data, trig, secs, cfg)]
    log(f"[{task.name}] clean: CDA {records[0].cda:.3f} ({secs:.1f}s)")
    qt = _qtrojan_record(info, task, clean, data, cfg, gen)
    records.append(qt)
    log(f"[{task.name}] qtrojan: CDA {qt.cda:.3f} ASR {qt.asr:.3f} "
        f"(shots {qt.asr_shots_nontarget}, margin {qt.margin:.3f}, +{qt.gate_overhead} gates)")
    for r in cfg.poison_rates:
        rec = _dpba_record(info, task, data, r, trig, cfg, gen)
        records.append(rec)
        log(f"[{task.name}] dpba r={r:.2f}: CDA {rec.cda:.3f} ASR {rec.asr:.3f} "
            f"(after {cfg.finetune_epochs} clean epoch(s): {rec.asr_after_ft:.3f})")
    return records


def run_experiment(cfg: ExperimentConfig, log: Callable[[str], None] = lambda s: None
                   ) -> list[Record]:
    """Records for every task in the config, in order."""
    torch.set_num_threads(1)
    records: list[Record] = []
    for task in cfg.tasks:
        records.extend(run_task(task, cfg, log))
    return records


#: file names ``qtrojan attack`` writes into its output directory
VICTIM_FILE = "victim.json"
CALIBRATION_FILE = "backend_calibration.json"
ATTACK_FILE = "attack.json"


def find_task(cfg: ExperimentConfig, name: str | None) -> TaskConfig:
    """The task called ``name`` (the first task when ``None``); names the choices if absent."""
    if name is None:
        return cfg.tasks[0]
    for task in cfg.tasks:
        if task.name == name:
            return task
    raise ValueError(f"no task {name!r} in the config; tasks: {[t.name for t in cfg.tasks]}")


def attack_to_dir(task: TaskConfig, cfg: ExperimentConfig, out_dir: str | Path,
                  enabled: bool = False, omit_when_disabled: bool = False,
                  model_path: str | Path | None = None) -> dict[str, Any]:
    """Train (or load) the victim, plant the QTrojan config, and write both to ``out_dir``.

    What the attacker leaves behind: ``victim.json`` (the deployed model), the compiler config
    ``backend_calibration.json`` (dormant unless ``enabled``; ``qtrojan switch`` toggles it) and
    ``attack.json`` with the chosen state and the CDA/ASR measured on the task's test split.
    """
    data = load_task_data(task, cfg)
    if model_path is None:
        model = new_model(task, cfg)
        fit(model, data.x_train, data.y_train, task.epochs, cfg)
    else:
        model = QNN.load(model_path)
        if model.n_features != data.n_features or model.n_classes != len(task.classes):
            raise ValueError(f"model {model_path} reads {model.n_features} features and has "
                             f"{model.n_classes} classes; task {task.name} has "
                             f"{data.n_features} and {len(task.classes)}")
    t = cfg.target
    state = select_target_state(model, t, cfg.target_mode)
    config = build_config(model, state, enabled=enabled, omit_when_disabled=omit_when_disabled)
    on, report = deploy(model, dataclasses.replace(config, enabled=True))
    off, _ = deploy(model, dataclasses.replace(config, enabled=False))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / VICTIM_FILE)
    config.save(out / CALIBRATION_FILE)
    summary = {
        "task": task.name, "target": t, "target_label": task.classes[t],
        "state_mode": state.mode, "state_bits": list(state.bits), "margin": state.margin,
        "enabled": enabled, "omit_when_disabled": omit_when_disabled,
        "gates_added_when_on": report.gate_overhead, "depth_added_when_on":
            report.depth_overhead,
        "cda_clean": accuracy(model.predict(data.x_test), data.y_test),
        "cda_config_off": accuracy(model.predict(data.x_test, off), data.y_test),
        "asr_config_on": attack_success_rate(model.predict(data.x_test, on), t, data.y_test,
                                             non_target_only=True),
    }
    (out / ATTACK_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary
