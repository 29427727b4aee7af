"""Benchmark suites (``flexsync bench SUITE``): measured, not part of the unit tests.

* ``fidelity``: predicted (α-β model) versus measured collective times on emulated links.
* ``overhead``: the dense strategy versus plain torch DDP on loopback, same model and batch.
* ``emulated``: every strategy side by side with dense BSP and DDP (+ PowerSGD / fp16 hooks)
  on an emulated slow link, one run each, same data and seed: wall-clock time to target.
* ``ddphook``: per-step time of DDP with flexsync's communication hook against plain torch
  DDP on loopback (the overhead a user of the hook pays where the network is fast).
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
            rounds: int = 2, command: str = "flexsync bench ddphook") -> str:
    """Per-step wall time of DDP + flexsync hook against plain torch DDP (loopback, gloo,
    an MLP of about 2.1 M parameters at width 1024, batch 32)."""
    from flexsync.launch import run_local

    params = sum(p.numel() for p in _mlp(width).parameters())
    start = _load()
    res = run_local(_hook_worker, workers, (width, steps, rounds), deadline_s=1800)
    best = {name: min(max(r[name][i] for r in res) for i in range(rounds)) for name in HOOK_RUNS}
    ddp = best["torch DDP"]
    lines = ["# DDP communication hook versus torch DDP (loopback)\n",
             f"Command: `{command}`\n",
             f"{workers} gloo workers on one machine, MLP of {params / 1e6:.2f} M parameters, "
             f"batch 32, SGD; DDP's default 25 MB buckets. Each configuration runs {rounds} "
             f"times in turn, {steps} steps each; a pass's figure is the median step after 5 "
             "warm-up steps on its slowest rank; the table shows each pass and the best.\n",
             f"Machine: {start} at start, {_load()} at the end (2 cores shared with other "
             "jobs: one run; the ratio is the figure).\n",
             "| configuration | ms per step (each pass) | best ms | vs torch DDP |",
             "|---|---|---|---|"]
    for name in HOOK_RUNS:
        passes = " / ".join(f"{1e3 * max(r[name][i] for r in res):.1f}" for i in range(rounds))
        lines.append(f"| {name} | {passes} | {1e3 * best[name]:.1f} | "
                     f"{best[name] / ddp:.2f}x |")
    return _write(out, "ddphook", "\n".join(lines))


def _scaling_row(preset: str, ratio: float, batch: int, block: int) -> dict[str, float]:
    """Measured on this process: one training step's compute (forward + backward of the
    preset on ``batch`` sequences of ``block`` tokens, best of 2 after a warm-up) and one
    steady-state adaptive selection of its flat gradient."""
    from flexsync.compress import Sparsifier
    from flexsync.models.transformer import TransformerLM

    model = TransformerLM.from_preset(preset, vocab=256, block=block)
    n = sum(p.numel() for p in model.parameters())
    tokens = torch.randint(256, (batch, block + 1), generator=torch.Generator().manual_seed(0))
    walls = []
    for _ in range(3):
        model.zero_grad()
        t0 = time.perf_counter()
        logits = model(tokens[:, :-1])
        torch.nn.functional.cross_entropy(logits.reshape(-1, 256),
                                          tokens[:, 1:].reshape(-1)).backward()
        walls.append(time.perf_counter() - t0)
    grad = torch.cat([p.grad.flatten() for p in model.parameters()])
    sp = Sparsifier(n, "adaptive", values="fp16")
    sp.select(sp.feed(grad), ratio)                                   # first: an estimate
    fed = sp.feed(1.02 * grad)                                        # the next step
    select_s, _ = _time(lambda: sp.select(fed, ratio), "cpu")
    return {"n": n, "compute_s": min(walls[1:]), "select_s": select_s}


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


def scaling(out: Path, presets: tuple[str, ...] = ("xs", "s", "m", "l"), ratio: float = 0.01,
            worlds: tuple[int, ...] = (2, 4, 8, 16, 64, 256, 1024), alpha: float = 50e-6,
            bandwidth: str = "10gbit", batch: int = 8, block: int = 128,
            command: str = "flexsync bench scaling") -> str:
    """Per preset: measured compute and selection, α-β priced communication for each world
    size (no overlap assumed: an upper bound on the step), and memory per worker."""
    from flexsync.report.plots import plot_scaling

    beta = 1 / parse_bandwidth(bandwidth)
    start = _load()
    rows = {p: _scaling_row(p, ratio, batch, block) for p in presets}
    lines = ["# Step time against model size and world size\n", f"Command: `{command}`\n",
             f"Compute: forward + backward of the transformer preset, batch {batch} × {block} "
             f"tokens, one CPU thread, best of 2 after a warm-up; selection: the adaptive "
             f"selector at ratio {ratio:g} with its threshold carried over (both measured here, "
             f"{start} at start: a shared machine). Communication: α-β priced at α = "
             f"{alpha * 1e6:.0f} µs, {bandwidth}, with flexsync's wire sizes (fp16 values, "
             "coded indices; top-k = the cheaper of AG-Topk and ART-Ring; dense = fp32 ring "
             "allreduce). Step = compute + selection + communication (no overlap: an upper "
             "bound). Not measured: worlds of 2–8 local processes (the 2-core machine was "
             "shared), 100 M parameters (no preset; selection at 100 M is in kernels.md), "
             "and any GPU.\n",
             "Memory per worker beyond the model and its gradient: residual 4n bytes, "
             "selector work buffers 5n bytes (|g| and a mask), the error-fed vector 4n "
             "transiently.\n",
             "| preset | parameters | compute s | selection s | comm s at N=8, top-k / dense "
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
    big = presets[-1]
    r = rows[big]
    lines += [f"\nWorld size, preset {big} ({r['n'] / 1e6:.1f} M parameters):\n",
              "| workers | comm s top-k | comm s dense | step s top-k | step s dense |",
              "|---|---|---|---|---|"]
    for w in worlds:
        c = _comm_s(int(r["n"]), ratio, w, alpha, beta)
        lines.append(f"| {w} | {c['topk']:.4f} | {c['dense']:.4f} | "
                     f"{r['compute_s'] + r['select_s'] + c['topk']:.3f} | "
                     f"{r['compute_s'] + c['dense']:.3f} |")
    series = {p: {w: _comm_s(int(q["n"]), ratio, w, alpha, beta) for w in worlds}
              for p, q in rows.items()}
    png = plot_scaling(rows, series, out / "scaling.png")
    lines.append(f"\nPlot: {png.name} (left: the parts of a step against model size at N = 8; "
                 "right: step time against world size per preset).")
    return _write(out, "scaling", "\n".join(lines))


def _write(out: Path, name: str, text: str) -> str:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(text + "\n")
    return text


SUITES = {"fidelity": fidelity, "overhead": overhead, "emulated": emulated,
          "kernels": kernels, "ddphook": ddphook, "scaling": scaling}
