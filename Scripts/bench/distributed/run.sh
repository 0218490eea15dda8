#!/usr/bin/env bash
# Memory and communication of data-parallel full fine-tuning under mpirun, by ZeRO stage and
# world size: per-rank and summed peak RSS, the model-state bytes per rank that the ZeRO paper's
# formula gives (fp32 weights, gradients, AdamW m and v; Ψ trainable parameters), what this
# implementation holds, the bytes rank 0 sent per step and its share of time in collectives.
# There is no Python peer here: DeepSpeed is the reference for the formula, not run.
#
# Usage: Scripts/bench/distributed/run.sh
#   PRESET   model preset for `qwenft init` (default qwen2.5-0.5b; `small` fits a shared machine)
#   DTYPE    stored dtype of the model file (default float32); the file is memory-mapped and its
#            touched pages count in every rank's RSS (the "file" column)
#   NPS      world sizes (default "1 2 4");  STAGES  ZeRO stages (default "0 1 2 3")
#   MODE     full (default), lora (LoRA r 8 on every projection: the base's resident bytes
#            per rank at stage 3 are what the "paper/rank" column then shows: Ψ_base·dtype/N)
#            or qlora (the same over the base quantised to NF4 on load; "paper/rank" is then the
#            NF4 base as the run reports it, divided by N at stage 3)
#   QWENFT_BIN  a qwenft binary to measure instead of building this checkout's release one
#   SEQ      tokens per sample (default 256);  STEPS  optimizer steps (default 3)
#   LAYERS   decoder layers of the preset (default: its own), for a machine with less memory free
#   EXTRA    more `qwenft train` arguments for every run (e.g. "--deepspeed ds.json" with
#            "stage3_prefetch_bucket_size": 0 to measure stage 3 without prefetch)
# A combination whose estimate exceeds 80% of MemAvailable is skipped and says what it needs.
set -euo pipefail
cd "$(dirname "$0")/../../.."

PRESET=${PRESET:-qwen2.5-0.5b}
DTYPE=${DTYPE:-float32}
NPS=${NPS:-"1 2 4"}
STAGES=${STAGES:-"0 1 2 3"}
MODE=${MODE:-full}
SEQ=${SEQ:-256}
STEPS=${STEPS:-3}
VOCAB=${QWENFT_VOCAB:-.cache/qwen-vocab/qwen.tiktoken}
[ -f "$VOCAB" ] || { echo "distributed bench: no Qwen vocabulary at $VOCAB; run Scripts/fetch-vocab.sh" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "distributed bench: mpirun not found (apt-get install openmpi-bin libopenmpi-dev)" >&2; exit 1; }
work=$(mktemp -d)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT; echo "work: $work" >&2

