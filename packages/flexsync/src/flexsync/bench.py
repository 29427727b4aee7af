"""Benchmark suites (``flexsync bench SUITE``): measured, not part of the unit tests.

* ``fidelity``: predicted (α-β model) versus measured collective times on emulated links.
* ``overhead``: the dense strategy versus plain torch DDP on loopback, same model and batch.
* ``emulated``: every strategy side by side with dense BSP and DDP (+ PowerSGD / fp16 hooks)
  on an emulated slow link, one run each, same data and seed: wall-clock time to target.
* ``ddphook``: per-step time of DDP with flexsync's communication hook against plain torch
  DDP on loopback (the overhead a user of the hook pays where the network is fast).
* ``denseoverlap``: the optimizer wrapper's dense path (overlapped with backward, and
  aggregated after it) against torch DDP at about 1 M, 10 M and 25 M parameters.
* ``scaling``: step time and its parts (compute, selection, communication) against model size
  (the transformer presets) and world size (α-β priced), with memory per worker.
* ``kernels``: top-k selection speed (the default adaptive-threshold selector, the one-off
  sampled threshold and exact ``torch.topk``) with recall and energy against exact top-k.

Each suite writes ``<out>/<suite>.md`` (and plots) and prints the table; the training runs
behind a table go to ``runs/bench/<suite>/``.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from flexsync.net import cost_model as cm
from flexsync.net.units import format_bytes, parse_bandwidth

RUNS = Path("runs") / "bench"


def _fidelity_worker(sizes: list[int], reps: int) -> list[dict[str, Any]]:
    rank, world = dist.get_rank(), dist.get_world_size()
    out = []

    def timed(fn) -> float:
        fn()                                     # warm-up: connections, buffers
        ts = []
        for _ in range(reps):
            dist.barrier()
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    small = torch.zeros(2)
    latency = timed(lambda: dist.all_reduce(small))
    for n in sizes:
        t = torch.zeros(n)
        parts = [torch.zeros(n) for _ in range(world)]
        out.append({"n": n, "allreduce": timed(lambda t=t: dist.all_reduce(t)),
                    "allgather": timed(lambda t=t, p=parts: dist.all_gather(p, t)),
                    "broadcast": timed(lambda t=t: dist.broadcast(t, 0))})
    return [{"rank": rank, "latency": latency, "rows": out}]


def fidelity(out: Path, workers: int = 4, bandwidth: str = "50mbit",
             sizes: tuple[int, ...] = (65_536, 262_144, 1_048_576), reps: int = 3) -> str:
    from flexsync.launch import run_local
    from flexsync.net.emulate import EmulatedNetwork

    bw = parse_bandwidth(bandwidth)
    with EmulatedNetwork(workers, bw) as net:
        res = run_local(_fidelity_worker, workers, (list(sizes), reps), emulation=net,
                        deadline_s=900)
    # The slowest rank's view is the collective's completion time.
    latency = max(r[0]["latency"] for r in res)
    alpha = latency / (2 * (workers - 1))            # ring allreduce of 8 bytes ≈ 2(N−1)α
    lines = [f"# Cost-model fidelity on emulated links ({workers} workers, {bandwidth} per "
             f"uplink, tbf)\n",
             "Broadcast is priced two ways: the paper's binomial tree (αL + L·X·β) and the flat "
             "root-to-all form gloo implements on CPU (α + (N−1)·X·β); the error column uses "
             "the latter.\n",
             f"α from an 8-byte allreduce: {alpha * 1e3:.2f} ms; β from the configured "
             "bandwidth. Measured: median of "
             f"{reps} calls, slowest rank.\n",
             "| collective | message | predicted s | measured s | error |",
             "|---|---|---|---|---|"]
    errors = []
    for i, n in enumerate(sizes):
        x = 4 * n
        for kind, fn in (("allreduce", cm.ring_allreduce), ("allgather", cm.allgather),
                         ("broadcast", cm.flat_broadcast)):
            measured = max(r[0]["rows"][i][kind] for r in res)
            pred = fn(x, workers, alpha, 1 / bw)
            err = (pred - measured) / measured
            errors.append(abs(err))
            extra = ""
            if kind == "broadcast":
                extra = f" (tree model: {cm.broadcast(x, workers, alpha, 1 / bw):.3f})"
            lines.append(f"| {kind} | {format_bytes(x)} | {pred:.3f}{extra} | {measured:.3f} | "
                         f"{100 * err:+.0f}% |")
    lines.append(f"\nLargest absolute error: {100 * max(errors):.0f}%; "
                 f"median {100 * statistics.median(errors):.0f}%.")
    return _write(out, "fidelity", "\n".join(lines))


def overhead(out: Path, workers: int = 4, steps: int = 300) -> str:
    """Wall time per step of the dense strategy versus plain DDP on loopback."""
    from flexsync.api import train
    from flexsync.config import build_config
    from flexsync.train.metrics import read_metrics

    base = {"workers": workers, "steps": steps, "progress": False, "eval": {"every": steps},
            "network": {"kind": "loopback"}}
    per_step: dict[str, float] = {}
    for name, strat in (("ddp", {"name": "ddp", "hook": "none"}), ("dense", {"name": "dense"}),
                        ("ddp-again", {"name": "ddp", "hook": "none"}),
                        ("dense-again", {"name": "dense"})):
        d = RUNS / "overhead" / name
        train(build_config({**base, "strategy": strat, "out": str(d)}), overwrite=True)
        rows = read_metrics(d / "metrics.jsonl")
        walls = [b["wall_time"] - a["wall_time"] for a, b in zip(rows, rows[1:], strict=False)]
        per_step[name] = statistics.median(walls[len(walls) // 5:])   # skip warm-up
    dense = min(per_step["dense"], per_step["dense-again"])
    ddp = min(per_step["ddp"], per_step["ddp-again"])
    lines = [f"# Library overhead: dense strategy vs plain torch DDP ({workers} workers, "
             f"loopback, CNN, batch 32)\n",
             "Median wall time per step (after warm-up), best of two runs each, same model, "
             "data and batch.\n",
             "| strategy | ms per step (run 1 / run 2) |", "|---|---|",
             f"| torch DDP | {1e3 * per_step['ddp']:.1f} / {1e3 * per_step['ddp-again']:.1f} |",
             f"| flexsync dense | {1e3 * per_step['dense']:.1f} / "
             f"{1e3 * per_step['dense-again']:.1f} |",
             f"\nOverhead of flexsync dense over DDP: {100 * (dense / ddp - 1):+.1f}%."]
    return _write(out, "overhead", "\n".join(lines))


EMULATED_RUNS: dict[str, dict[str, Any]] = {
    "dense": {"name": "dense"},
    "ddp": {"name": "ddp", "hook": "none"},
    "ddp-fp16": {"name": "ddp", "hook": "fp16"},
    "ddp-powersgd": {"name": "ddp", "hook": "powersgd", "powersgd_rank": 2},
    "topk-0.01": {"name": "topk", "ratio": 0.01},
    "artopk-star-0.01": {"name": "artopk", "ratio": 0.01},
    "flexible-0.01": {"name": "flexible", "ratio": 0.01},
    "flexible-moo": {"name": "flexible", "ratio": "moo", "moo": {"warmup_steps": 50}},
    "gravac": {"name": "gravac", "window": 100},
    "selsync": {"name": "selsync", "delta": 0.15},
}


def emulated(out: Path, workers: int = 4, bandwidth: str = "50mbit", steps: int = 800,
             target: float = 0.9, only: list[str] | None = None) -> str:
    from flexsync.api import train
    from flexsync.config import build_config
    from flexsync.report.plots import plot_comparison
    from flexsync.report.tables import load_summary

    base = {"workers": workers, "steps": steps, "progress": False, "eval": {"every": 50},
            "target": {"accuracy": target},
            "network": {"kind": "emulated", "bandwidth": bandwidth}}
    names = [n for n in EMULATED_RUNS if only is None or n in only]
    dirs = []
    for name in names:
        d = RUNS / "emulated" / name
        print(f"== {name}", flush=True)
        train(build_config({**base, "strategy": EMULATED_RUNS[name], "out": str(d)}),
              overwrite=True)
        dirs.append(d)
    sums = {n: load_summary(d) for n, d in zip(names, dirs, strict=True)}
    ref = sums.get("dense")
    lines = [f"# Strategies on an emulated link ({workers} workers, {bandwidth} per uplink, "
             f"{steps} steps, target {100 * target:.0f}% test accuracy)\n",
             "Wall-clock on real shaped links (network namespaces + tbf), one run each, "
             "same data, seed and model (CNN, 65.6 K parameters, synthetic 100-class images).\n",
             "| run | final acc | wall s | wall to target s | speedup vs dense (to target) "
             "| sent/worker |", "|---|---|---|---|---|---|"]
    for n, s in sums.items():
        ttt = s["time_to_target_wall_s"]
        speed = (f"{ref['time_to_target_wall_s'] / ttt:.2f}x"
                 if ref and ttt and ref["time_to_target_wall_s"] else "-")
        lines.append(f"| {n} | {100 * s['final_accuracy']:.1f}% | {s['wall_time_s']:.1f} | "
                     f"{'never' if ttt is None else f'{ttt:.1f}'} | {speed} | "
                     f"{format_bytes(s['bytes_sent'])} |")
    plot = plot_comparison(dirs, out / "emulated.png", x="wall_time")
    lines.append(f"\nPlot: {plot.name}")
    return _write(out, "emulated", "\n".join(lines))


def _load() -> str:
    """The machine's load averages (wall-clock figures on a shared machine need them)."""
    import os

    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _time(fn, device: str) -> tuple[float, Any]:
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, out


