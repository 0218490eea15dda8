#!/usr/bin/env bash
# LoRA training speed and memory: qwenft vs PyTorch + peft in one run, on the same model folder
# and the same token ids. LoRA r=8 on all seven projections, f32, Qwen2.5-0.5B shapes with random
# weights (`qwenft init --preset qwen2.5-0.5b`), sequence 256, batch 1, AdamW, clipping.
# Prints tokens/s (steady state: the first step is left out), achieved GFLOP/s and peak RSS.
#
# Usage: Scripts/bench/train/run.sh
#   PYTHON   a python with torch, transformers, peft (default: .venv/bin/python, else python3)
#   THREADS  threads for both sides (default 2)
#   STEPS    optimizer steps per side (default 6)
#   SEQ      tokens per sequence (default 256)
#   CHECKPOINTING  true: qwenft with gradient_checkpointing (default false)
set -euo pipefail
cd "$(dirname "$0")/../../.."

PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
THREADS=${THREADS:-2}
STEPS=${STEPS:-6}
SEQ=${SEQ:-256}
VOCAB=${QWENFT_VOCAB:-.cache/qwen-vocab/qwen.tiktoken}
[ -f "$VOCAB" ] || { echo "train bench: no Qwen vocabulary at $VOCAB; run Scripts/fetch-vocab.sh" >&2; exit 1; }
work=$(mktemp -d)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT; echo "work: $work" >&2

swift build -c release --product qwenft >&2
bin=.build/release/qwenft
$bin init --preset qwen2.5-0.5b --tokenizer "$VOCAB" --out "$work/model" --seed 0 >&2

# Pre-training records (every token a target), each cut to SEQ tokens; the same ids go to torch.
"$PYTHON" - "$work" "$SEQ" "$STEPS" <<'PY'
import json, random, sys
work, seq, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(0)
words = "the model reads a sentence and predicts the next token of the text while the optimizer updates the adapter weights".split()
with open(f"{work}/data.jsonl", "w") as f:
    for _ in range(steps):
        f.write(json.dumps({"text": " ".join(random.choice(words) for _ in range(seq * 2))}) + "\n")
PY
cat > "$work/train.json" <<JSON
{"model_name_or_path": "$work/model", "train_file": "$work/data.jsonl", "output_dir": "$work/out",
 "train_mode": "lora", "lora_rank": 8, "lora_alpha": 16, "lora_dropout": 0.0, "lora_target_modules": "all-linear",
 "task_type": "pretrain", "max_seq_length": $SEQ, "per_device_train_batch_size": 1, "gradient_accumulation_steps": 1,
 "max_steps": $STEPS, "learning_rate": 1e-4, "lr_scheduler_type": "constant", "logging_steps": 1,
 "save_strategy": "no", "shuffle": false, "gradient_checkpointing": ${CHECKPOINTING:-false}}
JSON
echo "threads: $THREADS   sequence: $SEQ   steps: $STEPS   ($(lscpu | sed -n 's/^Model name: *//p'))"
QWENFT_CACHE=none /usr/bin/time -v -o "$work/ours.time" $bin train --config "$work/train.json" --threads "$THREADS" > "$work/ours.log"
# The ids qwenft trained on, for the torch side.
"$PYTHON" - "$work" "$SEQ" <<'PY'
import json, sys
from tokenizers import Tokenizer
work, seq = sys.argv[1], int(sys.argv[2])
tok = Tokenizer.from_file(f"{work}/model/tokenizer.json")
rows = [tok.encode(json.loads(l)["text"], add_special_tokens=False).ids[:seq] for l in open(f"{work}/data.jsonl")]
json.dump(rows, open(f"{work}/ids.json", "w"))
PY
OMP_NUM_THREADS=$THREADS /usr/bin/time -v -o "$work/torch.time" \
    "$PYTHON" Scripts/bench/train/torch_side.py "$work/model" "$work/ids.json" "$STEPS" "$THREADS" 8 > "$work/torch.json"

"$PYTHON" - "$work" <<'PY'
import json, re, sys
work = sys.argv[1]
def rss(side):
    t = open(f"{work}/{side}.time").read()
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024 / 1024
logs = [json.loads(l) for l in open(f"{work}/out/trainer_log.jsonl") if '"tokens_per_second"' in l]
steady = [l for l in logs if l["step"] > 1] or logs
# tokens/s of each logged interval weighted by its time: total tokens / total time after step 1.
times = []
prev = logs[0]["elapsed_s"] if len(logs) > 1 else 0.0
for l in steady:
    times.append(l["elapsed_s"] - prev); prev = l["elapsed_s"]
tokens = sum(l["tokens_per_second"] * dt for l, dt in zip(steady, times))
ours = tokens / sum(times)
torch_tps = json.load(open(f"{work}/torch.json"))["tokens_per_second"]
flops_per_token = 4 * (24 * (896 * 896 * 2 + 896 * 128 * 2 + 3 * 896 * 4864) + 151936 * 896)
for name, tps, side in (("qwenft", ours, "ours"), ("pytorch+peft", torch_tps, "torch")):
    print(f"{name:13s} {tps:7.1f} tokens/s  {tps * flops_per_token / 1e9:6.1f} GFLOP/s  peak RSS {rss(side):5.2f} GiB")
print(f"ratio: {ours / torch_tps:.2f}x tokens/s, {rss('ours') / rss('torch'):.2f}x peak RSS")
PY
