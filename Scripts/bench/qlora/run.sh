#!/usr/bin/env bash
# QLoRA speed and memory against our own 16-bit paths, in one run, on the qwen2.5-0.5b preset
# (random weights, bfloat16 folder from `qwenft init`), 2 threads:
#   decode  greedy, 32-token prompt, NEW new tokens: bf16 weights vs --load-in-4bit (NF4, double
#           quantisation); decode tokens/s and peak RSS, REPS runs each (alternating), medians.
#   train   LoRA r 8 all-linear, sequence SEQ, STEPS steps: train_mode lora over the bf16 base vs
#           qlora (NF4 base), TRAIN_REPS runs each (alternating); median of the steady-state
#           seconds per step (each run's first step left out), peak RSS and CPU seconds per run.
#   PEER=python (transformers + bitsandbytes + peft): the same training steps through peer.py.
# Ratios: NF4 decode tokens/s ÷ bf16 (goal ≥ 1.5), QLoRA step time ÷ LoRA (goal ≤ 1.15).
#
#   Scripts/bench/qlora/run.sh            # REPS=3 NEW=48 SEQ=256 STEPS=4 TRAIN_REPS=1 THREADS=2
#   ONLY=decode Scripts/bench/qlora/run.sh   # the decode part alone (ONLY=train: the training part)
set -euo pipefail
cd "$(dirname "$0")/../../.."
THREADS=${THREADS:-2}; REPS=${REPS:-3}; NEW=${NEW:-48}; SEQ=${SEQ:-256}; STEPS=${STEPS:-4}; TRAIN_REPS=${TRAIN_REPS:-1}
ONLY=${ONLY:-}
case "$ONLY" in ""|decode|train) ;; *) echo "qlora bench: ONLY is decode or train, not '$ONLY'" >&2; exit 1 ;; esac
VOCAB=${QWENFT_VOCAB:-.cache/qwen-vocab/qwen.tiktoken}
[ -f "$VOCAB" ] || { echo "qlora bench: no Qwen vocabulary at $VOCAB; run Scripts/fetch-vocab.sh" >&2; exit 1; }
work=$(mktemp -d /tmp/qwenft-bench-qlora.XXXXXX)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
swift build -c release --product qwenft >&2
bin=.build/release/qwenft
$bin init --preset qwen2.5-0.5b --dtype bfloat16 --tokenizer "$VOCAB" --out "$work/model" --seed 0 >/dev/null
PROMPT_IDS="[785, 3974, 13876, 38835, 34208, 916, 279, 15678, 5562, 13, 576, 3974, 13876, 38835, 34208, 916, 279, 15678, 5562, 13, 1096, 374, 264, 1273, 315, 279, 9471, 4628, 315, 1207, 16948, 17]"

