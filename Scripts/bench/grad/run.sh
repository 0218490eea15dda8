#!/usr/bin/env bash
# One LoRA training step (forward + backward, r=8 on all seven projections, f32) on the
# qwen2.5-0.5b shapes with random weights, ours beside PyTorch + peft, same layers, tokens, threads.
# Usage: Scripts/bench/grad/run.sh [LAYERS=4] [T=256] [REPS=2] [THREADS=2]
# Ours runs as a gated test of the debug build (its Qwen2 and Training targets are compiled -O);
# build first with `swift build --build-tests`. Peak RSS of each side from /usr/bin/time -v.
set -euo pipefail
cd "$(dirname "$0")/../../.."
LAYERS=${1:-4}; T=${2:-256}; REPS=${3:-2}; THREADS=${4:-2}
PY=${PYTHON:-/work/main/.venv/bin/python}
ours=$(QWENFT_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS QWENFT_BENCH_GRAD=1 QWENFT_BENCH_SINGLE=1 \
       QWENFT_BENCH_CKPT=0 QWENFT_BENCH_LAYERS=$LAYERS QWENFT_BENCH_T=$T QWENFT_BENCH_REPS=$REPS \
       /usr/bin/time -v swift test --skip-build --filter loraStepOnQwen25Shapes 2>&1 | grep -E "^layers|Maximum resident")
torch=$(OMP_NUM_THREADS=$THREADS /usr/bin/time -v "$PY" Scripts/bench/grad/peer.py "$LAYERS" "$T" "$REPS" "$THREADS" 2>&1 \
        | grep -E "^torch|Maximum resident")
echo "$ours"
echo "$torch"
o=$(echo "$ours" | sed -n 's/.*: \([0-9.]*\) s\/step.*/\1/p')
p=$(echo "$torch" | sed -n 's/.*: \([0-9.]*\) s\/step.*/\1/p')
python3 -c "print(f'speed ratio (torch s/step ÷ ours): {$p / $o:.2f}×')"
