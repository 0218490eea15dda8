#!/usr/bin/env bash
# GEMM throughput on the Qwen2.5-0.5B Linear shapes at T=256 tokens (896x896, 896x4864, 4864x896,
# 896x151936; forward NT, input-gradient NN, weight-gradient TN): qwenft's cblas_sgemm wrappers
# (Debian's OpenBLAS) against numpy's matmul (its bundled OpenBLAS), same thread count, one run.
#
# Usage: Scripts/bench/gemm/run.sh [--tokens T] [--repeats R]
# The two sides run alternately for PASSES passes (default 2) and each product's best time is kept,
# so load from other processes on a shared machine hits both alike.
#   PYTHON      a python with numpy (default: .venv/bin/python, else python3)
#   QWENFT_THREADS  threads for both sides (default: the core count)
#   PASSES      alternating passes of both sides (default 2)
set -euo pipefail
cd "$(dirname "$0")/../../.."

PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
"$PYTHON" -c "import numpy" 2>/dev/null || { echo "gemm bench: $PYTHON has no numpy; set PYTHON=" >&2; exit 1; }
threads=${QWENFT_THREADS:-$(nproc)}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

swift build -c release --product qwenft-bench >&2
echo "threads: $threads   ($(lscpu | sed -n 's/^Model name: *//p'))"
for _ in $(seq "${PASSES:-2}"); do
    QWENFT_THREADS=$threads /usr/bin/time -v -a -o "$out/ours.time" \
        .build/release/qwenft-bench gemm --json "$@" >> "$out/ours.jsonl"
    OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads /usr/bin/time -v -a -o "$out/numpy.time" \
        "$PYTHON" Scripts/bench/gemm/numpy_gemm.py "$@" >> "$out/numpy.jsonl"
done
"$PYTHON" Scripts/bench/gemm/numpy_gemm.py compare "$out/ours.jsonl" "$out/numpy.jsonl" "$out/ours.time" "$out/numpy.time"
