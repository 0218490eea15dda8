#!/usr/bin/env bash
# Optimizer-side kernels (chunked cross-entropy fwd+bwd over the Qwen2 vocabulary, AdamW step,
# global-norm clipping) against PyTorch on the same shapes and thread count.
#   Scripts/bench/optim/run.sh [THREADS]     (default 2)
# Builds the tests in release with -enable-testing (the kernels are -O in debug too) and runs
# the QWENFT_BENCH suite, then the PyTorch peer; prints times, element rates and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/../../.."
THREADS=${1:-2}
PY=${PYTHON:-/work/main/.venv/bin/python}
swift build -c release --build-tests -Xswiftc -enable-testing | grep -E "error|Build" || true
echo "== qwenft"
QWENFT_BENCH=1 QWENFT_THREADS=$THREADS /usr/bin/time -v swift test -c release -Xswiftc -enable-testing --skip-build --filter KernelBenchmarks 2>&1 \
  | grep -E "BENCH|Maximum resident" | sed 's/^.*BENCH/BENCH/'
echo "== torch"
OMP_NUM_THREADS=$THREADS /usr/bin/time -v "$PY" Scripts/bench/optim/torch_peer.py "$THREADS" 2>&1 | grep -E "BENCH|Maximum resident"