median() { sort -g | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%s", m}'; }
spread() { sort -g | awk 'NR==1{lo=$1} {hi=$1} END {printf "%s..%s", lo, hi}'; }

if [ "$ONLY" != train ]; then
echo "== decode: qwen2.5-0.5b, $NEW new tokens, greedy, $THREADS threads, $REPS runs each"
for r in $(seq "$REPS"); do
  for mode in bf16 nf4; do
    flag=""; [ "$mode" = nf4 ] && flag="--load-in-4bit"
    /usr/bin/time -v "$bin" generate --model "$work/model" $flag --prompt-ids "$PROMPT_IDS" --max-new-tokens "$NEW" \
        --greedy --repetition-penalty 1 --ignore-eos --threads "$THREADS" --json >"$work/$mode.json" 2>"$work/$mode.err"
    sed -n 's/^\[[0-9]* tokens, \([0-9.]*\) tokens\/s;.*/\1/p' "$work/$mode.err" >> "$work/$mode.tps"
    awk '/Maximum resident/ {print $6 / 1024}' "$work/$mode.err" >> "$work/$mode.rss"
    awk '/User time/ {u = $4} /System time/ {s = $4} END {print u + s}' "$work/$mode.err" >> "$work/$mode.cpu"
  done
done
# CPU seconds are the whole run's (loading, and for nf4 quantising, included): steadier than tok/s
# on a shared machine, but not a decode-only figure.
for mode in bf16 nf4; do
  printf "%-5s decode %8s tok/s (runs %s)   peak RSS %6.0f MB   CPU %s s/run\n" "$mode" "$(median < "$work/$mode.tps")" \
      "$(spread < "$work/$mode.tps")" "$(median < "$work/$mode.rss")" "$(median < "$work/$mode.cpu")"
done
awk -v a="$(median < "$work/nf4.tps")" -v b="$(median < "$work/bf16.tps")" 'BEGIN {printf "decode ratio nf4/bf16: %.2fx tokens/s (goal >= 1.5)\n", a / b}'
fi
[ "$ONLY" = decode ] && { echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"; exit 0; }

echo "== train: LoRA r 8 all-linear, sequence $SEQ, $STEPS steps, $THREADS threads"
"${PYTHON:-python3}" - "$work" "$SEQ" "$STEPS" <<'PY'
import json, random, sys
work, seq, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(0)
words = "the model reads a sentence and predicts the next token of the text while the optimizer updates the adapter weights".split()
with open(f"{work}/data.jsonl", "w") as f:
    for _ in range(steps):
        f.write(json.dumps({"text": " ".join(random.choice(words) for _ in range(seq * 2))}) + "\n")
PY
for mode in lora qlora; do
  cat > "$work/$mode.json" <<JSON
{"model_name_or_path": "$work/model", "train_file": "$work/data.jsonl", "output_dir": "$work/out-$mode",
 "train_mode": "$mode", "lora_rank": 8, "lora_alpha": 16, "lora_dropout": 0.0, "lora_target_modules": "all-linear",
 "task_type": "pretrain", "max_seq_length": $SEQ, "per_device_train_batch_size": 1, "gradient_accumulation_steps": 1,
 "max_steps": $STEPS, "learning_rate": 1e-4, "lr_scheduler_type": "constant", "logging_steps": 1,
 "save_strategy": "no", "shuffle": false, "overwrite_output_dir": true}
JSON
done
# TRAIN_REPS runs of each, alternating; every steady step (the first of each run left out) counts.
for r in $(seq "$TRAIN_REPS"); do
  for mode in lora qlora; do
    QWENFT_CACHE=none /usr/bin/time -v -o "$work/$mode.time" $bin train --config "$work/$mode.json" --threads "$THREADS" > "$work/$mode.log" 2>&1
    "${PYTHON:-python3}" - "$work" "$mode" <<'PY'
import json, re, sys
work, mode = sys.argv[1], sys.argv[2]
logs = [json.loads(l) for l in open(f"{work}/out-{mode}/trainer_log.jsonl") if '"loss"' in l and '"elapsed_s"' in l]
with open(f"{work}/{mode}.steps", "a") as f:
    for a, b in zip(logs, logs[1:]):
        f.write(f"{b['elapsed_s'] - a['elapsed_s']}\n")
t = open(f"{work}/{mode}.time").read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
cpu = float(re.search(r"User time \(seconds\): ([\d.]+)", t).group(1)) + float(re.search(r"System time \(seconds\): ([\d.]+)", t).group(1))
with open(f"{work}/{mode}.runs", "a") as f:
    f.write(f"{rss} {cpu}\n")
PY
  done
done
"${PYTHON:-python3}" - "$work" <<'PY' | tee "$work/train.txt"
import statistics, sys
work = sys.argv[1]
med = {}
for mode in ("lora", "qlora"):
    steps = sorted(float(x) for x in open(f"{work}/{mode}.steps"))
    runs = [tuple(map(float, l.split())) for l in open(f"{work}/{mode}.runs")]
    med[mode] = statistics.median(steps)
    print(f"{mode:5s} {med[mode]:7.2f} s/step (median of {len(steps)} steps, {steps[0]:.2f}..{steps[-1]:.2f})   "
          f"peak RSS {statistics.median(r[0] for r in runs):6.0f} MB   CPU {statistics.median(r[1] for r in runs):.1f} s/run")
PY
awk '$1 == "lora" || $1 == "qlora" {t[$1]=$2} END {printf "train ratio qlora/lora: %.2fx seconds per step (goal <= 1.15)\n", t["qlora"] / t["lora"]}' "$work/train.txt"
if [ -n "${PEER:-}" ]; then
  # The same ids through transformers + bitsandbytes + peft (PEER=/path/to/python with them).
  "$PEER" - "$work" "$SEQ" <<'PY'
import json, sys
from tokenizers import Tokenizer
work, seq = sys.argv[1], int(sys.argv[2])
tok = Tokenizer.from_file(f"{work}/model/tokenizer.json")
rows = [tok.encode(json.loads(l)["text"], add_special_tokens=False).ids[:seq] for l in open(f"{work}/data.jsonl")]
json.dump(rows, open(f"{work}/ids.json", "w"))
PY
  OMP_NUM_THREADS=$THREADS /usr/bin/time -v -o "$work/peer.time" "$PEER" Scripts/bench/qlora/peer.py "$work/model" "$work/ids.json" "$STEPS" "$THREADS" 8 > "$work/peer.json" 2>"$work/peer.err"
  "$PEER" - "$work" <<'PY'
import json, re, sys
work = sys.argv[1]
p = json.load(open(f"{work}/peer.json"))["seconds_per_step"]
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f"{work}/peer.time").read()).group(1)) / 1024
ours = [l.split() for l in open(f"{work}/train.txt") if l.startswith("qlora ")][0]
q, q_rss = float(ours[1]), float(ours[ours.index("RSS") + 1])
print(f"peft+bnb {p:7.2f} s/step   peak RSS {rss:6.0f} MB\n"
      f"qwenft qlora vs peft+bitsandbytes: {p / q:.2f}x faster, {q_rss / rss:.2f}x the peak RSS")
PY
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
