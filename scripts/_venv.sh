# Sourced by the set-up commands: create/update the repository's virtual environment
# and install every package under packages/ (editable, with its test extras).
# torch comes from the pinned CPU wheel first; the packages' own ranges admit it,
# so pip never pulls a multi-GB CUDA build.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  "${PIP[@]}" "torch==2.13.0"
fi
# One pip call for all packages so the resolver sees every requirement at once. The installs
# are editable, so only a changed pyproject.toml needs a new one: a stamp of their hashes
# skips pip when nothing changed (a fresh clone has no stamp and always installs).
specs=()
for pkg in "$ROOT"/packages/*/; do
  [ -f "$pkg/pyproject.toml" ] && specs+=(-e "${pkg%/}[test]")
done
STAMP="$VENV/.packages-stamp"
want="$(cat "$ROOT"/packages/*/pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  "${PIP[@]}" "${specs[@]}" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
  test "${PIPESTATUS[0]}" -eq 0
  echo "$want" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