def _kernel_row(n: int, ratio: float, device: str) -> dict[str, float]:
    """One cell: a gradient-like vector, then a second one 5 % larger in scale (what the
    next step's error-fed gradient looks like to a threshold carried over)."""
    from flexsync.compress import Sparsifier, threshold_topk

    g = torch.Generator().manual_seed(n)
    k = cm.topk_count(n, ratio)
    x0 = torch.randn(n, generator=g).to(device)
    x = (1.05 * torch.randn(n, generator=g)).to(device)
    sp = Sparsifier(n, "adaptive", device=device, generator=g)
    first_s, _ = _time(lambda: sp.select(x0, ratio), device)           # fresh estimate
    adaptive_s, idx = _time(lambda: sp.select(x, ratio), device)       # threshold reused
    sampled_s, sidx = _time(lambda: threshold_topk(x, k, g), device)
    exact_s, eidx = _time(lambda: torch.topk(x.abs(), k, sorted=False).indices, device)
    sq = x.pow(2)
    best = float(sq[eidx].sum())
    exact = torch.zeros(n, dtype=torch.bool, device=device)
    exact[eidx] = True
    return {"exact_s": exact_s, "adaptive_s": adaptive_s, "first_s": first_s,
            "sampled_s": sampled_s, "recall": float(exact[idx].float().mean()),
            "energy": float(sq[idx].sum()) / best, "sampled_energy": float(sq[sidx].sum()) / best}


