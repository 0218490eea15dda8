#!/usr/bin/env bash
# Dataset preprocessing: a generated 10k-record dataset (every record shape) rendered with the
# Qwen2.5 chat template, tokenised on the real vocabulary, labelled; then the cache-hit load and
# one epoch of packing + batching. Peer: transformers' apply_chat_template(tokenize=True,
# return_assistant_tokens_mask=True) on the same file, one process (what a Trainer script does
# before datasets.map(num_proc=…)).
#   Scripts/bench/data/run.sh [THREADS] [RECORDS]     (default 2, 10000)
set -euo pipefail
cd "$(dirname "$0")/../../.."
THREADS=${1:-2}
RECORDS=${2:-10000}
PY=${PYTHON:-/work/main/.venv/bin/python}
DATA=${QWENFT_BENCH_DATA:-/tmp/qwenft-bench-data}
export QWENFT_VOCAB=${QWENFT_VOCAB:-$PWD/.cache/qwen-vocab/qwen.tiktoken}
# -enable-testing: the test targets use @testable imports.
swift build -c release --build-tests -Xswiftc -enable-testing >/dev/null
echo "== qwenft (threads=$THREADS)"
QWENFT_BENCH=1 QWENFT_THREADS=$THREADS QWENFT_BENCH_RECORDS=$RECORDS QWENFT_BENCH_DATA=$DATA /usr/bin/time -v \
  swift test -c release -Xswiftc -enable-testing --skip-build --filter DataBenchmarks 2>&1 | grep -E "BENCH|Maximum resident" | sed 's/^.*BENCH/BENCH/'
echo "== transformers"
/usr/bin/time -v "$PY" Scripts/bench/data/peer.py "$DATA/data.jsonl" 2>&1 | grep -E "BENCH|Maximum resident"
