#!/usr/bin/env bash
# DPO on the CPU in about two minutes after the build (task_type dpo, Configs/dpo-quickstart.json):
#   1. `qwenft init` the tiny random model (as Scripts/quickstart.sh does)
#   2. SFT: a LoRA adapter on Configs/data/dpo-demo-sft.jsonl — for each of 32 questions both a
#      polite answer ("Certainly! … I hope this helps.") and a rude one ("No. Ask someone else."),
#      one of each, so the SFT model has no preference between the styles; merged into the base
#   3. how the SFT model answers 8 held-out questions (greedy)
#   4. DPO: a new LoRA adapter on Configs/data/dpo-demo.jsonl (the same 32 questions, chosen =
#      the polite answer, rejected = the rude one), the reference being the SFT model; eval on
#      the 8 held-out pairs (Configs/data/dpo-demo-eval.jsonl, TRL's conversational shape)
#   5. the same 8 questions after DPO, and how many answers take each style before and after
#
# Nothing is tuned to the held-out questions; they are only looked at in steps 3 and 5. What the
# run shows: rewards/accuracies and rewards/margins rising on train and held-out pairs, and the
# greedy answers moving to the chosen style. (The tiny model is random, so the words after
# "Certainly!" are noise: style is what it can learn in two minutes.)
#
# Usage: Scripts/dpo-quickstart.sh          (THREADS=N)
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-$(nproc)}
model=models/quickstart-tiny
sft=runs/dpo-demo-sft
sftModel=models/dpo-demo-sft
run=runs/dpo-quickstart
mkdir -p models runs
for d in models runs; do [ -f $d/.gitignore ] || echo '*' > $d/.gitignore; done
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
quiet() { grep -vE '^(  |\{|\}|qwenft train: resolved config)'; }

step "1/5 build, vocabulary, a random tiny Qwen2 model"
[ -x .build/release/qwenft ] && [ -z "${REBUILD:-}" ] || Scripts/setup.sh
qwenft=.build/release/qwenft
vocab=$(Scripts/fetch-vocab.sh)
$qwenft init --preset tiny --tokenizer "$vocab" --out "$model" --seed 1 --init-std 0.3

step "2/5 SFT on both styles, merged"
$qwenft train --config Configs/quickstart.json --model_name_or_path "$model" --train_file Configs/data/dpo-demo-sft.jsonl \
    --output_dir "$sft" --max_steps 160 --logging_steps 40 --threads "$THREADS" | quiet
$qwenft merge --base "$model" --adapter "$sft" --out "$sftModel" --threads "$THREADS"

answers() {  # model [adapter] → one line per held-out question, then the style counts
    "${PYTHON:-python3}" - "$qwenft" "$THREADS" "$@" <<'PY'
import json, subprocess, sys
qwenft, threads, model, adapter = sys.argv[1], sys.argv[2], sys.argv[3], (sys.argv[4:] or [None])[0]
polite = rude = other = 0
for line in open("Configs/data/dpo-demo-eval.jsonl", encoding="utf-8"):
    q = json.loads(line)["prompt"][-1]["content"]
    cmd = [qwenft, "generate", "--model", model, "--prompt", q, "--greedy", "--max-new-tokens", "16", "--json", "--threads", threads]
    if adapter: cmd += ["--adapter", adapter]
    text = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)["text"]
    style = "chosen" if text.startswith(("Certainly!", "好的")) else "rejected" if text.startswith(("No.", "不")) else "other"
    polite += style == "chosen"; rude += style == "rejected"; other += style == "other"
    print(f"  [{style:8s}] {q!r} → {text[:60]!r}")
print(f"  chosen style {polite}, rejected style {rude}, other {other} (of {polite + rude + other})")
PY
}

step "3/5 the SFT model on 8 held-out questions"
answers "$sftModel"

step "4/5 DPO (Configs/dpo-quickstart.json): the reference is the SFT model"
$qwenft train --config Configs/dpo-quickstart.json --model_name_or_path "$sftModel" --output_dir "$run" --threads "$THREADS" | quiet

step "5/5 after DPO, the same questions"
answers "$sftModel" "$run"
echo
echo "The adapter: $run (PEFT format); its log with TRL's metric names: $run/trainer_log.jsonl"
