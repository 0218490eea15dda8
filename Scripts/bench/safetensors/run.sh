#!/usr/bin/env bash
# Loading and saving a Qwen2.5-0.5B-sized bf16 safetensors file (494M parameters, 988 MB):
# read every tensor widened to fp32, then narrow back to bf16 and save — qwenft (mmap, threaded
# conversion, writes through a mapping) against Python (safetensors.torch.load_file, .float(),
# .to(bfloat16), save_file). Both outputs must equal the input byte for byte (bf16 → fp32 → bf16
# is lossless), which also shows our writer's bytes equal Python's at full size.
#
# Usage: Scripts/bench/safetensors/run.sh
#   PYTHON  a python with torch and safetensors (default: .venv/bin/python, else python3)
#   QWENFT_THREADS  threads for both sides (default: the core count)
set -euo pipefail
cd "$(dirname "$0")/../../.."

PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
threads=${QWENFT_THREADS:-$(nproc)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

swift build -c release --product qwenft-bench >&2
"$PYTHON" Scripts/bench/safetensors/python_side.py make "$work/in.safetensors"
echo "threads: $threads"
QWENFT_THREADS=$threads /usr/bin/time -v -o "$work/ours.time" \
    .build/release/qwenft-bench roundtrip "$work/in.safetensors" "$work/ours.safetensors"
OMP_NUM_THREADS=$threads /usr/bin/time -v -o "$work/python.time" \
    "$PYTHON" Scripts/bench/safetensors/python_side.py roundtrip "$work/in.safetensors" "$work/python.safetensors"
for side in ours python; do
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/$side.time")
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/$side.time")
    echo "$side: wall $wall, peak RSS $((rss / 1024)) MiB"
done
cmp "$work/in.safetensors" "$work/ours.safetensors" && echo "qwenft output == input, byte for byte"
cmp "$work/in.safetensors" "$work/python.safetensors" && echo "python output == input, byte for byte"
