"""CPU time of QTrojan's exhaustive basis search above the unitary limit (13-16 qubits).

What: for each register size and depth, the CPU seconds of the margins of all 2^n basis states
from the operator-Schmidt split (:mod:`qtrojan.bipartite`; what ``select_target_state`` uses
above 12 qubits), against the path it replaced, the 2^n basis states run through the
planned simulator 256 at a time. The old path is timed on ``--sample-chunks`` chunks of
consecutive basis states and extrapolated linearly to all 2^n / 256 chunks (every chunk does the
same work). The margins of the sampled states from both paths are compared.

Why CPU seconds: the machine is shared and loaded, so wall time mostly measures the other jobs;
``time.process_time`` counts this process only (one torch thread).

Run::

    OMP_NUM_THREADS=1 .venv/bin/python packages/qtrojan/benchmarks/target_search.py \
        --qubits 14 16 --layers 2 4 --out benchmarks/results/qtrojan-target-search.md
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

from qtrojan.attacks.qtrojan import (
    _basis_margins,
    _basis_margins_chunked,
    encoder_and_ansatz,
)
from qtrojan.qnn import QNN

CHUNK = 256


def measure(n: int, layers: int, sample_chunks: int, seed: int) -> dict[str, float]:
    """One row: split search CPU s, extrapolated chunked CPU s, agreement on sampled states."""
    model = QNN(n, layers, 2, seed=seed)
    _, ansatz = encoder_and_ansatz(model.circuit)
    c0 = time.process_time()
    margins = _basis_margins(model, ansatz, 0, CHUNK)  # the split wherever it is feasible
    split_s = time.process_time() - c0
    diffs, chunk_s = [], 0.0
    for k in range(sample_chunks):  # chunks spread over the index range
        first = (k * (2**n // sample_chunks)) // CHUNK * CHUNK
        c1 = time.process_time()
        old = _basis_margins_chunked(model, ansatz, 0, CHUNK, first, first + CHUNK)
        chunk_s += time.process_time() - c1
        diffs.append(float((old - margins[first:first + CHUNK]).abs().max()))
    return {"n": n, "layers": layers, "split_cpu_s": split_s,
            "chunked_cpu_s": chunk_s / sample_chunks * (2**n // CHUNK),
            "max_abs_diff": max(diffs)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--qubits", type=int, nargs="+", default=[14, 16])
    p.add_argument("--layers", type=int, nargs="+", default=[2, 4])
    p.add_argument("--sample-chunks", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    torch.set_num_threads(1)
    load0 = os.getloadavg()[0]
    rows = [measure(n, layers, a.sample_chunks, a.seed) for n in a.qubits for layers in a.layers]
    load1 = os.getloadavg()[0]
    lines = ["| qubits | layers | split search (CPU s) | chunked simulator, extrapolated (CPU s) "
             "| ratio | max abs margin difference on sampled states |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['n']} | {r['layers']} | {r['split_cpu_s']:.1f} | "
                     f"{r['chunked_cpu_s']:.1f} | {r['chunked_cpu_s'] / r['split_cpu_s']:.0f}x | "
                     f"{r['max_abs_diff']:.1e} |")
    table = "\n".join(lines)
    print(table)
    if a.out:
        cmd = ("OMP_NUM_THREADS=1 .venv/bin/python packages/qtrojan/benchmarks/target_search.py "
               f"--qubits {' '.join(map(str, a.qubits))} --layers "
               f"{' '.join(map(str, a.layers))} --sample-chunks {a.sample_chunks} "
               f"--seed {a.seed} --out {a.out}")
        a.out.write_text(
            "# qtrojan: exhaustive basis search above 12 qubits\n\n"
            f"Command: `{cmd}`\n\n"
            f"torch {torch.__version__}, Python {platform.python_version()}, one thread; "
            f"load average (1 min) {load0:.1f} before, {load1:.1f} after. Random victims "
            f"(seed {a.seed}), 2 classes, target 0. CPU seconds of this process "
            "(`time.process_time`).\n\n" + table + "\n")


if __name__ == "__main__":
    main()