def kernels(out: Path, sizes: tuple[int, ...] = (1_000_000, 10_000_000, 25_000_000,
                                                 100_000_000),
            ratios: tuple[float, ...] = (0.1, 0.01, 0.001), threads: tuple[int, ...] = (1, 2),
            command: str = "flexsync bench kernels") -> str:
    """Selection time per call on ``threads`` CPU threads (and CUDA when present), one call
    per cell (the first call of the adaptive selector, which must estimate, is its own
    column), recall and squared-magnitude energy against exact top-k."""
    devices = [("cpu", t) for t in threads]
    if torch.cuda.is_available():
        devices.append(("cuda", 0))
    saved = torch.get_num_threads()
    lines = ["# Top-k selection kernels\n", f"Command: `{command}`\n",
             f"Machine: {_load()} at start (a shared machine: one run, ratios matter more "
             "than absolute times); torch " + torch.__version__ + ".\n",
             "adaptive = the default selector with the threshold carried from the previous "
             "call; first = its first call (sampled estimate); sampled = the one-off sampled "
             "threshold selector; energy = Σx² kept / Σx² of exact top-k.\n",
             "| device | threads | n | ratio | exact topk s | adaptive s | speed-up | first s | "
             "sampled s | recall | energy | sampled energy |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    try:
        for device, t in devices:
            if device == "cpu":
                torch.set_num_threads(t)
            for n in sizes:
                for ratio in ratios:
                    r = _kernel_row(n, ratio, device)
                    lines.append(
                        f"| {device} | {t or '-'} | {n:,} | {ratio:g} | {r['exact_s']:.3f} | "
                        f"{r['adaptive_s']:.3f} | {r['exact_s'] / r['adaptive_s']:.1f}x | "
                        f"{r['first_s']:.3f} | {r['sampled_s']:.3f} | {r['recall']:.4f} | "
                        f"{r['energy']:.4f} | {r['sampled_energy']:.4f} |")
                    print(lines[-1], flush=True)
    finally:
        torch.set_num_threads(saved)
    lines.append(f"\nMachine at the end: {_load()}.")
    if not torch.cuda.is_available():
        lines.append("\nNo CUDA device on this machine: no GPU rows (`bash benchmarks/gpu.sh` "
                     "adds them on a GPU machine).")
    return _write(out, "kernels", "\n".join(lines))


HOOK_RUNS: dict[str, dict[str, Any] | None] = {
    "torch DDP": None,
    "DDP + flexsync topk 0.01": {"strategy": "topk", "ratio": 0.01},
    "DDP + flexsync artopk 0.01": {"strategy": "artopk", "ratio": 0.01},
}


def _mlp(width: int) -> torch.nn.Module:
    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(nn.Linear(512, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, 512), nn.ReLU(), nn.Linear(512, 10))


def _hook_worker(width: int, steps: int, rounds: int) -> dict[str, list[float]]:
    """Each configuration ``rounds`` times in turn (A B C A B C: load drifts hit all alike);
    the median step time of each pass after 5 warm-up steps."""
    from flexsync.integrations.ddp_hook import register_flexsync_hook

    times: dict[str, list[float]] = {name: [] for name in HOOK_RUNS}
    g = torch.Generator().manual_seed(dist.get_rank())
    x, y = torch.randn(32, 512, generator=g), torch.randint(10, (32,), generator=g)
    for _ in range(rounds):
        for name, hook in HOOK_RUNS.items():
            model = _mlp(width)
            ddp = torch.nn.parallel.DistributedDataParallel(model)
            if hook is not None:
                register_flexsync_hook(ddp, **hook)
            opt = torch.optim.SGD(model.parameters(), lr=0.01)
            walls = []
            for _ in range(steps):
                dist.barrier()
                t0 = time.perf_counter()
                opt.zero_grad()
                torch.nn.functional.cross_entropy(ddp(x), y).backward()
                opt.step()
                walls.append(time.perf_counter() - t0)
            times[name].append(statistics.median(walls[5:]))
    return times


def ddphook(out: Path, workers: int = 2, steps: int = 40, width: int = 1024,
            rounds: int = 3, command: str = "flexsync bench ddphook") -> str:
    """Per-step wall time of DDP + flexsync hook against plain torch DDP (loopback, gloo,
    an MLP of about 2.1 M parameters at width 1024, batch 32)."""
    from flexsync.launch import run_local

    params = sum(p.numel() for p in _mlp(width).parameters())
    start = _load()
    res = run_local(_hook_worker, workers, (width, steps, rounds), deadline_s=1800)
    slowest = {name: [max(r[name][i] for r in res) for i in range(rounds)] for name in HOOK_RUNS}
    lines = ["# DDP communication hook versus torch DDP (loopback)\n",
             f"Command: `{command}`\n",
             f"{workers} gloo workers on one machine, MLP of {params / 1e6:.2f} M parameters, "
             f"batch 32, SGD; DDP's default 25 MB buckets. Each configuration runs {rounds} "
             f"times in turn (A B C A B C …), {steps} steps each; a pass's figure is the median "
             "step after 5 warm-up steps on its slowest rank. Ratio = a pass over the torch "
             "DDP pass of the same round (paired: load drifts hit both alike); the table "
             "gives each pass, each round's ratio and their median.\n",
             f"Machine: {start} at start, {_load()} at the end (2 cores shared with other "
             "jobs: one run; the ratio is the figure).\n",
             "| configuration | ms per step (each pass) | vs torch DDP per round | "
             "median ratio |", "|---|---|---|---|"]
    for name in HOOK_RUNS:
        ratios = [a / b for a, b in zip(slowest[name], slowest["torch DDP"], strict=True)]
        lines.append(f"| {name} | {' / '.join(f'{1e3 * t:.1f}' for t in slowest[name])} | "
                     f"{' / '.join(f'{r:.2f}x' for r in ratios)} | "
                     f"{statistics.median(ratios):.2f}x |")
    return _write(out, "ddphook", "\n".join(lines))


DENSE_RUNS = ("torch DDP", "flexsync dense, overlapped", "flexsync dense, after backward")
#: MLP widths of about 1 M, 10 M and 25 M parameters (512 → w → w → 512 → 10).
DENSE_WIDTHS = (620, 2700, 4520)


def _dense_pass(name: str, width: int, steps: int, x: torch.Tensor, y: torch.Tensor) -> float:
    """One pass of ``steps`` SGD steps of configuration ``name``; the median step after the
    first 3 (the wrapper's first step learns its buckets, DDP's rebuilds them)."""
    from flexsync.integrations.optimizer import DistributedOptimizer

    model = _mlp(width)
    sgd = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    if name == "torch DDP":
        fwd: torch.nn.Module = torch.nn.parallel.DistributedDataParallel(model)
        opt: torch.optim.Optimizer = sgd
    else:
        fwd = model
        opt = DistributedOptimizer(sgd, model, strategy="dense", overlap="overlapped" in name)
    walls = []
    for _ in range(steps):
        dist.barrier()
        t0 = time.perf_counter()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(fwd(x), y).backward()
        opt.step()
        walls.append(time.perf_counter() - t0)
    if hasattr(opt, "close"):
        opt.close()
    return statistics.median(walls[3:])


def _dense_worker(widths: tuple[int, ...], batch: int, steps: int, rounds: int
                  ) -> dict[str, list[float]]:
    """Per width, each configuration ``rounds`` times in turn (A B C A B C)."""
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(dist.get_rank())
    x, y = torch.randn(batch, 512, generator=g), torch.randint(10, (batch,), generator=g)
    times: dict[str, list[float]] = {}
    for width in widths:
        for _ in range(rounds):
            for name in DENSE_RUNS:
                times.setdefault(f"{width}/{name}", []).append(
                    _dense_pass(name, width, steps, x, y))
    return times


def denseoverlap(out: Path, workers: int = 2, steps: int = 15, batch: int = 64,
                 rounds: int = 3, widths: tuple[int, ...] = DENSE_WIDTHS,
                 command: str = "flexsync bench denseoverlap") -> str:
    """The optimizer wrapper's dense path (overlapped with backward, and the older
    aggregate-after-backward path) against torch DDP at about 1 M, 10 M and 25 M parameters
    (loopback gloo, an MLP, one CPU thread per worker)."""
    from flexsync.launch import run_local

    start = _load()
    res = run_local(_dense_worker, workers, (widths, batch, steps, rounds), deadline_s=3600)
    lines = ["# Dense data parallelism: the optimizer wrapper against torch DDP (loopback)\n",
             f"Command: `{command}`\n",
             f"{workers} gloo workers on one machine, one CPU thread each; MLP 512 → w → w → "
             f"512 → 10, batch {batch}, SGD with momentum; DDP and the overlapped path with "
             "25 MB buckets. Each configuration runs "
             f"{rounds} times in turn (A B C A B C …), {steps} steps each; a pass's figure is "
             "the median step after 3 warm-up steps on its slowest rank. Overhead = a pass's "
             "time over the torch DDP pass of the same round, minus 1 (paired: load drifts hit "
             "both alike); the table gives each round's and their median.\n",
             f"Machine: {start} at start, {_load()} at the end (2 cores shared with other "
             "jobs: one run, the ratios are the figures).\n",
             "| parameters | configuration | ms per step (each pass) | overhead vs DDP per "
             "round | median overhead |", "|---|---|---|---|---|"]
    for width in widths:
        params = sum(p.numel() for p in _mlp(width).parameters())
        slowest = {name: [max(r[f"{width}/{name}"][i] for r in res) for i in range(rounds)]
                   for name in DENSE_RUNS}
        for name in DENSE_RUNS:
            ratios = [a / b - 1 for a, b in zip(slowest[name], slowest["torch DDP"],
                                                strict=True)]
            over = ("-" if name == "torch DDP" else
                    " / ".join(f"{100 * o:+.1f}%" for o in ratios))
            med = "-" if name == "torch DDP" else f"{100 * statistics.median(ratios):+.1f}%"
            lines.append(f"| {params / 1e6:.2f} M | {name} | "
                         f"{' / '.join(f'{1e3 * t:.1f}' for t in slowest[name])} | {over} | "
                         f"{med} |")
    return _write(out, "denseoverlap", "\n".join(lines))


#: The transformer sizes of ``bench scaling``: the presets and "xl", about 101 M parameters
#: (width 1024, depth 8, 16 heads; built here, not a training preset).
SCALING_SIZES: dict[str, tuple[int, int, int]] = {"xs": (128, 5, 4), "s": (192, 8, 6),
                                                  "m": (320, 8, 5), "l": (512, 8, 8),
                                                  "xl": (1024, 8, 16)}


def _transformer(size: str, block: int) -> torch.nn.Module:
    from flexsync.models.transformer import TransformerLM

    torch.manual_seed(0)
    return TransformerLM(256, block, *SCALING_SIZES[size])


def _compute_step(model: torch.nn.Module, tokens: torch.Tensor) -> float:
    """Seconds of one forward + backward on ``tokens`` (next-token loss)."""
    model.zero_grad()
    t0 = time.perf_counter()
    logits = model(tokens[:, :-1])
    torch.nn.functional.cross_entropy(logits.reshape(-1, 256),
                                      tokens[:, 1:].reshape(-1)).backward()
    return time.perf_counter() - t0


def _scaling_row(size: str, ratio: float, batch: int, block: int) -> dict[str, float]:
    """Measured on this process: one training step's compute (forward + backward of the
    model on ``batch`` sequences of ``block`` tokens, best of 2 after a warm-up) and one
    steady-state adaptive selection of its flat gradient."""
    from flexsync.compress import Sparsifier

    model = _transformer(size, block)
    n = sum(p.numel() for p in model.parameters())
    tokens = torch.randint(256, (batch, block + 1), generator=torch.Generator().manual_seed(0))
    walls = [_compute_step(model, tokens) for _ in range(3)]
    grad = torch.cat([p.grad.flatten() for p in model.parameters()])
    sp = Sparsifier(n, "adaptive", values="fp16")
    sp.select(sp.feed(grad), ratio)                                   # first: an estimate
    fed = sp.feed(1.02 * grad)                                        # the next step
    select_s, _ = _time(lambda: sp.select(fed, ratio), "cpu")
    return {"n": n, "compute_s": min(walls[1:]), "select_s": select_s}


def _private_mb() -> float:
    """This process's private resident memory in MB (``/proc/self/smaps_rollup``). A forked
    worker shares its parent's pages, including heap the parent freed but kept, which the
    worker's allocations reuse without raising RSS; private pages count what it wrote."""
    total = 0
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    return total / 1024


def _local_step(model: torch.nn.Module, tokens: torch.Tensor, comm: Any, sp: Any,
                ratio: float) -> dict[str, float]:
    """One measured step on a local worker: compute, selection, the top-k allgather
    (flexsync's wire: fp16 values, coded indices) and a dense fp32 allreduce of the same
    gradient. A barrier before each collective keeps the ranks' skew out of its time."""
    from flexsync.comm.sparse import allgather_sparse
    from flexsync.strategies.grads import flatten_grads

    compute = _compute_step(model, tokens)
    flat = flatten_grads(list(model.parameters()))
    fed = sp.feed_(flat)                       # in the residual: no extra vector
    t0 = time.perf_counter()
    idx = sp.select(fed, ratio)
    select = time.perf_counter() - t0
    dist.barrier()
    t0 = time.perf_counter()
    _, _, sent = allgather_sparse(comm, fed[idx], idx, fed.numel(), coding="fp16")
    topk = time.perf_counter() - t0
    sp.ef.absorb(fed, idx, sent)
    dist.barrier()
    t0 = time.perf_counter()
    comm.allreduce(flat)                       # the flat gradient is free again: in place
    dense = time.perf_counter() - t0
    tensors = [*model.parameters(), *(p.grad for p in model.parameters()), flat,
               sp.ef.residual, *([sp.adaptive._mag, sp.adaptive._mask] if sp.adaptive else [])]
    return {"compute_s": compute, "select_s": select, "topk_s": topk, "dense_s": dense,
            "private_mb": _private_mb(),                 # everything of the step still alive
            "tensor_mb": sum(t.numel() * t.element_size() for t in tensors) / 2**20}


def _local_worker(sizes: list[str], ratio: float, batch: int, block: int, steps: int
                  ) -> dict[str, dict[str, float]]:
    """Per size, ``steps`` steps on this rank (the first a warm-up); medians of the rest,
    and the peak resident memory the size added to this process."""
    from flexsync.comm import Communicator
    from flexsync.compress import Sparsifier

    torch.set_num_threads(1)
    comm = Communicator()
    out = {}
    for size in sizes:
        base = _private_mb()
        model = _transformer(size, block)
        n = sum(p.numel() for p in model.parameters())
        g = torch.Generator().manual_seed(comm.rank)
        tokens = torch.randint(256, (batch, block + 1), generator=g)
        sp = Sparsifier(n, "adaptive", values="fp16")
        rows = [_local_step(model, tokens, comm, sp, ratio) for _ in range(steps)]
        peak = max(r.pop("private_mb") for r in rows) - base
        out[size] = {k: statistics.median(r[k] for r in rows[1:]) for k in rows[0]}
        out[size].update(n=n, peak_mb=peak)
        del model, sp, rows
    return out


def _worker_bytes(n: int) -> int:
    """Estimated bytes one local scaling worker holds for an n-parameter model: parameters,
    gradients, the flat gradient, the residual (the error-fed vector in place), the
    selector's |g| (fp32) and mask (bool), plus 300 MB for the interpreter and torch."""
    return 21 * n + 300 * 2**20


def _local_runs(sizes: tuple[str, ...], worlds: tuple[int, ...], ratio: float, batch: int,
                block: int, steps: int, budget_gb: float
                ) -> tuple[dict[int, dict[str, dict[str, float]]], list[str]]:
    """Every world size on the sizes whose estimated memory over all its workers fits in
    ``budget_gb``; returns the measurements and what was skipped."""
    from flexsync.launch import run_local
    from flexsync.models.transformer import param_count

    measured, skipped = {}, []
    for w in worlds:
        fits = [s for s in sizes if w * _worker_bytes(
            param_count(256, block, *SCALING_SIZES[s][:2])) <= budget_gb * 2**30]
        skipped += [f"{s} at {w} workers" for s in sizes if s not in fits]
        if not fits:
            continue
        res = run_local(_local_worker, w, (fits, ratio, batch, block, steps), deadline_s=3600)
        measured[w] = {s: {k: max(r[s][k] for r in res) for k in res[0][s]} for s in fits}
    return measured, skipped


def _local_table(measured: dict[int, dict[str, dict[str, float]]]) -> list[str]:
    lines = ["| size | parameters | workers | compute s | selection s | top-k allgather s | "
             "dense allreduce s | step s top-k / dense | tensors MB per worker | "
             "private MB per worker |", "|---|---|---|---|---|---|---|---|---|---|"]
    for w, per in measured.items():
        for s, r in per.items():
            topk = r["compute_s"] + r["select_s"] + r["topk_s"]
            dense = r["compute_s"] + r["dense_s"]
            lines.append(f"| {s} | {r['n'] / 1e6:.2f} M | {w} | {r['compute_s']:.3f} | "
                         f"{r['select_s']:.3f} | {r['topk_s']:.4f} | {r['dense_s']:.4f} | "
                         f"{topk:.3f} / {dense:.3f} | {r['tensor_mb']:.0f} | "
                         f"{r['peak_mb']:.0f} |")
    return lines


def _comm_s(n: int, ratio: float, world: int, alpha: float, beta: float) -> dict[str, float]:
    """α-β priced seconds of one aggregation with the wire sizes flexsync sends: dense fp32
    ring allreduce, AG-Topk (fp16 values, coded indices, one float extra) and ART-Ring."""
    from flexsync.comm.sparse import allgather_nbytes
    from flexsync.compress.wire import index_nbytes

    k = cm.topk_count(n, ratio)
    ag = cm.allgather(allgather_nbytes(n, k, 1, "fp16"), world, alpha, beta)
    art = (cm.broadcast(index_nbytes(n, k), world, alpha, beta)
           + cm.ring_allreduce(2 * k, world, alpha, beta)
           + cm.ring_allreduce(4, world, alpha, beta))
    return {"dense": cm.ring_allreduce(4 * n, world, alpha, beta), "topk": min(ag, art)}


def _priced_lines(rows: dict[str, dict[str, float]], ratio: float, worlds: tuple[int, ...],
                  alpha: float, beta: float) -> list[str]:
    """The single-process table (measured compute and selection, α-β priced communication
    at N = 8) and the priced world-size table of the largest size."""
    lines = ["| size | parameters | compute s | selection s | comm s at N=8, top-k / dense "
             "| step s at N=8, top-k / dense | memory per worker MB (params, grads, residual, "
             "selector) |", "|---|---|---|---|---|---|---|"]
    for p, r in rows.items():
        c = _comm_s(int(r["n"]), ratio, 8, alpha, beta)
        base = r["compute_s"]
        mem = (4 + 4 + 4 + 5) * r["n"] / 2**20
        lines.append(f"| {p} | {r['n'] / 1e6:.2f} M | {base:.3f} | {r['select_s']:.3f} | "
                     f"{c['topk']:.4f} / {c['dense']:.4f} | "
                     f"{base + r['select_s'] + c['topk']:.3f} / {base + c['dense']:.3f} | "
                     f"{mem:.0f} |")
    big = list(rows)[-1]
    r = rows[big]
    lines += [f"\nWorld size (α-β priced), size {big} ({r['n'] / 1e6:.1f} M parameters):\n",
              "| workers | comm s top-k | comm s dense | step s top-k | step s dense |",
              "|---|---|---|---|---|"]
    for w in worlds:
        c = _comm_s(int(r["n"]), ratio, w, alpha, beta)
        lines.append(f"| {w} | {c['topk']:.4f} | {c['dense']:.4f} | "
                     f"{r['compute_s'] + r['select_s'] + c['topk']:.3f} | "
                     f"{r['compute_s'] + c['dense']:.3f} |")
    return lines


def scaling(out: Path, presets: tuple[str, ...] = tuple(SCALING_SIZES), ratio: float = 0.01,
            worlds: tuple[int, ...] = (2, 4, 8, 16, 64, 256, 1024), alpha: float = 50e-6,
            bandwidth: str = "10gbit", batch: int = 8, block: int = 128,
            local_worlds: tuple[int, ...] = (2, 4, 8), local_batch: int = 1,
            local_steps: int = 3, budget_gb: float = 9.0,
            command: str = "flexsync bench scaling") -> str:
    """Per size: measured compute and selection, α-β priced communication for each world
    size (no overlap assumed: an upper bound on the step), and memory per worker; then the
    same step measured on ``local_worlds`` local worker processes (loopback gloo), with each
    worker's peak memory, for every size whose workers fit in ``budget_gb``."""
    from flexsync.report.plots import plot_scaling, plot_scaling_local

    beta = 1 / parse_bandwidth(bandwidth)
    start = _load()
    rows = {p: _scaling_row(p, ratio, batch, block) for p in presets}
    measured, skipped = _local_runs(presets, local_worlds, ratio, local_batch, block,
                                    local_steps, budget_gb)
    lines = ["# Step time against model size and world size\n", f"Command: `{command}`\n",
             f"Sizes: {', '.join(presets)} (the transformer presets; xl: width 1024, depth 8, "
             f"16 heads, {param_count_xl(block) / 1e6:.1f} M parameters). Compute: forward + "
             "backward, "
             f"batch {batch} × {block} tokens, one CPU thread, best of 2 after a warm-up; "
             f"selection: the adaptive selector at ratio {ratio:g} with its threshold carried "
             f"over (both measured in one process, {start} at start: a shared 2-core "
             f"machine). Communication: α-β priced at α = {alpha * 1e6:.0f} µs, {bandwidth}, "
             "with flexsync's wire sizes (fp16 values, coded indices; top-k = the cheaper of "
             "AG-Topk and ART-Ring; dense = fp32 ring allreduce). Step = compute + selection "
             "+ communication (no overlap: an upper bound). No GPU ran.\n",
             "Memory per worker beyond the model and its gradient: residual 4n bytes, "
             "selector work buffers 5n bytes (|g| and a mask), the error-fed vector 4n "
             "transiently (in place in the residual in the DDP hook and the local runs).\n",
             *_priced_lines(rows, ratio, worlds, alpha, beta),
             "\n## Measured on local workers (loopback gloo)\n",
             f"Each size on {', '.join(map(str, local_worlds))} worker processes of one CPU "
             "thread each, on the same 2 cores (so compute slows with the number of "
             "workers: these columns show contention, not scaling), batch "
             f"{local_batch} × {block} tokens, {local_steps} steps of which the first is a "
             "warm-up; per step: compute, the adaptive "
             f"selection at ratio {ratio:g}, flexsync's top-k allgather (fp16 values, coded "
             "indices) and a dense fp32 allreduce of the same gradient, each collective after "
             "a barrier; medians over steps, slowest rank. Per worker: tensors MB = the bytes of "
             "the tensors alive at the end of a step (parameters, gradients, the flat "
             "gradient, the residual, which holds the error-fed vector in place, and the "
             "selector's |g| and mask); private MB = the private resident memory the size "
             "added to the worker (largest at the end of a step, less before the model was "
             "built: the tensors plus allocator and message buffers; activations are freed "
             "by then).\n",
             *_local_table(measured),
             f"\nNot run (estimated {_worker_bytes(0) // 2**20} MB + 21 bytes per parameter "
             f"per worker over a {budget_gb:g} GB budget on a shared machine): "
             f"{', '.join(skipped) or 'none'}. Machine at the end: {_load()}.\n"]
    series = {p: {w: _comm_s(int(q["n"]), ratio, w, alpha, beta) for w in worlds}
              for p, q in rows.items()}
    png = plot_scaling(rows, series, out / "scaling.png")
    local_png = plot_scaling_local(measured, out / "scaling-local.png")
    lines.append(f"Plots: {png.name} (left: the parts of a step against model size at N = 8; "
                 f"right: step time against world size per size, α-β priced); "
                 f"{local_png.name} (measured on local workers: left, top-k allgather and "
                 "dense allreduce seconds against workers per size; right, private memory per "
                 "worker against parameters).")
    return _write(out, "scaling", "\n".join(lines))


def param_count_xl(block: int) -> int:
    """Parameters of the "xl" scaling size at context ``block`` (vocabulary 256)."""
    from flexsync.models.transformer import param_count

    return param_count(256, block, *SCALING_SIZES["xl"][:2])


def _write(out: Path, name: str, text: str) -> str:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(text + "\n")
    return text


SUITES = {"fidelity": fidelity, "overhead": overhead, "emulated": emulated,
          "kernels": kernels, "ddphook": ddphook, "scaling": scaling,
          "denseoverlap": denseoverlap}
