#!/usr/bin/env bash
# The headline: QLoRA of a Qwen2.5-7B-shaped model on a CPU box. Makes a random bf16 model with
# the released 7B shapes (`qwenft init --preset qwen2.5-7b`: hidden 3584, 28 layers, GQA 28:4,
# intermediate 18944, untied, vocabulary 152064; about 15 GB on disk), trains QLoRA r 64
# all-linear (NF4 base, double quantisation), sequence 512, batch 1, gradient checkpointing, for
# STEPS steps, prints the peak RSS and seconds per step, and deletes the model and the adapter.
# With PEER=/path/to/python (transformers + bitsandbytes + peft), the same steps on the same model
# and ids through peer.py afterwards (r 64, alpha 16, dropout 0.05, gradient checkpointing): only
# for a few layers (LAYERS=2): on all 28 it needs far more memory and time than this machine has.
#
#   Scripts/bench/qlora/qwen7b.sh        # WORK=/tmp/… STEPS=2 THREADS=2 LAYERS=28
#   LAYERS=2 PEER=.venv/bin/python Scripts/bench/qlora/qwen7b.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
THREADS=${THREADS:-2}; STEPS=${STEPS:-2}; SEQ=${SEQ:-512}; LAYERS=${LAYERS:-28}
VOCAB=${QWENFT_VOCAB:-.cache/qwen-vocab/qwen.tiktoken}
work=${WORK:-$(mktemp -d /tmp/qwenft-bench-7b.XXXXXX)}
mkdir -p "$work"
trap 'rm -rf "$work/model" "$work/out"' EXIT
swift build -c release --product qwenft >&2
bin=.build/release/qwenft
echo "init: $(date -u +%T)"
/usr/bin/time -v -o "$work/init.time" $bin init --preset qwen2.5-7b --layers "$LAYERS" --dtype bfloat16 --tokenizer "$VOCAB" \
    --out "$work/model" --seed 0 --threads "$THREADS" >/dev/null
du -sh "$work/model"
"${PYTHON:-python3}" - "$work" "$SEQ" "$STEPS" <<'PY'
import json, random, sys
work, seq, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(0)
words = "the model reads a sentence and predicts the next token of the text while the optimizer updates the adapter weights".split()
with open(f"{work}/data.jsonl", "w") as f:
    for _ in range(steps):
        f.write(json.dumps({"text": " ".join(random.choice(words) for _ in range(seq * 2))}) + "\n")
PY
cat > "$work/qlora.json" <<JSON
{"model_name_or_path": "$work/model", "train_file": "$work/data.jsonl", "output_dir": "$work/out",
 "train_mode": "qlora", "bnb_4bit_use_double_quant": true, "lora_rank": 64, "lora_alpha": 16, "lora_dropout": 0.05,
 "lora_target_modules": "all-linear", "task_type": "pretrain", "max_seq_length": $SEQ, "per_device_train_batch_size": 1,
 "gradient_accumulation_steps": 1, "gradient_checkpointing": true, "max_steps": $STEPS, "learning_rate": 1e-4,
 "lr_scheduler_type": "constant", "logging_steps": 1, "save_strategy": "no", "shuffle": false, "overwrite_output_dir": true}
JSON
echo "train: $(date -u +%T)"
QWENFT_CACHE=none /usr/bin/time -v -o "$work/train.time" $bin train --config "$work/qlora.json" --threads "$THREADS" > "$work/train.log" 2>&1
echo "done: $(date -u +%T)"
grep -E "NF4|quantis" "$work/train.log" | tail -3 || true
"${PYTHON:-python3}" - "$work" <<'PY'
import json, re, sys
work = sys.argv[1]
logs = [json.loads(l) for l in open(f"{work}/out/trainer_log.jsonl") if '"elapsed_s"' in l and '"loss"' in l]
prev = 0.0
for l in logs:
    print(f"step {l['step']}: loss {l['loss']:.4f}  at {l['elapsed_s']:.1f} s  ({l['elapsed_s'] - prev:.1f} s)")
    prev = l["elapsed_s"]
t = open(f"{work}/train.time").read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024 / 1024
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", t).group(1)
print(f"peak RSS {rss:.2f} GiB, wall {wall} (loading and quantising included)")
PY
if [ -n "${PEER:-}" ]; then
  "$PEER" - "$work" "$SEQ" <<'PY'
import json, sys
from tokenizers import Tokenizer
work, seq = sys.argv[1], int(sys.argv[2])
tok = Tokenizer.from_file(f"{work}/model/tokenizer.json")
rows = [tok.encode(json.loads(l)["text"], add_special_tokens=False).ids[:seq] for l in open(f"{work}/data.jsonl")]
json.dump(rows, open(f"{work}/ids.json", "w"))
PY
  echo "peer: $(date -u +%T)"
  OMP_NUM_THREADS=$THREADS /usr/bin/time -v -o "$work/peer.time" "$PEER" Scripts/bench/qlora/peer.py "$work/model" "$work/ids.json" \
      "$STEPS" "$THREADS" 64 16 0.05 1 > "$work/peer.json" 2>"$work/peer.err" || { tail -n 20 "$work/peer.err" >&2; exit 1; }
  grep -E "^peer" "$work/peer.err" || true
  "$PEER" - "$work" <<'PY'
import json, re
import sys
work = sys.argv[1]
t = open(f"{work}/peer.time").read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024 / 1024
steps = json.load(open(f"{work}/peer.json"))["step_seconds"]
print(f"peft+bnb: steps {', '.join(f'{x:.1f}' for x in steps)} s, peak RSS {rss:.2f} GiB")
PY
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
