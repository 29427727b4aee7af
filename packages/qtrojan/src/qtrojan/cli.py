"""Command line: ``qtrojan run``, ``attack``, ``switch``, ``export`` (see ``--help`` of each).

``attack`` trains (or loads) a victim and plants the QTrojan compiler config, ``switch`` turns
that config on or off, and ``export`` writes the clean and trojaned circuits for other tools.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    import torch

    from qtrojan.experiments.config import ExperimentConfig
    from qtrojan.experiments.report import format_table, plot_tradeoff, summarize, write_results
    from qtrojan.experiments.runner import run_experiment

    torch.set_num_threads(1)
    try:
        cfg = ExperimentConfig.load(args.config, args.set)
    except (OSError, ValueError) as e:
        print(f"qtrojan: invalid config: {e}", file=sys.stderr)
        return 2
    if args.comparison_only and not cfg.compare:
        print("qtrojan: --comparison-only needs config field 'compare' = true", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    log = (lambda s: None) if args.quiet else (lambda s: print(s, flush=True))
    if not args.comparison_only:
        records = run_experiment(cfg, log)
        summary = summarize(records)
        summary["wall_time_s"] = time.perf_counter() - t0
        paths = write_results(records, summary, args.out)
        plot = plot_tradeoff(records, Path(args.out) / "tradeoff.png")
        print(format_table(records, summary))
        print(f"\nwrote {paths['json']}, {paths['csv']}, {paths['summary']}, {plot} "
              f"in {summary['wall_time_s']:.0f}s")
    if cfg.compare:
        from qtrojan.experiments.compare import (
            format_comparison,
            run_comparison,
            summarize_comparison,
            write_comparison,
        )

        t1 = time.perf_counter()
        results = run_comparison(cfg, log)
        comp = summarize_comparison(results)
        comp["wall_time_s"] = time.perf_counter() - t1
        path = write_comparison(results, comp, args.out)
        print()
        print(format_comparison(comp))
        print(f"\nwrote {path} in {comp['wall_time_s']:.0f}s")
    return 0


def _switch(args: argparse.Namespace) -> int:
    from qtrojan.attacks.qtrojan import activate, deactivate

    try:
        cfg = activate(args.path) if args.state == "on" else deactivate(args.path)
    except (OSError, ValueError) as e:
        print(f"qtrojan: {e}", file=sys.stderr)
        return 2
    print(f"{args.path}: enabled = {str(cfg.enabled).lower()}")
    return 0


def _attack(args: argparse.Namespace) -> int:
    import torch

    from qtrojan.experiments.config import ExperimentConfig
    from qtrojan.experiments.runner import CALIBRATION_FILE, attack_to_dir, find_task

    torch.set_num_threads(1)
    try:
        cfg = ExperimentConfig.load(args.config, args.set)
        task = find_task(cfg, args.task)
        summary = attack_to_dir(task, cfg, args.out, enabled=args.enable,
                                omit_when_disabled=args.omit_when_disabled,
                                model_path=args.model)
    except (OSError, ValueError) as e:
        print(f"qtrojan: {e}", file=sys.stderr)
        return 2
    print(f"{task.name}: target class {summary['target_label']}, state "
          f"{''.join(map(str, summary['state_bits']))} ({summary['state_mode']}, margin "
          f"{summary['margin']:.3f}); CDA with the config off {summary['cda_config_off']:.3f} "
          f"(clean {summary['cda_clean']:.3f}), ASR with it on {summary['asr_config_on']:.3f}, "
          f"+{summary['gates_added_when_on']} gates")
    print(f"wrote {Path(args.out) / CALIBRATION_FILE} (enabled = "
          f"{str(args.enable).lower()}; `qtrojan switch on|off` toggles it)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from qtrojan.compiler import WrapConfig
    from qtrojan.experiments.runner import CALIBRATION_FILE, VICTIM_FILE
    from qtrojan.export import export_circuits
    from qtrojan.qnn import QNN

    src = Path(args.attack_dir)
    try:
        model = QNN.load(args.model or src / VICTIM_FILE)
        config = WrapConfig.load(args.calibration or src / CALIBRATION_FILE)
        paths = export_circuits(model, config, args.out or src, args.format)
    except (OSError, ValueError) as e:
        print(f"qtrojan: {e}", file=sys.stderr)
        return 2
    print("wrote " + ", ".join(map(str, paths)))
    return 0


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from e


def _dpba_from(path: str | None) -> dict[str, tuple[int, float, float]] | None:
    """Per task, the validation-chosen DPBA (trigger, rate) of a ``comparison.json``."""
    import json

    if path is None:
        return None
    tasks = json.loads(Path(path).read_text())["summary"]["tasks"]
    return {name: (int(e["best_over_sweep"]["trigger_feature"]),
                   float(e["best_over_sweep"]["trigger_value"]),
                   float(e["best_over_sweep"]["rate"])) for name, e in tasks.items()}


def _noise(args: argparse.Namespace) -> int:
    import json

    import torch

    from qtrojan.experiments.config import ExperimentConfig
    from qtrojan.experiments.studies import format_noise, noise_study, summarize_noise

    torch.set_num_threads(1)
    try:
        cfg = ExperimentConfig.load(args.config, args.set)
        settings = _dpba_from(args.dpba_from)
        from qtrojan.noise import NoiseModel

        for p in args.depolarizing:
            NoiseModel(depolarizing=p)
        for q in args.readout:
            NoiseModel(readout=q)
    except (OSError, ValueError, KeyError) as e:
        print(f"qtrojan: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    log = (lambda s: None) if args.quiet else (lambda s: print(s, flush=True))
    rows = noise_study(cfg, args.depolarizing, args.readout, settings, log)
    summary = summarize_noise(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "noise.json").write_text(json.dumps({"rows": rows, "summary": summary}, indent=2)
                                    + "\n")
    print(format_noise(summary))
    print(f"\nwrote {out / 'noise.json'} in {time.perf_counter() - t0:.0f}s")
    return 0


def _detect(args: argparse.Namespace) -> int:
    import json

    import torch

    from qtrojan.experiments.config import ExperimentConfig
    from qtrojan.experiments.studies import (
        detection_rows,
        format_detection,
        summarize_detection,
    )

    torch.set_num_threads(1)
    try:
        cfg = ExperimentConfig.load(args.config, args.set)
        settings = _dpba_from(args.dpba_from)
        if not 0.0 <= args.max_fpr < 1.0:
            raise ValueError(f"--max-fpr must be in [0, 1), got {args.max_fpr}")
    except (OSError, ValueError, KeyError) as e:
        print(f"qtrojan: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    log = (lambda s: None) if args.quiet else (lambda s: print(s, flush=True))
    rows = detection_rows(cfg, settings, log)
    summary = summarize_detection(rows, args.max_fpr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "detection.json").write_text(json.dumps({"rows": rows, "summary": summary},
                                                   indent=2) + "\n")
    print(format_detection(summary))
    print(f"\nactive QTrojan ASR after identity stripping (min over circuits): "
          f"{summary['qtrojan_on_asr_after_strip_min']}")
    print(f"wrote {out / 'detection.json'} in {time.perf_counter() - t0:.0f}s")
    return 0


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="YAML/JSON experiment config (default: built-in "
                   "n=4 grid, same as configs/default.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field (YAML value; dotted keys such as "
                   "tasks.0.epochs=3); repeatable")


def build_parser() -> argparse.ArgumentParser:
    """Argument parser for the ``qtrojan`` command."""
    p = argparse.ArgumentParser(prog="qtrojan", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train victims, evaluate clean / QTrojan / DPBA, write tables")
    _add_config_args(r)
    r.add_argument("--out", default="qtrojan-results", help="output directory")
    r.add_argument("--quiet", action="store_true", help="no per-model progress lines")
    r.add_argument("--comparison-only", action="store_true",
                   help="skip the single-seed grid, run only the fair comparison")
    r.set_defaults(func=_run)
    s = sub.add_parser("switch", help="enable or disable the backdoor in a compiler config file")
    s.add_argument("state", choices=("on", "off"))
    s.add_argument("path", help="calibration config JSON written by qtrojan")
    s.set_defaults(func=_switch)
    a = sub.add_parser("attack", help="train (or load) a victim and write the QTrojan "
                       "compiler config beside it")
    _add_config_args(a)
    a.add_argument("--task", help="task name in the config (default: the first task)")
    a.add_argument("--out", default="qtrojan-attack", help="output directory")
    a.add_argument("--model", help="attack this saved victim (victim.json) instead of training")
    a.add_argument("--enable", action="store_true", help="write the config switched on")
    a.add_argument("--omit-when-disabled", action="store_true",
                   help="the compiler inserts nothing while the config is off")
    a.set_defaults(func=_attack)
    e = sub.add_parser("export", help="write the clean and trojaned circuits of an attack dir")
    e.add_argument("attack_dir", help="directory written by `qtrojan attack`")
    e.add_argument("--format", choices=("qasm", "pennylane"), default="qasm",
                   help="OpenQASM 3 (inputs as `input float[64] x_i`) or a PennyLane script")
    e.add_argument("--out", help="output directory (default: the attack directory)")
    e.add_argument("--model", help="model file (default: ATTACK_DIR/victim.json)")
    e.add_argument("--calibration",
                   help="config file (default: ATTACK_DIR/backend_calibration.json)")
    e.set_defaults(func=_export)
    n = sub.add_parser("noise", help="CDA and ASR under depolarising and readout noise")
    _add_config_args(n)
    n.add_argument("--out", default="qtrojan-noise", help="output directory")
    n.add_argument("--depolarizing", type=_floats, default=[0.0, 0.001, 0.003, 0.01, 0.03],
                   help="comma-separated depolarising strengths per gate and wire")
    n.add_argument("--readout", type=_floats, default=[0.02, 0.05, 0.1, 0.2],
                   help="comma-separated readout flip probabilities")
    n.add_argument("--dpba-from", help="comparison.json of `qtrojan run`: use each task's "
                   "validation-chosen DPBA (default: the config's trigger at fixed_rate)")
    n.add_argument("--quiet", action="store_true", help="no progress lines")
    n.set_defaults(func=_noise)
    d = sub.add_parser("detect", help="detectors (gate audit, identity stripping, output "
                       "spread) on held-out circuits: detection rate, false positives, ROC")
    _add_config_args(d)
    d.add_argument("--out", default="qtrojan-detect", help="output directory")
    d.add_argument("--dpba-from", help="comparison.json of `qtrojan run` (as for `noise`)")
    d.add_argument("--max-fpr", type=float, default=0.05,
                   help="false positive rate the threshold is calibrated for")
    d.add_argument("--quiet", action="store_true", help="no progress lines")
    d.set_defaults(func=_detect)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qtrojan`` console script."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
