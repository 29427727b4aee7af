"""Forward + backward speed of the victim QNN: qtrojan's paths against PennyLane.

What: one training step's worth of work (logits of a batch, ``sum`` as the loss, backward to
the ansatz weights) for the design §1 circuit (RY encoding, ``ryrz`` ansatz with a CNOT ring,
``<Z_c>`` readout of the first min(n, 4) qubits), at several register sizes.

Why this way: the machine is shared, so absolute times move with the load. Within a round
the libraries take turns step by step (paired in time), each round's ratio comes from those
paired times, and the table reports the median over rounds of the per-round median times
and the median and min/max of the per-round ratios. The load average (``os.getloadavg``) is
recorded before and after. Every library's output (sum of ``<Z>``) is checked against ours
before timing.

Run (one thread, as the package does)::

    OMP_NUM_THREADS=1 .venv/bin/python packages/qtrojan/benchmarks/speed.py \
        --qubits 4 6 8 10 12 --out benchmarks/results/qtrojan-speed.md
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch

from qtrojan.qnn import QNN


def _interleaved_ms(steps: dict[str, Callable[[], None]], reps: dict[str, int]
                    ) -> dict[str, float]:
    """Median ms per library; the libraries take turns step by step (paired in time)."""
    for fn in steps.values():
        fn()  # warm-up (graph caches, lazy imports)
    times: dict[str, list[float]] = {k: [] for k in steps}
    for i in range(max(reps.values())):
        for name, fn in steps.items():
            if i < reps[name]:
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


def _ours(model: QNN, x: torch.Tensor, method: str) -> tuple[Callable[[], None], float]:
    def step() -> None:
        model.zero_grad()
        model(x, method=method).sum().backward()

    with torch.no_grad():
        total = float(model(x, method=method).sum()) / model.tau
    return step, total


def _pennylane(model: QNN, x: torch.Tensor, device: str) -> tuple[Callable[[], None], float]:
    import pennylane as qml

    n, n_classes = model.n_qubits, model.n_classes
    diff = "backprop" if device == "default.qubit" else "adjoint"
    dev = qml.device(device, wires=n)

    @qml.qnode(dev, interface="torch", diff_method=diff)
    def circuit(inputs: torch.Tensor, w: torch.Tensor) -> list:
        for i in range(n):
            qml.RY(inputs[:, i], wires=i)
        k = 0
        for _ in range(model.n_layers):
            for i in range(n):
                qml.RY(w[k], wires=i)
                qml.RZ(w[k + 1], wires=i)
                k += 2
            for i in range(n):
                qml.CNOT(wires=[i, (i + 1) % n])
        return [qml.expval(qml.PauliZ(c)) for c in range(n_classes)]

    w = model.weights.detach().double().clone().requires_grad_(True)
    xd = x.double()

    def step() -> None:
        w.grad = None
        torch.stack(circuit(xd, w)).sum().backward()

    with torch.no_grad():
        total = float(torch.stack(circuit(xd, w)).sum())
    return step, total


def run(qubits: list[int], layers: int, batch: int, rounds: int, reps: int,
        lightning_max: int) -> tuple[list[dict], tuple[float, float]]:
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    rows = []
    for n in qubits:
        model = QNN(n, layers, min(n, 4), seed=0)
        x = torch.rand(batch, n, generator=torch.Generator().manual_seed(n)) * math.pi
        libs = {"qtrojan fast": _ours(model, x, "fast"), "qtrojan kron": _ours(model, x, "kron"),
                "PL default.qubit": _pennylane(model, x, "default.qubit")}
        if n <= lightning_max:
            libs["PL lightning.qubit"] = _pennylane(model, x, "lightning.qubit")
        ref = libs["qtrojan fast"][1]
        for name, (_, total) in libs.items():
            if abs(total - ref) > 1e-3 * max(1.0, abs(ref)):
                raise RuntimeError(f"n={n}: {name} output sum {total} != ours {ref}")
        per_round: dict[str, list[float]] = {k: [] for k in libs}
        counts = {k: 1 if k == "PL lightning.qubit" else reps for k in libs}
        for _ in range(rounds):
            for name, ms in _interleaved_ms({k: v[0] for k, v in libs.items()},
                                            counts).items():
                per_round[name].append(ms)
        ratios = [d / f for d, f in zip(per_round["PL default.qubit"],
                                        per_round["qtrojan fast"], strict=True)]
        rows.append({"n": n, "times": {k: statistics.median(v) for k, v in per_round.items()},
                     "ratio_min": min(ratios), "ratio_max": max(ratios),
                     "ratio_median": statistics.median(ratios), "output_sum": ref})
        print(f"n={n}: " + ", ".join(f"{k} {statistics.median(v):.1f} ms"
                                     for k, v in per_round.items())
              + f"; default.qubit / fast = {statistics.median(ratios):.1f}x", flush=True)
    return rows, (load_before, os.getloadavg()[0])


def to_markdown(rows: list[dict], load: tuple[float, float], args: argparse.Namespace) -> str:
    import pennylane as qml

    names = ["qtrojan fast", "qtrojan kron", "PL default.qubit", "PL lightning.qubit"]
    lines = [
        "# qtrojan simulator speed: forward + backward",
        "",
        f"Command: `OMP_NUM_THREADS=1 .venv/bin/python packages/qtrojan/benchmarks/speed.py "
        f"--qubits {' '.join(map(str, args.qubits))} --layers {args.layers} --batch "
        f"{args.batch} --rounds {args.rounds} --reps {args.reps}`",
        "",
        f"Setup: victim QNN of design §1 (RY encoding, {args.layers} `ryrz` layers with a CNOT "
        f"ring, `<Z>` of min(n, 4) qubits), batch {args.batch}, loss = sum of outputs, one "
        f"torch thread; torch {torch.__version__}, PennyLane {qml.__version__}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs shared with other jobs. Load "
        f"average (1 min) {load[0]:.2f} before, {load[1]:.2f} after.",
        "",
        "PennyLane: `default.qubit` with `diff_method=\"backprop\"` and input broadcasting; "
        "`lightning.qubit` with `diff_method=\"adjoint\"` (it runs the broadcast batch as one "
        "tape per sample). `qtrojan kron` is the previous fast path, kept as a reference. "
        "Every library's output sum matched ours before timing.",
        "",
        "Times in ms: median over rounds of each round's median (within a round the libraries "
        "take turns step by step); the ratio columns are `default.qubit / qtrojan fast` per "
        "round (median, and min–max over rounds). lightning.qubit: one step per round.",
        "",
        "| n | " + " | ".join(names) + " | ratio (median) | ratio (min–max) |",
        "|" + "---|" * (len(names) + 3),
    ]
    for r in rows:
        cells = [f"{r['times'][k]:.1f}" if k in r["times"] else "not run" for k in names]
        lines.append(f"| {r['n']} | " + " | ".join(cells) + f" | {r['ratio_median']:.1f}x | "
                     f"{r['ratio_min']:.1f}–{r['ratio_max']:.1f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--qubits", type=int, nargs="+", default=[4, 6, 8, 10, 12])
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--lightning-max", type=int, default=12,
                   help="largest n at which lightning.qubit is timed (it is slow here)")
    p.add_argument("--out", help="write the markdown table here")
    args = p.parse_args()
    rows, load = run(args.qubits, args.layers, args.batch, args.rounds, args.reps,
                     args.lightning_max)
    text = to_markdown(rows, load, args)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
