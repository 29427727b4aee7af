#!/usr/bin/env bash
# flexsync on a GPU machine (issue 20): the CUDA tests (every strategy on CUDA tensors over
# NCCL, selection and wire coding on the device) and the top-k kernel benchmark with its CUDA
# rows. Under 5 minutes on one GPU; results go to benchmarks/results/gpu/.
#   bash benchmarks/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python; fi
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
export OMP_NUM_THREADS=1
(cd packages/flexsync && timeout 240 "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py)
timeout 200 "$PY" -m flexsync bench kernels --threads 1 \
    --sizes 1000000 10000000 25000000 100000000 --out benchmarks/results/gpu
