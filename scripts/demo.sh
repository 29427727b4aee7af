#!/usr/bin/env bash
# The main job: a short flexsync demo (installs everything it needs first).
# Four workers train on synthetic images under a slow modeled network (1 ms, 100 Mbit/s);
# each strategy is one run, and a results table is printed at the end.
# Extra arguments go to `flexsync demo` (e.g. --steps 200 --workers 3).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
cd "$ROOT"
export OMP_NUM_THREADS=1 MPLBACKEND=Agg
flexsync demo "$@"
