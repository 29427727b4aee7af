#!/usr/bin/env bash
# Run every package's test suite (installs everything it needs first).
# Usage: scripts/test.sh [PACKAGE ...]   e.g. scripts/test.sh flexsync
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
cd "$ROOT"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg
pkgs=("$@")
if [ ${#pkgs[@]} -eq 0 ]; then
  for p in packages/*/; do [ -d "$p/tests" ] && pkgs+=("$(basename "$p")"); done
fi
status=0
for name in "${pkgs[@]}"; do
  echo "=== $name ==="
  (cd "packages/$name" && python -m pytest -q tests) || status=1
done
exit $status
