#!/usr/bin/env bash
# The main job: a short flexsync demo (installs everything it needs first).
# Four workers train a ResNet on the hard synthetic image task under a modeled 20 Mbit/s link:
# dense, fixed 100x top-k, Accordion, SelSync and torch DDP with PyTorch's PowerSGD hook
# (rank 4), one run each; the table gives each one's modeled time to dense quality (dense's
# final accuracy minus 1 point). About 2-3 minutes on an idle 2-core machine.
# Extra arguments go to `flexsync demo` (e.g. --steps 150 --workers 3 --seed 1).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
cd "$ROOT"
export OMP_NUM_THREADS=1 MPLBACKEND=Agg
flexsync demo "$@"
