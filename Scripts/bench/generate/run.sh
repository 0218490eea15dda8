#!/usr/bin/env bash
# Generation speed and memory, qwenft vs transformers, in one run:
# the qwen2.5-0.5b preset (random weights, `qwenft init`), a 32-token prompt, 64 new tokens,
# greedy, 2 threads, in float32 and bfloat16. Prints tokens/s (decode, and overall incl. prefill),
# prefill tokens/s, peak RSS, the ratio, and whether both produced the same ids.
#
#   Scripts/bench/generate/run.sh            # PYTHON=.venv/bin/python by default
#   THREADS=2 NEW=64 DTYPES="float32 bfloat16 float16" Scripts/bench/generate/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
PYTHON="${PYTHON:-.venv/bin/python}"
THREADS="${THREADS:-2}"
NEW="${NEW:-64}"
DTYPES="${DTYPES:-float32 bfloat16}"
WORK="${WORK:-$(mktemp -d /tmp/qwenft-bench-generate.XXXXXX)}"

swift build -c release --product qwenft >/dev/null
BIN=.build/release/qwenft
VOCAB="${QWENFT_VOCAB:-.cache/qwen-vocab/qwen.tiktoken}"
# 32 token ids from the real vocabulary (the same ids for both sides, so no tokenizer differences).
PROMPT_IDS="[785, 3974, 13876, 38835, 34208, 916, 279, 15678, 5562, 13, 576, 3974, 13876, 38835, 34208, 916, 279, 15678, 5562, 13, 1096, 374, 264, 1273, 315, 279, 9471, 4628, 315, 1207, 16948, 17]"

# On a shared machine wall-clock rates move with the load; the process CPU seconds (user + sys,
# loading included) are printed beside them as a steadier yardstick.
printf "%-9s %-13s %10s %10s %12s %11s %9s\n" dtype engine "decode t/s" "total t/s" "prefill t/s" "peak RSS" "CPU s"
for DTYPE in $DTYPES; do
  MODEL="$WORK/qwen2.5-0.5b-$DTYPE"
  [ -f "$MODEL/model.safetensors" ] || "$BIN" init --preset qwen2.5-0.5b --dtype "$DTYPE" --tokenizer "$VOCAB" --out "$MODEL" >/dev/null

  /usr/bin/time -v "$BIN" generate --model "$MODEL" --prompt-ids "$PROMPT_IDS" --max-new-tokens "$NEW" \
      --greedy --repetition-penalty 1 --ignore-eos --threads "$THREADS" --json \
      >"$WORK/ours.json" 2>"$WORK/ours.err"
  ours_rss=$(awk '/Maximum resident/ {print $6}' "$WORK/ours.err")
  ours_dec=$(sed -n 's/^\[[0-9]* tokens, \([0-9.]*\) tokens\/s;.*/\1/p' "$WORK/ours.err")
  ours_pre=$(sed -n 's/.*prefill [0-9]* tokens, \([0-9.]*\) tokens\/s;.*/\1/p' "$WORK/ours.err")
  ours_tot=$(sed -n 's/.*total \([0-9.]*\) tokens\/s.*/\1/p' "$WORK/ours.err")
  ours_cpu=$(awk '/User time|System time/ {s += $4} END {printf "%.1f", s}' "$WORK/ours.err")

  /usr/bin/time -v "$PYTHON" Scripts/bench/generate/peer.py "$MODEL" "$PROMPT_IDS" "$NEW" "$THREADS" "$DTYPE" \
      >"$WORK/peer.json" 2>"$WORK/peer.err"
  peer_rss=$(awk '/Maximum resident/ {print $6}' "$WORK/peer.err")
  peer_cpu=$(awk '/User time|System time/ {s += $4} END {printf "%.1f", s}' "$WORK/peer.err")
  read -r peer_dec peer_tot peer_pre same < <("$PYTHON" - "$WORK/peer.json" "$WORK/ours.json" "$DTYPE" <<'PY'
import json, sys
p = json.load(open(sys.argv[1])); o = json.load(open(sys.argv[2])); dtype = sys.argv[3]
n, T = p["new_tokens"], p["prompt_tokens"]
same = "same" if p["ids"] == o["ids"] else ("DIFFERENT" if dtype == "float32" else "differ:torch-computes-in-" + ("bf16" if dtype == "bfloat16" else "f16"))
print(f'{(n - 1) / (p["total_s"] - p["prefill_s"]):.2f} {n / p["total_s"]:.2f} {T / p["prefill_s"]:.1f} {same}')
PY
)
  printf "%-9s %-13s %10s %10s %12s %8d MB %9s\n" "$DTYPE" qwenft "$ours_dec" "$ours_tot" "$ours_pre" $((ours_rss / 1024)) "$ours_cpu"
  printf "%-9s %-13s %10s %10s %12s %8d MB %9s\n" "$DTYPE" transformers "$peer_dec" "$peer_tot" "$peer_pre" $((peer_rss / 1024)) "$peer_cpu"
  awk -v a="$ours_dec" -v b="$peer_dec" -v c="$ours_tot" -v d="$peer_tot" -v s="$same" -v t="$DTYPE" \
    'BEGIN { printf "%-9s ratio         %9.2fx %9.2fx   (greedy ids: %s)\n", t, a / b, c / d, s }'
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)   models and logs in $WORK"
