"""Command line: ``flexsync run | plan | table | demo``.

Exit codes (README "Failures"): 0 success; 1 a worker failed (crashed, killed, raised);
2 bad input (config, refused run directory or checkpoint, emulation unavailable); 3 a worker
stopped responding (stalled or wedged); 130 interrupted (SIGINT, Ctrl-C); 143 terminated
(SIGTERM). Every failure is one line on stderr; tracebacks go to ``<out>/logs/rank<r>.log``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flexsync.config import ConfigError, dump_config, load_config


def _check_set(values: list[str], config: str | None) -> None:
    """``--set workers 3`` would read ``3`` as the config file: say what was meant."""
    for v in values:
        if "=" not in v:
            hint = f" (did you mean --set {v}={config}?)" if config is not None else ""
            raise ConfigError(f"--set expects KEY=VALUE, got {v!r}{hint}")


def _run(args: argparse.Namespace) -> int:
    overrides = list(args.set or [])
    _check_set(overrides, args.config)
    if args.resume is not None:
        if args.overwrite:
            raise ConfigError("--resume continues a run and --overwrite moves it aside: "
                              "give one of them")
        return _resume(args, overrides)
    if args.workers is not None:
        overrides.append(f"workers={args.workers}")
    if args.network is not None:
        overrides += network_overrides(args.network)
    cfg = load_config(args.config, overrides)
    if args.print_config:
        print(dump_config(cfg), end="")
        return 0
    from flexsync.api import train
    from flexsync.launch import under_torchrun
    from flexsync.report.tables import results_table

    summary = train(cfg, overwrite=args.overwrite)
    if summary is not None and (not under_torchrun() or summary is not None):
        print(results_table([cfg.out]))
        print(f"run directory: {cfg.out}")
    return 0


def _resume(args: argparse.Namespace, overrides: list[str]) -> int:
    """Continue RUN_DIR from its latest checkpoint, e.g. to more steps (--set steps=M)."""
    from flexsync.api import train
    from flexsync.report.tables import results_table

    run_dir = Path(args.resume)
    if args.config:
        raise ConfigError("--resume takes the run directory's own config; give no CONFIG")
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no config.yaml)")
    cfg = load_config(run_dir / "config.yaml", overrides + [f"out={run_dir}"])
    if not (run_dir / "checkpoints").is_dir():
        raise ConfigError(f"{run_dir} has no checkpoints (set checkpoint.every)")
    summary = train(cfg, resume=run_dir)     # its newest complete checkpoint
    if summary is not None:
        print(results_table([run_dir]))
    return 0


def network_overrides(spec: str) -> list[str]:
    """``emulated:bandwidth=100mbit`` → [network.kind=emulated, network.bandwidth=100mbit]."""
    kind, _, rest = spec.partition(":")
    out = [f"network.kind={kind.strip()}"]
    for item in filter(None, (p.strip() for p in rest.split(","))):
        if "=" not in item:
            raise ConfigError(f"--network expects KIND:key=value,..., got {spec!r}")
        out.append(f"network.{item}")
    return out


def _plan(args: argparse.Namespace) -> int:
    from flexsync.net import cost_model as cm
    from flexsync.net.units import format_bytes, parse_bandwidth, parse_duration

    n, N = int(float(args.params)), args.workers
    alpha, bw = parse_duration(args.alpha), parse_bandwidth(args.bandwidth)
    beta = 1 / bw
    if N < 1 or n < 1:
        raise ConfigError("--params and --workers must be >= 1")
    M = 4 * n
    print(f"model {n:,} params ({format_bytes(M)} fp32), {N} workers, "
          f"alpha {args.alpha}, bandwidth {args.bandwidth}")
    print("\ndense (whole gradient):")
    dense = {
        "ring allreduce": cm.ring_allreduce(M, N, alpha, beta),
        "tree allreduce": cm.tree_allreduce(M, N, alpha, beta),
        "parameter server": cm.parameter_server(M, N, alpha, beta),
    }
    for k, v in dense.items():
        print(f"  {k:<18} {v * 1e3:12.3f} ms")
    for ratio in args.ratio:
        if not 0 < ratio <= 1:
            raise ConfigError(f"--ratio must be in (0, 1], got {ratio}")
        choice = cm.best_collective(n, ratio, N, alpha, beta)
        k = cm.topk_count(n, ratio)
        print(f"\ntop-k at ratio {ratio} (k = {k:,}):")
        for name, v in choice.costs.items():
            mark = "  <- best" if name == choice.collective else ""
            print(f"  {name:<18} {v * 1e3:12.3f} ms{mark}")
        best_dense = min(dense.values())
        speed = best_dense / choice.costs[choice.collective] if choice.costs[choice.collective] \
            else float("inf")
        print(f"  {choice.collective} is {speed:.2f}x faster than the best dense collective")
    return 0


def _table(args: argparse.Namespace) -> int:
    from flexsync.report.tables import results_table

    dirs = [d for d in args.runs if (Path(d) / "summary.json").is_file()]
    missing = sorted(set(args.runs) - set(dirs))
    if missing:
        print(f"skipping (no summary.json): {', '.join(missing)}", file=sys.stderr)
    if not dirs:
        raise ConfigError("no run directory with a summary.json given")
    print(results_table(dirs))
    return 0


#: The demo's story (README "Results"): on a bandwidth-bound link, dense against the best
#: fixed compression, adaptive methods and PyTorch's PowerSGD hook, on the workload where
#: compression matters; the strategies are the suite's, with their defaults (selsync-int8:
#: SelSync's with int8 syncs, docs/methods.md §2.2a).
DEMO_STRATEGIES = ["dense", "topk-100x", "accordion", "selsync", "selsync-int8",
                   "ddp-powersgd-r4"]


def _demo(args: argparse.Namespace) -> int:
    from flexsync import quality

    overrides = [] if args.steps is None else [f"steps={args.steps}"]
    command = f"flexsync demo --workers {args.workers} --seed {args.seed}" + \
        (f" --steps {args.steps}" if args.steps else "")
    print(f"== {len(DEMO_STRATEGIES)} runs: {', '.join(DEMO_STRATEGIES)} on resnet-hard "
          f"({args.workers} workers, modeled 20 Mbit/s link, seed {args.seed})", flush=True)
    text = quality.run(Path(args.out), ["resnet-hard"], ["bw-20mbit"], DEMO_STRATEGIES,
                       [args.seed], args.workers, overrides, command)
    print(text)
    print(f"written to {Path(args.out) / 'quality.md'} (runs in {quality.RUNS})")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from flexsync import bench

    if args.suite == "quality":
        return _bench_quality(args)
    out = Path(args.out)
    opts = {"workers": args.workers}
    if args.suite in ("fidelity", "emulated"):
        opts["bandwidth"] = args.bandwidth
    if args.steps is not None and args.suite in ("overhead", "emulated"):
        opts["steps"] = args.steps
    if args.only and args.suite == "emulated":
        opts["only"] = args.only
    if args.suite == "scaling":
        opts = {"bandwidth": args.bandwidth,
                "command": f"flexsync bench scaling --bandwidth {args.bandwidth}"}
    if args.suite in ("ddphook", "denseoverlap"):
        opts["command"] = f"flexsync bench {args.suite} --workers {args.workers}" + (
            f" --steps {args.steps}" if args.steps else "")
        if args.steps:
            opts["steps"] = args.steps
    if args.suite == "kernels":
        opts = {"command": " ".join(["flexsync bench kernels", *(
            [f"--sizes {' '.join(map(str, args.sizes))}"] if args.sizes else []), *(
            [f"--threads {' '.join(map(str, args.threads))}"] if args.threads else [])])}
        if args.sizes:
            opts["sizes"] = tuple(args.sizes)
        if args.threads:
            opts["threads"] = tuple(args.threads)
    print(bench.SUITES[args.suite](out, **opts))
    print(f"\nwritten to {out / (args.suite + '.md')}")
    return 0


def _quality_command(args: argparse.Namespace) -> str:
    """The command that reproduces this suite (written at the top of quality.md); it never
    names --report-only, which changes what runs, not what the tables say."""
    parts = ["flexsync bench quality"]
    for flag in ("workloads", "regimes", "strategies", "seeds"):
        if getattr(args, flag):
            parts.append(f"--{flag} " + " ".join(map(str, getattr(args, flag))))
    if args.workers != 4:
        parts.append(f"--workers {args.workers}")
    parts += [f"--set {a}" for a in args.set or []]
    if args.out != "benchmarks/results":
        parts.append(f"--out {args.out}")
    return " ".join(parts)


def _bench_quality(args: argparse.Namespace) -> int:
    from flexsync import quality

    def pick(given: list[str] | None, table: dict) -> list[str]:
        return list(table) if not given or given == ["all"] else given

    command = _quality_command(args)
    try:
        text = quality.run(Path(args.out), pick(args.workloads, quality.WORKLOADS),
                           pick(args.regimes, quality.REGIMES),
                           pick(args.strategies, quality.STRATEGIES), args.seeds,
                           args.workers, args.set or [], command,
                           report_only=args.report_only)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    print(text)
    print(f"\nwritten to {Path(args.out) / 'quality.md'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="flexsync", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="train a configuration (locally, or as one torchrun rank)")
    r.add_argument("config", nargs="?", help="YAML config; omitted = all defaults")
    r.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key, e.g. --set strategy.name=dense --set workers=3")
    r.add_argument("--workers", type=int, help="shorthand for --set workers=N")
    r.add_argument("--network", metavar="KIND:key=value,...",
                   help="e.g. emulated:bandwidth=100mbit or modeled:alpha=5ms,bandwidth=1Gbit")
    r.add_argument("--resume", metavar="RUN_DIR",
                   help="continue a run from its latest checkpoint (with --set steps=M)")
    r.add_argument("--overwrite", action="store_true",
                   help="out already holds a run: move it aside to OUT.old-N (nothing is "
                   "deleted) and start afresh")
    r.add_argument("--print-config", action="store_true",
                   help="print the resolved config with every default, then exit")
    r.set_defaults(fn=_run)

    pl = sub.add_parser("plan", help="price every collective with the α-β model, no training")
    pl.add_argument("--params", required=True, help="model size in parameters, e.g. 25e6")
    pl.add_argument("--workers", type=int, required=True)
    pl.add_argument("--alpha", default="1ms", help="latency per message, e.g. 1ms")
    pl.add_argument("--bandwidth", default="10Gbit", help="e.g. 100mbit, 10Gbit")
    pl.add_argument("--ratio", type=float, nargs="+", default=[0.01],
                    help="top-k keep fraction(s) c")
    pl.set_defaults(fn=_plan)

    t = sub.add_parser("table", help="print a results table of run directories")
    t.add_argument("runs", nargs="+")
    t.set_defaults(fn=_table)

    b = sub.add_parser("bench", help="run a benchmark suite (quality, fidelity, overhead, "
                       "emulated, kernels, ddphook, denseoverlap, scaling)")
    b.add_argument("suite", choices=["quality", "fidelity", "overhead", "emulated", "kernels",
                                     "ddphook", "denseoverlap", "scaling"])
    b.add_argument("--sizes", type=int, nargs="+", help="kernels: vector lengths")
    b.add_argument("--threads", type=int, nargs="+", help="kernels: CPU thread counts (1 2)")
    b.add_argument("--workloads", nargs="+", help="quality: subset of workloads (default all)")
    b.add_argument("--regimes", nargs="+", help="quality: subset of network regimes")
    b.add_argument("--strategies", nargs="+", help="quality: subset of strategies")
    b.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="quality: seeds")
    b.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="quality: override a config key of every run, e.g. --set steps=200")
    b.add_argument("--report-only", action="store_true",
                   help="quality: write the tables from the finished runs, train nothing")
    b.add_argument("--workers", type=int, default=4)
    b.add_argument("--bandwidth", default="50mbit", help="emulated uplink rate")
    b.add_argument("--steps", type=int)
    b.add_argument("--only", nargs="+", help="emulated: subset of runs")
    b.add_argument("--out", default="benchmarks/results")
    b.set_defaults(fn=_bench)

    d = sub.add_parser("demo", help="time to dense quality on a slow link: dense against "
                       "fixed and adaptive compression and DDP + PowerSGD (one seed)")
    d.add_argument("--workers", type=int, default=4)
    d.add_argument("--steps", type=int, help="override the workload's step budget (300)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", default="runs/demo")
    d.set_defaults(fn=_demo)
    return p


class Terminated(SystemExit):
    """SIGTERM reached the launcher: unwinds every ``finally`` (workers, namespaces, work
    directories go away), then exits 143."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated(128 + signum)


