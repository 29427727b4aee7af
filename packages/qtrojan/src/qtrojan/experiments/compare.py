"""The fair QTrojan-vs-DPBA comparison (issue 21): DPBA at its strongest, chosen on validation.

Why: the design's DPBA trigger (``x_0 := pi``) sets PCA feature 0 to a value that is typical of
the non-target classes, so the baseline is weak by construction, and picking the "strongest"
rate by test ASR leaks the test split into the choice. Protocol, per task:

1. **Selection (validation only).** A stratified validation part (``val_size``) is carved from
   the training split; the test split is not read. On the rest, DPBA models are trained for
   every trigger (each input feature × each of ``trigger_values``) and every poisoning rate in
   ``poison_rates ∪ {fixed_rate}``, with the selection seed ``seed``. An attacker keeps the
   models whose validation CDA is within ``cda_tolerance`` of the clean model's (stealth), and
   among them takes the highest validation ASR (ties: higher CDA, then lower rate). This gives
   three choices: the best trigger at the rate fixed in advance (``fixed_rate``), the best
   (trigger, rate) over the sweep, and the best over the sweep among *implanted* triggers, those
   the unpoisoned validation model maps to the target for at most
   ``implanted_max_clean_asr`` of the non-target samples (a trigger value typical of the target
   class is a natural feature, not a backdoor).
2. **Evaluation (test split, ``seeds`` seeds).** With each seed (init, shuffling, poisoned
   samples) the clean victim, QTrojan on it, and four DPBA settings are trained on the whole
   training split and evaluated on the test split: the design's original setting
   (``trigger_feature``, ``trigger_value`` at ``fixed_rate``) and the three validation choices.
   ΔCDA and ΔASR (QTrojan − DPBA) are paired by seed and reported as a mean with a Student-t
   95 % interval.
3. **Persistence.** QTrojan's ASR is also measured with its *original* trojan config (state
   chosen from the deployed weights) compiled onto the victim after ``finetune_epochs`` of clean
   fine-tuning, and onto a victim retrained from scratch with another seed; DPBA's after the
   same fine-tuning.

The last column, the ASR of each DPBA trigger on the *unpoisoned* victim, separates what the
poisoning implants from what the trigger value does by itself: a value typical of the target
class (for example ``x_0 := 0`` where the target's PCA feature 0 is small) moves clean inputs to
the target without any poisoning.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import json
import multiprocessing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

from qtrojan.attacks import dpba
from qtrojan.attacks.qtrojan import build_config, deploy, select_target_state
from qtrojan.data import TaskData, carve_validation
from qtrojan.experiments.config import ExperimentConfig, TaskConfig
from qtrojan.experiments.runner import RETRAIN_SEED_OFFSET, fit, load_task_data, new_model
from qtrojan.metrics import accuracy, attack_success_rate
from qtrojan.qnn import QNN
from qtrojan.stats import Interval, t_interval

#: the DPBA settings, in table order
SETTINGS = ("original", "best_at_fixed_rate", "best_over_sweep", "best_implanted")


@dataclass(frozen=True)
class Candidate:
    """One DPBA setting tried during selection, with its validation metrics."""

    feature: int
    value: float
    rate: float
    val_cda: float = float("nan")
    val_asr: float = float("nan")
    clean_val_asr: float = float("nan")  # the trigger's ASR on the UNPOISONED validation model

    @property
    def trigger(self) -> dpba.Trigger:
        return dpba.Trigger(self.feature, self.value)

    def label(self) -> str:
        return f"x{self.feature}:={self.value:.3g}, r={self.rate:g}"


@dataclass(frozen=True)
class Selection:
    """The validation sweep of one task and the two choices made from it."""

    clean_val_cda: float
    candidates: tuple[Candidate, ...]
    best_at_fixed_rate: Candidate
    best_over_sweep: Candidate
    best_implanted: Candidate


def _rank(c: Candidate, floor: float) -> tuple[bool, float, float, float]:
    return (c.val_cda >= floor, c.val_asr, c.val_cda, -c.rate)


def choose(candidates: tuple[Candidate, ...], clean_val_cda: float, tolerance: float
           ) -> Candidate:
    """The stealthy candidate with the highest validation ASR (see module docstring)."""
    if not candidates:
        raise ValueError("no DPBA candidates to choose from")
    return max(candidates, key=lambda c: _rank(c, clean_val_cda - tolerance))


def _val_asr(model: QNN, x: Any, y: Any, target: int, trig: dpba.Trigger) -> float:
    x_trig, _ = dpba.triggered_test(x, y, target, trig)
    return attack_success_rate(model.predict(x_trig), target)


_T = TypeVar("_T")
_R = TypeVar("_R")


def _one_thread() -> None:
    torch.set_num_threads(1)


def parallel_map(fn: Callable[[_T], _R], items: Sequence[_T], jobs: int) -> list[_R]:
    """``[fn(i) for i in items]``, in ``jobs`` forked worker processes when ``jobs > 1``.

    Every model is trained from its own seeds, so the results equal the sequential ones (tested);
    the pool's context manager terminates the workers on every exit path.
    """
    if jobs <= 1 or len(items) <= 1:
        return [fn(i) for i in items]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(min(jobs, len(items)), initializer=_one_thread) as pool:
        return pool.map(fn, items, chunksize=1)


def _fit_candidate(setup: tuple[TaskConfig, ExperimentConfig, Any, Any, Any, Any,
                                dict[tuple[int, float], float]],
                   trial: tuple[tuple[int, float], float]) -> Candidate:
    """Train and score one DPBA (trigger, rate) on the fit/validation parts."""
    task, cfg, x_fit, y_fit, x_val, y_val, natural = setup
    (feature, value), rate = trial
    trig = dpba.Trigger(feature, value)
    ps = dpba.poison(x_fit, y_fit, rate, cfg.target, trig, seed=cfg.seed)
    model = new_model(task, cfg)
    fit(model, ps.x, ps.y, task.epochs, cfg)
    return Candidate(feature, value, rate, accuracy(model.predict(x_val), y_val),
                     _val_asr(model, x_val, y_val, cfg.target, trig), natural[(feature, value)])


def select_dpba(data: TaskData, task: TaskConfig, cfg: ExperimentConfig,
                log: Callable[[str], None] = lambda s: None) -> Selection:
    """Sweep triggers and rates on a validation part of the training split only."""
    x_fit, y_fit, x_val, y_val = carve_validation(data.x_train, data.y_train, cfg.val_size,
                                                  cfg.seed)
    t = cfg.target
    clean = new_model(task, cfg)
    fit(clean, x_fit, y_fit, task.epochs, cfg)
    clean_cda = accuracy(clean.predict(x_val), y_val)
    rates = sorted(set(cfg.poison_rates) | {cfg.fixed_rate})
    triggers = list(itertools.product(range(data.n_features), cfg.trigger_values))
    if (cfg.trigger_feature, cfg.trigger_value) not in triggers:
        triggers.append((cfg.trigger_feature, cfg.trigger_value))
    natural = {trig: _val_asr(clean, x_val, y_val, t, dpba.Trigger(*trig)) for trig in triggers}
    setup = (task, cfg, x_fit, y_fit, x_val, y_val, natural)
    cands_t = tuple(parallel_map(functools.partial(_fit_candidate, setup),
                                 list(itertools.product(triggers, rates)), cfg.jobs))
    at_fixed = tuple(c for c in cands_t if c.rate == cfg.fixed_rate)
    implanted = tuple(c for c in cands_t if c.clean_val_asr <= cfg.implanted_max_clean_asr)
    sel = Selection(clean_cda, cands_t, choose(at_fixed, clean_cda, cfg.cda_tolerance),
                    choose(cands_t, clean_cda, cfg.cda_tolerance),
                    choose(implanted or cands_t, clean_cda, cfg.cda_tolerance))
    log(f"[{task.name}] selection on validation ({len(cands_t)} DPBA models, clean val CDA "
        f"{clean_cda:.3f}): at r={cfg.fixed_rate:g} {sel.best_at_fixed_rate.label()} "
        f"(val ASR {sel.best_at_fixed_rate.val_asr:.3f}); sweep {sel.best_over_sweep.label()} "
        f"(val ASR {sel.best_over_sweep.val_asr:.3f}); implanted "
        f"{sel.best_implanted.label()} (val ASR {sel.best_implanted.val_asr:.3f})")
    return sel


@dataclass(frozen=True)
class SeedResult:
    """Test-split results of one evaluation seed of one task."""

    seed: int
    clean_cda: float
    qt_cda: float
    qt_asr: float
    qt_asr_ft: float
    qt_asr_retrained: float
    dpba: dict[str, tuple[float, float, float]]  # setting -> (cda, asr, asr after ft)
    clean_asr: dict[str, float]  # setting -> ASR of its trigger on the UNPOISONED victim


def _qtrojan_on(model: QNN, config: Any, data: TaskData, target: int) -> float:
    circuit, _ = deploy(model, config)
    return attack_success_rate(model.predict(data.x_test, circuit), target, data.y_test,
                               non_target_only=True)


def _eval_dpba(task: TaskConfig, cfg: ExperimentConfig, data: TaskData, c: Candidate
               ) -> tuple[float, float, float]:
    t = cfg.target
    ps = dpba.poison(data.x_train, data.y_train, c.rate, t, c.trigger, seed=cfg.seed)
    model = new_model(task, cfg)
    fit(model, ps.x, ps.y, task.epochs, cfg)
    cda = accuracy(model.predict(data.x_test), data.y_test)
    asr = _val_asr(model, data.x_test, data.y_test, t, c.trigger)
    fit(model, data.x_train, data.y_train, cfg.finetune_epochs, cfg)
    return cda, asr, _val_asr(model, data.x_test, data.y_test, t, c.trigger)


def evaluate_seed(task: TaskConfig, cfg: ExperimentConfig, data: TaskData,
                  settings: dict[str, Candidate]) -> SeedResult:
    """Clean victim, QTrojan (with persistence) and every DPBA setting for ``cfg.seed``."""
    t = cfg.target
    clean = new_model(task, cfg)
    fit(clean, data.x_train, data.y_train, task.epochs, cfg)
    clean_cda = accuracy(clean.predict(data.x_test), data.y_test)
    state = select_target_state(clean, t, cfg.target_mode)
    off, _ = deploy(clean, build_config(clean, state, enabled=False))
    on_config = build_config(clean, state, enabled=True)
    tuned = copy.deepcopy(clean)
    fit(tuned, data.x_train, data.y_train, cfg.finetune_epochs, cfg)
    retrained = new_model(task, dataclasses.replace(cfg, seed=cfg.seed + RETRAIN_SEED_OFFSET))
    fit(retrained, data.x_train, data.y_train, task.epochs, cfg)
    done: dict[Candidate, tuple[float, float, float]] = {}
    out = {}
    for name, c in settings.items():
        key = dataclasses.replace(c, val_cda=0.0, val_asr=0.0, clean_val_asr=0.0)
        if key not in done:
            done[key] = _eval_dpba(task, cfg, data, c)
        out[name] = done[key]
    return SeedResult(cfg.seed, clean_cda, accuracy(clean.predict(data.x_test, off), data.y_test),
                      _qtrojan_on(clean, on_config, data, t),
                      _qtrojan_on(tuned, on_config, data, t),
                      _qtrojan_on(retrained, on_config, data, t), out,
                      {n: _val_asr(clean, data.x_test, data.y_test, t, c.trigger)
                       for n, c in settings.items()})


@dataclass(frozen=True)
class TaskComparison:
    """Selection and per-seed evaluation of one task."""

    task: str
    selection: Selection
    settings: dict[str, Candidate]
    seeds: tuple[SeedResult, ...]

    def deltas(self, setting: str) -> tuple[list[float], list[float]]:
        """Per-seed ΔCDA and ΔASR (QTrojan − DPBA ``setting``)."""
        return ([s.qt_cda - s.dpba[setting][0] for s in self.seeds],
                [s.qt_asr - s.dpba[setting][1] for s in self.seeds])


def compare_task(task: TaskConfig, cfg: ExperimentConfig,
                 log: Callable[[str], None] = lambda s: None) -> TaskComparison:
    """Selection on validation, then ``cfg.seeds`` evaluation seeds on the test split."""
    data = load_task_data(task, cfg)
    sel = select_dpba(data, task, cfg, log)
    settings = {"original": Candidate(cfg.trigger_feature, cfg.trigger_value, cfg.fixed_rate),
                "best_at_fixed_rate": sel.best_at_fixed_rate,
                "best_over_sweep": sel.best_over_sweep,
                "best_implanted": sel.best_implanted}
    seeds = parallel_map(functools.partial(_evaluate_seed_k, task, cfg, data, settings),
                         list(range(cfg.seeds)), cfg.jobs)
    for res in seeds:
        log(f"[{task.name}] seed {res.seed}: QTrojan CDA {res.qt_cda:.3f} ASR {res.qt_asr:.3f}; "
            + "; ".join(f"{n} CDA {v[0]:.3f} ASR {v[1]:.3f}" for n, v in res.dpba.items()))
    return TaskComparison(task.name, sel, settings, tuple(seeds))


def _evaluate_seed_k(task: TaskConfig, cfg: ExperimentConfig, data: TaskData,
                     settings: dict[str, Candidate], k: int) -> SeedResult:
    return evaluate_seed(task, dataclasses.replace(cfg, seed=cfg.seed + k), data, settings)


def run_comparison(cfg: ExperimentConfig, log: Callable[[str], None] = lambda s: None
                   ) -> list[TaskComparison]:
    """The fair comparison on every task of the config."""
    return [compare_task(task, cfg, log) for task in cfg.tasks]


def _iv(values: list[float]) -> Interval:
    return t_interval(values)


def summarize_comparison(results: list[TaskComparison]) -> dict[str, Any]:
    """Per task and overall (task-averaged per seed) means with 95 % t intervals."""
    out: dict[str, Any] = {"tasks": {}, "overall": {}}
    for r in results:
        entry: dict[str, Any] = {
            "qtrojan": {"cda": _iv([s.qt_cda for s in r.seeds]).to_dict(),
                        "asr": _iv([s.qt_asr for s in r.seeds]).to_dict(),
                        "asr_after_ft_original_config":
                            _iv([s.qt_asr_ft for s in r.seeds]).to_dict(),
                        "asr_retrained_original_config":
                            _iv([s.qt_asr_retrained for s in r.seeds]).to_dict()},
            "clean_cda": _iv([s.clean_cda for s in r.seeds]).to_dict(),
            "clean_val_cda": r.selection.clean_val_cda}
        for name in SETTINGS:
            dc, da = r.deltas(name)
            c = r.settings[name]
            entry[name] = {
                "trigger_feature": c.feature, "trigger_value": c.value, "rate": c.rate,
                "val_cda": c.val_cda, "val_asr": c.val_asr,
                "cda": _iv([s.dpba[name][0] for s in r.seeds]).to_dict(),
                "asr": _iv([s.dpba[name][1] for s in r.seeds]).to_dict(),
                "asr_after_ft": _iv([s.dpba[name][2] for s in r.seeds]).to_dict(),
                "asr_unpoisoned": _iv([s.clean_asr[name] for s in r.seeds]).to_dict(),
                "delta_cda": _iv(dc).to_dict(), "delta_asr": _iv(da).to_dict()}
        out["tasks"][r.task] = entry
    n_seeds = min(len(r.seeds) for r in results) if results else 0
    for name in SETTINGS:
        per_seed_c = [sum(r.deltas(name)[0][k] for r in results) / len(results)
                      for k in range(n_seeds)]
        per_seed_a = [sum(r.deltas(name)[1][k] for r in results) / len(results)
                      for k in range(n_seeds)]
        out["overall"][name] = {"delta_cda": _iv(per_seed_c).to_dict(),
                                "delta_asr": _iv(per_seed_a).to_dict()}
    return out


def _fmt(d: dict[str, float], pct: bool = False, signed: bool = False) -> str:
    return Interval(d["mean"], d["half_width"], int(d["n"])).format(pct, signed)


def format_comparison(summary: dict[str, Any]) -> str:
    """The comparison table: per task and setting, then the task-averaged deltas."""
    head = (f"{'task':<14} {'model':<20} {'trigger, rate':<22} {'CDA':>15} "
            f"{'ASR':>15} {'dCDA':>16} {'dASR':>17} {'trigger on clean':>16}")
    lines = ["Fair comparison: DPBA chosen on validation, test-split results over "
             "seeds (mean ± 95 % t interval)", head, "-" * len(head)]
    for task, e in summary["tasks"].items():
        q = e["qtrojan"]
        ft, rt = q["asr_after_ft_original_config"], q["asr_retrained_original_config"]
        lines.append(f"{task:<14} {'QTrojan':<20} {'':<22} {_fmt(q['cda']):>15} "
                     f"{_fmt(q['asr']):>15}   (original config: ASR after FT {_fmt(ft)}, "
                     f"retrained {_fmt(rt)})")
        for name in SETTINGS:
            s = e[name]
            trig = f"x{s['trigger_feature']}:={s['trigger_value']:.3g}, r={s['rate']:g}"
            lines.append(f"{'':<14} {name:<20} {trig:<22} {_fmt(s['cda']):>15} "
                         f"{_fmt(s['asr']):>15} {_fmt(s['delta_cda'], True, True):>16} "
                         f"{_fmt(s['delta_asr'], True, True):>17} "
                         f"{_fmt(s['asr_unpoisoned']):>16}")
    lines.append("")
    lines.append("QTrojan − DPBA averaged over tasks (interval over seeds):")
    for name in SETTINGS:
        o = summary["overall"][name]
        lines.append(f"  vs {name:<20} dCDA {_fmt(o['delta_cda'], True, True):>16}  "
                     f"dASR {_fmt(o['delta_asr'], True, True):>17}")
    return "\n".join(lines)


def comparison_markdown(summary: dict[str, Any]) -> str:
    """The comparison as Markdown tables (the README's headline is pasted from this)."""
    lines = ["| task | model | trigger, rate (chosen on validation) | CDA | ASR | ΔCDA | ΔASR | "
             "trigger's ASR on the unpoisoned victim | ASR after 1 clean epoch |",
             "|" + "---|" * 9]
    for task, e in summary["tasks"].items():
        q = e["qtrojan"]
        lines.append(f"| {task} | QTrojan | – | {_fmt(q['cda'])} | {_fmt(q['asr'])} | | | – | "
                     f"{_fmt(q['asr_after_ft_original_config'])} (original config) |")
        for name in SETTINGS:
            d = e[name]
            trig = f"x{d['trigger_feature']} := {d['trigger_value']:.3g}, r = {d['rate']:g}"
            lines.append(f"| | DPBA {name.replace('_', ' ')} | {trig} | {_fmt(d['cda'])} | "
                         f"{_fmt(d['asr'])} | {_fmt(d['delta_cda'], True, True)} | "
                         f"{_fmt(d['delta_asr'], True, True)} | {_fmt(d['asr_unpoisoned'])} | "
                         f"{_fmt(d['asr_after_ft'])} |")
    lines += ["", "| QTrojan − DPBA, averaged over tasks | ΔCDA | ΔASR |", "|---|---|---|"]
    for name in SETTINGS:
        o = summary["overall"][name]
        lines.append(f"| vs DPBA {name.replace('_', ' ')} | "
                     f"{_fmt(o['delta_cda'], True, True)} | {_fmt(o['delta_asr'], True, True)} |")
    return "\n".join(lines) + "\n"


def write_comparison(results: list[TaskComparison], summary: dict[str, Any],
                     out_dir: str | Path) -> Path:
    """``comparison.json``: the summary plus every validation candidate and seed result."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    detail = {r.task: {"candidates": [dataclasses.asdict(c) for c in r.selection.candidates],
                       "seeds": [dataclasses.asdict(s) for s in r.seeds]} for r in results}
    path = out / "comparison.json"
    path.write_text(json.dumps({"summary": summary, "detail": detail}, indent=2) + "\n")
    (out / "comparison.md").write_text(comparison_markdown(summary))
    return path