if [ -n "${QWENFT_BIN:-}" ]; then bin=$QWENFT_BIN; else swift build -c release --product qwenft >&2; bin=$PWD/.build/release/qwenft; fi
$bin init --preset "$PRESET" ${LAYERS:+--layers "$LAYERS"} --tokenizer "$VOCAB" --out "$work/model" --seed 0 --dtype "$DTYPE" >&2
filebytes=$(du -bc "$work"/model/*.safetensors | tail -1 | cut -f1)

# Pre-training records of SEQ tokens, enough for STEPS steps at the largest world size.
maxnp=$(echo $NPS | tr ' ' '\n' | sort -n | tail -1)
python3 - "$work" "$SEQ" $((STEPS * maxnp)) <<'PY'
import json, random, sys
work, seq, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(0)
words = "the model reads a sentence and predicts the next token of the text while the optimizer updates the weights".split()
with open(f"{work}/data.jsonl", "w") as f:
    for _ in range(n):
        f.write(json.dumps({"text": " ".join(random.choice(words) for _ in range(seq * 2))}) + "\n")
PY
cat > "$work/train.json" <<JSON
{"model_name_or_path": "$work/model", "train_file": "$work/data.jsonl", "output_dir": "$work/out",
 "train_mode": "$MODE", "lora_rank": 8, "lora_target_modules": "all-linear", "task_type": "pretrain", "max_seq_length": $SEQ, "per_device_train_batch_size": 1,
 "gradient_accumulation_steps": 1, "max_steps": $STEPS, "learning_rate": 1e-5, "lr_scheduler_type": "constant",
 "logging_steps": 1, "save_strategy": "no", "shuffle": false}
JSON
cat > "$work/rank.sh" <<SH
#!/bin/sh
exec /usr/bin/time -v -o "$work/time.\${OMPI_COMM_WORLD_RANK:-0}" "$bin" "\$@"
SH
chmod +x "$work/rank.sh"

avail=$(awk '/MemAvailable/ {printf "%.0f\n", $2 * 1024}' /proc/meminfo)
echo "preset $PRESET ($DTYPE file, $((filebytes / 1000000)) MB), seq $SEQ, $STEPS steps, batch 1 per rank; $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p')); load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-6s %-3s %12s %12s %14s %12s %10s %9s %12s\n" stage N "rank peak" "all ranks" "paper/rank" "file/rank" "MB/step" "comm %" "largest gather"
for np in $NPS; do
  for stage in $STAGES; do
    [ "$np" = 1 ] && [ "$stage" != 0 ] && continue
    psi=$(awk -v f="$filebytes" -v d="$DTYPE" 'BEGIN { printf "%.0f\n", f / (d == "float32" ? 4 : 2) }')
    ours=$(awk -v p="$psi" -v n="$np" -v s="$stage" -v m="$MODE" 'BEGIN { printf "%.0f\n", (m != "full" ? p * 2 : (s == 0 ? 16 * p : (s == 1 ? 8 * p + 8 * p / n : (s == 2 ? 4 * p + 12 * p / n : 16 * p / n + 16 * p / 24)))) }')
    need=$(awk -v o="$ours" -v f="$filebytes" -v n="$np" -v s="$stage" 'BEGIN { printf "%.0f\n", (o + (s == 3 ? f / n : f)) * n * 1.3 }')
    if [ "$need" -gt $((avail * 8 / 10)) ]; then
      printf "%-6s %-3s skipped: needs about %d MB, %d MB available\n" "$stage" "$np" $((need / 1000000)) $((avail / 1000000)); continue
    fi
    rm -rf "$work/out" "$work"/time.*
    QWENFT_CACHE=none mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$np" "$work/rank.sh" \
        train --config "$work/train.json" --zero_stage "$stage" ${EXTRA:-} > "$work/log.$np.$stage" 2>&1 \
        || { echo "stage $stage np $np failed:"; tail -5 "$work/log.$np.$stage"; continue; }
    python3 - "$work" "$np" "$stage" "$filebytes" "$DTYPE" "$MODE" <<'PY'
import glob, re, sys
work, n, stage, filebytes, dtype, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
rss = [int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f).read()).group(1)) * 1024 for f in glob.glob(f"{work}/time.*")]
log = open(f"{work}/log.{n}.{stage}").read()
psi = int(re.search(r"; (\d+) trainable parameters", log).group(1))
paper = {0: 16 * psi, 1: 8 * psi + 8 * psi / n, 2: 4 * psi + 12 * psi / n, 3: 16 * psi / n}[stage] if n > 1 else 16 * psi
if mode == "lora":  # the frozen base in its stored dtype: whole, or 1/N of it at stage 3
    paper = filebytes / (n if stage == 3 and n > 1 else 1)
if mode == "qlora":  # the base as loaded (NF4 projections, the rest as stored), as the run reports it at stage 3
    b = re.search(r"base weights resident [\d.]+ MB of ([\d.]+) MB", log)
    paper = float(b.group(1)) * 1e6 / n if b else float("nan")
m = re.search(r"([\d.]+) MB sent per step by rank 0; ([\d.]+)% of its training time", log)
mb, share = (m.group(1), m.group(2)) if m else ("0", "0")
g = lambda b: f"{b / 1e9:.2f} GB"
lg = re.search(r"largest gather ([\d.]+) MB", log)
print(f"{stage:<6} {n:<3} {g(max(rss)):>12} {g(sum(rss)):>12} {(g(paper) if paper == paper else '-'):>14} {g(filebytes / (n if stage == 3 else 1)):>12} {float(mb):>10.1f} {float(share):>8.1f}% {(lg.group(1) + ' MB') if lg else '-':>12}")
print("  ranks' peaks: " + ", ".join(g(r) for r in sorted(rss)))
for note in re.findall(r"base weights resident [^;\n]*|NF4 projections: [^;\n]*", log):
    print("  rank 0: " + note)
PY
  done
done
echo "paper: ZeRO's model states per rank, fp32 (16Ψ; stage 1 8Ψ+8Ψ/N; stage 2 4Ψ+12Ψ/N; stage 3 16Ψ/N); MODE=lora: the base's"
echo "bytes per rank (whole, or 1/N at stage 3). At stage 2 a rank also holds the gradients of the layer being reduced and"
echo "of the embedding / lm_head until each micro-batch ends; at stage 3 the gathered layer, the next one's prefetched part"
echo "and one vocab chunk of the embedding / lm_head (and of its gradient) at a time."
echo "rank peak also holds activations (seq $SEQ), the lm_head chunks and the mapped model file."