#: Exit codes (README "Failures").
EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_STALLED = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143


def main(argv: list[str] | None = None) -> int:
    import signal

    args = build_parser().parse_args(argv)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        print("flexsync: interrupted (SIGINT); all workers stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print("flexsync: terminated (SIGTERM); all workers stopped", file=sys.stderr)
        return EXIT_TERMINATED
    except Exception as e:
        code = _exit_code(e)
        if code is None:
            raise
        print(f"flexsync: {' '.join(str(e).split())}" if code != EXIT_INPUT
              else f"flexsync: {e}", file=sys.stderr)
        return code


def _exit_code(e: BaseException) -> int | None:
    """The exit code of an expected failure, reported as one line: 2 for bad input (config,
    emulation unavailable, a refused run directory or checkpoint), 3 for a worker that
    stopped responding, 1 for a failed or timed-out run; None for anything else (a bug: its
    traceback is shown)."""
    from flexsync.launch import WorkerFailed, WorkerStalled
    from flexsync.net.emulate import EmulationUnavailable
    from flexsync.train.checkpoint import CheckpointError

    if isinstance(e, ConfigError | EmulationUnavailable | CheckpointError):
        return EXIT_INPUT
    if isinstance(e, WorkerStalled):
        return EXIT_STALLED
    if isinstance(e, WorkerFailed | TimeoutError):
        return EXIT_FAILED
    return None
