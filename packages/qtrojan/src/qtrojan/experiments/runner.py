"""Runs clean / QTrojan / DPBA on every task of an :class:`ExperimentConfig` (design §6).

For each task: train the clean victim; compile it with the QTrojan configuration disabled (CDA,
bit-exact transparency) and enabled (ASR, exact and finite-shot); train one DPBA model per
poisoning rate with the same protocol and seed (CDA, ASR) and fine-tune it on clean data
(ASR after fine-tuning, the paper's "erased by retraining" objection). The victim is also
fine-tuned and the QTrojan state re-selected, to show the backdoor survives retraining (L5).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch

from qtrojan.attacks import dpba
from qtrojan.attacks.qtrojan import build_config, deploy, select_target_state
from qtrojan.circuit import Circuit
from qtrojan.data import TaskData, load_images, prepare_task
from qtrojan.experiments.config import ExperimentConfig, TaskConfig
from qtrojan.metrics import accuracy, attack_success_rate
from qtrojan.qnn import QNN
from qtrojan.training import train

Record = dict[str, Any]


def load_task_data(task: TaskConfig, cfg: ExperimentConfig) -> TaskData:
    """Features for one task following the config's pipeline."""
    images, labels = load_images(task.dataset, task.idx_images, task.idx_labels)
    return prepare_task(images, labels, task.classes, task.n_qubits * len(cfg.axes),
                        method=cfg.features, test_size=cfg.test_size, seed=cfg.seed)


def _new_model(task: TaskConfig, cfg: ExperimentConfig) -> QNN:
    return QNN(task.n_qubits, task.n_layers, len(task.classes), axes=cfg.axes,
               ansatz=cfg.ansatz, tau=cfg.tau, seed=cfg.seed)


def _fit(model: QNN, x: torch.Tensor, y: torch.Tensor, epochs: int, cfg: ExperimentConfig
         ) -> float:
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


def run_task(task: TaskConfig, cfg: ExperimentConfig,
             log: Callable[[str], None] = lambda s: None) -> list[Record]:
    """All records (clean, qtrojan, one dpba per rate) for one task."""
    data = load_task_data(task, cfg)
    t = cfg.target
    trig = dpba.Trigger(cfg.trigger_feature, cfg.trigger_value)
    gen = torch.Generator().manual_seed(cfg.seed)
    base: Record = {"task": task.name, "dataset": task.dataset, "classes": list(task.classes),
                    "n_qubits": task.n_qubits, "n_layers": task.n_layers,
                    "target": t, "target_label": task.classes[t],
                    "n_train": int(data.y_train.shape[0]), "n_test": int(data.y_test.shape[0])}
    x_all_trig = trig.stamp(data.x_test)

    clean = _new_model(task, cfg)
    secs = _fit(clean, data.x_train, data.y_train, task.epochs, cfg)
    clean_logits = clean(data.x_test).detach()
    cda_clean = accuracy(clean_logits.argmax(1), data.y_test)
    records = [{**base, "method": "clean", "poison_rate": 0.0, "cda": cda_clean,
                **_asr_pair(clean, x_all_trig, data.y_test, t),
                "asr_after_ft": None, "gate_overhead": 0, "depth_overhead": 0,
                "train_time_s": secs}]
    records[0]["asr"] = records[0]["asr_nontarget"]
    log(f"[{task.name}] clean: CDA {cda_clean:.3f} ({secs:.1f}s)")

    state = select_target_state(clean, t, cfg.target_mode)
    off_circuit, _ = deploy(clean, build_config(clean, state, enabled=False))
    on_circuit, report = deploy(clean, build_config(clean, state, enabled=True))
    off_logits = clean(data.x_test, off_circuit).detach()
    victim = copy.deepcopy(clean)
    _fit(victim, data.x_train, data.y_train, cfg.finetune_epochs, cfg)
    re_state = select_target_state(victim, t, cfg.target_mode)
    re_circuit, _ = deploy(victim, build_config(victim, re_state))
    qt = {**base, "method": "qtrojan", "poison_rate": 0.0,
          "cda": accuracy(off_logits.argmax(1), data.y_test),
          "transparent": bool(torch.equal(off_logits, clean_logits)),
          **_asr_pair(clean, data.x_test, data.y_test, t, on_circuit, cfg.shots, gen),
          "asr_after_ft": attack_success_rate(victim.predict(data.x_test, re_circuit), t,
                                              data.y_test, non_target_only=True),
          "gate_overhead": report.gate_overhead, "depth_overhead": report.depth_overhead,
          "target_state": "".join(map(str, state.bits)) if state.mode == "basis" else "opt",
          "margin": state.margin, "train_time_s": 0.0}
    qt["asr"] = qt["asr_nontarget"]
    records.append(qt)
    log(f"[{task.name}] qtrojan: CDA {qt['cda']:.3f} ASR {qt['asr']:.3f} "
        f"(shots {qt['asr_shots_nontarget']}, margin {state.margin:.3f}, "
        f"+{report.gate_overhead} gates)")

    x_trig, y_trig = dpba.triggered_test(data.x_test, data.y_test, t, trig)
    for r in cfg.poison_rates:
        ps = dpba.poison(data.x_train, data.y_train, r, t, trig, seed=cfg.seed)
        model = _new_model(task, cfg)
        secs = _fit(model, ps.x, ps.y, task.epochs, cfg)
        rec = {**base, "method": "dpba", "poison_rate": r, "n_poison": ps.n_poison,
               "cda": accuracy(model.predict(data.x_test), data.y_test),
               **_asr_pair(model, x_all_trig, data.y_test, t, None, cfg.shots, gen),
               "gate_overhead": 0, "depth_overhead": 0, "train_time_s": secs}
        rec["asr"] = attack_success_rate(model.predict(x_trig), t)
        _fit(model, data.x_train, data.y_train, cfg.finetune_epochs, cfg)
        rec["asr_after_ft"] = attack_success_rate(model.predict(x_trig), t)
        records.append(rec)
        log(f"[{task.name}] dpba r={r:.2f}: CDA {rec['cda']:.3f} ASR {rec['asr']:.3f} "
            f"(after {cfg.finetune_epochs} clean epoch(s): {rec['asr_after_ft']:.3f})")
    return records


def run_experiment(cfg: ExperimentConfig, log: Callable[[str], None] = lambda s: None
                   ) -> list[Record]:
    """Records for every task in the config, in order."""
    torch.set_num_threads(1)
    records: list[Record] = []
    for task in cfg.tasks:
        records.extend(run_task(task, cfg, log))
    return records
