#!/usr/bin/env bash
# Tokenizer speed: qwenft (release) vs tiktoken vs HF tokenizers, single-threaded, on the same
# >= 1 MB hard corpus (Scripts/fixtures/tokenizer_corpus.py) and on Chinese-only text; plus
# qwenft's batch API on all cores, vocabulary load time and peak RSS.
#   Scripts/bench/tokenizer/run.sh            (PYTHON=/path/to/python to override the venv)
set -euo pipefail
cd "$(dirname "$0")/../../.."
PYTHON="${PYTHON:-.venv/bin/python}"
VOCAB="${QWENFT_VOCAB:-$(Scripts/fetch-vocab.sh)}"
swift build -c release --product qwenft-bench 2>&1 | grep -E "error|Compiling|Build complete" || true
exec "$PYTHON" Scripts/bench/tokenizer/run.py "$VOCAB" "$(swift build -c release --show-bin-path)/qwenft-bench"
