#!/usr/bin/env bash
# DPO training speed and memory: qwenft vs trl.DPOTrainer + peft in one run, on the same model
# folder and the same preference records. LoRA r 8 on all seven projections, f32, Qwen2.5-0.5B
# shapes with random weights (`qwenft init --preset qwen2.5-0.5b`), batch 1 pair whose chosen and
# rejected sequences are both cut to SEQ tokens (prompt ≈ SEQ/2), sigmoid loss, reference = the
# base (adapter off in TRL, the adapter's weights swapped here), AdamW, clipping.
# Prints seconds per optimizer step (median of the steps after the first, with min–max), the
# ratio, and the peak RSS of both sides.
#
# Usage: Scripts/bench/dpo/run.sh
#   PYTHON   a python with torch, transformers, peft, trl 1.16, datasets (default .venv/bin/python)
#   THREADS  threads for both sides (default 2)
#   STEPS    optimizer steps per side (default 4)
#   SEQ      tokens per sequence (default 256)
set -euo pipefail
cd "$(dirname "$0")/../../.."

PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
THREADS=${THREADS:-2}
STEPS=${STEPS:-4}
SEQ=${SEQ:-256}
VOCAB=${QWENFT_VOCAB:-.cache/qwen-vocab/qwen.tiktoken}
[ -f "$VOCAB" ] || { echo "dpo bench: no Qwen vocabulary at $VOCAB; run Scripts/fetch-vocab.sh" >&2; exit 1; }
work=$(mktemp -d)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT; echo "work: $work" >&2

[ -n "${NOBUILD:-}" ] || swift build -c release --product qwenft >&2
bin=.build/release/qwenft
$bin init --preset qwen2.5-0.5b --tokenizer "$VOCAB" --out "$work/model" --seed 0 >&2

# Firefly-shaped preference records, long enough that both sequences reach SEQ tokens.
"$PYTHON" - "$work" "$SEQ" "$STEPS" <<'PY'
import json, random, sys
work, seq, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(0)
words = "the model reads a sentence and predicts the next token of the text while the optimizer updates the adapter weights".split()
say = lambda n: " ".join(random.choice(words) for _ in range(n))
with open(f"{work}/data.jsonl", "w") as f:
    for _ in range(steps):
        q = say(seq // 2 - 30)
        f.write(json.dumps({"chosen": [{"role": "user", "content": q}, {"role": "assistant", "content": say(seq)}],
                            "rejected": [{"role": "user", "content": q}, {"role": "assistant", "content": say(seq)}]}) + "\n")
PY
cat > "$work/train.json" <<JSON
{"model_name_or_path": "$work/model", "train_file": "$work/data.jsonl", "output_dir": "$work/out",
 "task_type": "dpo", "beta": 0.1, "train_mode": "lora", "lora_rank": 8, "lora_alpha": 16, "lora_dropout": 0.0,
 "lora_target_modules": "all-linear", "max_seq_length": $SEQ, "per_device_train_batch_size": 1,
 "gradient_accumulation_steps": 1, "max_steps": $STEPS, "learning_rate": 1e-4, "lr_scheduler_type": "constant",
 "logging_steps": 1, "save_strategy": "no", "shuffle": false}
JSON
echo "threads: $THREADS   sequence: $SEQ (chosen and rejected)   steps: $STEPS   ($(lscpu | sed -n 's/^Model name: *//p'))"
QWENFT_CACHE=none /usr/bin/time -v -o "$work/ours.time" $bin train --config "$work/train.json" --threads "$THREADS" > "$work/ours.log"
OMP_NUM_THREADS=$THREADS /usr/bin/time -v -o "$work/trl.time" \
    "$PYTHON" Scripts/bench/dpo/trl_side.py "$work/model" "$work/data.jsonl" "$STEPS" "$THREADS" "$SEQ" 8 2>"$work/trl.err" | tail -n 1 > "$work/trl.json" \
    || { tail -n 20 "$work/trl.err" >&2; exit 1; }

"$PYTHON" - "$work" <<'PY'
import json, re, statistics, sys
work = sys.argv[1]
def rss(side):
    t = open(f"{work}/{side}.time").read()
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024 / 1024
logs = [json.loads(l) for l in open(f"{work}/out/trainer_log.jsonl") if '"elapsed_s"' in l]
el = [l["elapsed_s"] for l in logs]
ours = [b - a for a, b in zip(el, el[1:])]           # steps 2…N
theirs = json.load(open(f"{work}/trl.json"))["step_seconds"][1:]
def show(name, xs, side):
    print(f"{name:13s} {statistics.median(xs):6.2f} s/step (min {min(xs):.2f}, max {max(xs):.2f}, {len(xs)} steps)  peak RSS {rss(side):5.2f} GiB")
show("qwenft", ours, "ours")
show("trl+peft", theirs, "trl")
print(f"ratio: trl/qwenft {statistics.median(theirs) / statistics.median(ours):.2f}x time per step, "
      f"qwenft/trl {rss('ours') / rss('trl'):.2f}x peak RSS")
PY
