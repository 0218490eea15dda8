#!/usr/bin/env bash
# LoRA training speed and memory: qwenft vs PyTorch + peft, interleaved in one run on the same model
# folder and the same token ids. LoRA r=8 on all seven projections, batch 1, AdamW, clipping;
# random weights from `qwenft init` (a preset's widths, optionally fewer layers).
#
# The two sides alternate (ours, theirs, ours, theirs …) for ROUNDS rounds, so load from other
# processes hits both alike; the report gives each side's median tokens/s with the spread, the
# ratio of the medians and of every round, and peak RSS. It also measures, in the same run, the
# sgemm ceiling on the step's own shapes (`qwenft-bench gemm --model`: every Linear of the model
# at SEQ tokens, forward x·Wᵀ and input-gradient dy·W, the products a LoRA step runs on its frozen
# base, best of 3, before the first and after the last round; the faster kept) and prints our step
# as a share of that ceiling and of the cores' FLOP peak (THREADS × 32 fp32 FLOP a cycle × the
# clock: AVX2, two FMA pipes).
#
# Usage: Scripts/bench/train/run.sh
#   PRESET   qwenft init preset (default qwen2.5-0.5b; qwen2.5-1.5b, -3b, -7b, -14b …)
#   LAYERS   layers instead of the preset's (default: the preset's)
#   SEQ      tokens per sequence (default 256)
#   DTYPE    the base weights' stored dtype: float32 (default) or bfloat16. qwenft computes in f32
#            either way; PyTorch loads the folder as float32 (it upcasts a bf16 folder).
#   ROUNDS   interleaved rounds (default 3)
#   STEPS    optimizer steps per side per round (default 4; the first step of each is left out)
#   THREADS  threads for both sides (default 2)
#   CHECKPOINTING        true: qwenft with gradient_checkpointing (default false)
#   RECOMPUTE_LAYERS     with CHECKPOINTING: qwenft's recompute_num_layers, the layers (from the
#                        first) whose activations backward recomputes; the rest keep theirs
#                        (default: all layers)
#   TORCH_CHECKPOINTING  true: PyTorch with gradient_checkpointing_enable() (default false)
#   PEER     none: only our side and the ceiling (default: run PyTorch + peft)
#   PEAK_GHZ the clock for the FLOP peak (default: the highest "cpu MHz" of /proc/cpuinfo, or lscpu's
#            "CPU max MHz"; a VM may show only its nominal clock)
#   PYTHON   a python with torch, transformers, peft (default: .venv/bin/python, else python3)
set -euo pipefail
cd "$(dirname "$0")/../../.."

PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
PRESET=${PRESET:-qwen2.5-0.5b}; SEQ=${SEQ:-256}; DTYPE=${DTYPE:-float32}; ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-4}; THREADS=${THREADS:-2}; PEER=${PEER:-torch}
VOCAB=${QWENFT_VOCAB:-.cache/qwen-vocab/qwen.tiktoken}
[ -f "$VOCAB" ] || { echo "train bench: no Qwen vocabulary at $VOCAB; run Scripts/fetch-vocab.sh" >&2; exit 1; }
work=$(mktemp -d /tmp/qwenft-bench-train.XXXXXX)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT; echo "work: $work" >&2

swift build -c release --product qwenft >&2
swift build -c release --product qwenft-bench >&2
bin=.build/release/qwenft
layers=(); [ -n "${LAYERS:-}" ] && layers=(--layers "$LAYERS")
$bin init --preset "$PRESET" "${layers[@]}" --dtype "$DTYPE" --tokenizer "$VOCAB" --out "$work/model" --seed 0 >&2

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
recompute=""; [ -n "${RECOMPUTE_LAYERS:-}" ] && recompute=", \"recompute_num_layers\": $RECOMPUTE_LAYERS"
cat > "$work/train.json" <<JSON
{"model_name_or_path": "$work/model", "train_file": "$work/data.jsonl", "output_dir": "$work/out",
 "train_mode": "lora", "lora_rank": 8, "lora_alpha": 16, "lora_dropout": 0.0, "lora_target_modules": "all-linear",
 "task_type": "pretrain", "max_seq_length": $SEQ, "per_device_train_batch_size": 1, "gradient_accumulation_steps": 1,
 "max_steps": $STEPS, "learning_rate": 1e-4, "lr_scheduler_type": "constant", "logging_steps": 1,
 "save_strategy": "no", "shuffle": false, "overwrite_output_dir": true, "gradient_checkpointing": ${CHECKPOINTING:-false}$recompute}
JSON
ceiling() {
    QWENFT_THREADS=$THREADS .build/release/qwenft-bench gemm --model "$work/model" --tokens "$SEQ" --variants NT,NN \
        --json >> "$work/gemm.jsonl"
}
echo "$PRESET${LAYERS:+, $LAYERS layers}, $DTYPE base, threads $THREADS, sequence $SEQ${CHECKPOINTING:+, checkpointing $CHECKPOINTING}${RECOMPUTE_LAYERS:+, recompute_num_layers $RECOMPUTE_LAYERS}, $ROUNDS rounds of $STEPS steps per side ($(lscpu | sed -n 's/^Model name: *//p'))"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
ceiling
for r in $(seq "$ROUNDS"); do
    QWENFT_CACHE=none /usr/bin/time -v -o "$work/ours.$r.time" $bin train --config "$work/train.json" --threads "$THREADS" > "$work/ours.$r.log"
    cp "$work/out/trainer_log.jsonl" "$work/ours.$r.jsonl"
    if [ "$PEER" != none ]; then
        if [ "$r" = 1 ]; then
            # The ids qwenft trained on, for the torch side.
            "$PYTHON" - "$work" "$SEQ" <<'PY'
import json, sys
from tokenizers import Tokenizer
work, seq = sys.argv[1], int(sys.argv[2])
tok = Tokenizer.from_file(f"{work}/model/tokenizer.json")
rows = [tok.encode(json.loads(l)["text"], add_special_tokens=False).ids[:seq] for l in open(f"{work}/data.jsonl")]
json.dump(rows, open(f"{work}/ids.json", "w"))
PY
        fi
        OMP_NUM_THREADS=$THREADS /usr/bin/time -v -o "$work/torch.$r.time" \
            "$PYTHON" Scripts/bench/train/torch_side.py "$work/model" "$work/ids.json" "$STEPS" "$THREADS" 8 \
            "${TORCH_CHECKPOINTING:-false}" > "$work/torch.$r.json"
    fi
    echo "round $r done, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done
ceiling
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

"$PYTHON" - "$work" "$ROUNDS" "$THREADS" "$PEER" <<'PY'
import json, os, re, statistics, sys
work, rounds, threads, peer = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def rss(path):
    t = open(path).read()
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024 / 1024

def cpu(path):
    t = open(path).read()
    return sum(float(re.search(rf"{k} time \(seconds\): ([0-9.]+)", t).group(1)) for k in ("User", "System"))

def ours_tps(path):
    # tokens/s after step 1: total tokens / total time of the logged intervals after the first.
    logs = [json.loads(l) for l in open(path) if '"tokens_per_second"' in l]
    steady = [l for l in logs if l["step"] > 1] or logs
    prev = logs[0]["elapsed_s"] if len(logs) > 1 else 0.0
    tokens = seconds = 0.0
    for l in steady:
        dt = l["elapsed_s"] - prev; prev = l["elapsed_s"]
        tokens += l["tokens_per_second"] * dt; seconds += dt
    return tokens / seconds

cfg = json.load(open(f"{work}/model/config.json"))
h, L, I, V = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"], cfg["vocab_size"]
hd = cfg.get("head_dim") or h // cfg["num_attention_heads"]
q, kv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
# A LoRA step's base products per token: forward x·Wᵀ and input gradient dy·W, 2 FLOP a
# multiply-add each: 4 × the Linear parameters (attention scores and the adapters left out).
flops_per_token = 4 * (L * (h * q + 2 * h * kv + q * h + 3 * h * I) + V * h)

# The sgemm ceiling on these shapes: each product at its best measured rate, weighted by how
# often a step runs it (count per forward pass; NT and NN once each).
best = {}  # (layer, variant) → (best seconds, FLOP of one product, count per pass)
for l in map(json.loads, open(f"{work}/gemm.jsonl")):
    key = (l["layer"], l["variant"])
    seconds = min(best[key][0], l["seconds"]) if key in best else l["seconds"]
    best[key] = (seconds, 2 * l["M"] * l["N"] * l["K"], l["count"])
total_flops = sum(f * c for _, f, c in best.values())
total_time = sum(s * c for s, _, c in best.values())
ceiling = total_flops / total_time / 1e9
mhz = None
for line in open("/proc/cpuinfo"):
    if line.startswith("cpu MHz"):
        mhz = max(mhz or 0.0, float(line.split(":")[1]))
try:
    import subprocess
    m = re.search(r"CPU max MHz:\s*([0-9.]+)", subprocess.run(["lscpu"], capture_output=True, text=True).stdout)
    if m: mhz = float(m.group(1))
except Exception:
    pass
if os.environ.get("PEAK_GHZ"):
    mhz = float(os.environ["PEAK_GHZ"]) * 1000
peak = threads * 32 * (mhz or 0) / 1000

ours = [ours_tps(f"{work}/ours.{r}.jsonl") for r in range(1, rounds + 1)]
our_rss = statistics.median(rss(f"{work}/ours.{r}.time") for r in range(1, rounds + 1))
def spread(xs): return f"{min(xs):.1f}..{max(xs):.1f}"
def gf(tps): return tps * flops_per_token / 1e9
print(f"sgemm ceiling on the step's shapes: {ceiling:.1f} GFLOP/s   FLOP peak: {peak:.0f} GFLOP/s ({threads} cores x 32 x {mhz or 0:.0f} MHz)")
if ceiling > peak:
    print("  (the ceiling exceeds that peak: the clock read is below the one the cores run at, as in a VM that hides"
          " its boost clock; PEAK_GHZ=… sets it)")
m = statistics.median(ours)
print(f"qwenft        {m:7.1f} tokens/s (rounds {spread(ours)})  {gf(m):6.1f} GFLOP/s = {gf(m) / ceiling:5.1%} of the sgemm ceiling, "
      f"{gf(m) / peak if peak else 0:5.1%} of peak   peak RSS {our_rss:5.2f} GiB   CPU {statistics.median(cpu(f'{work}/ours.{r}.time') for r in range(1, rounds + 1)):.1f} s/run")
if peer != "none":
    theirs = [json.load(open(f"{work}/torch.{r}.json"))["tokens_per_second"] for r in range(1, rounds + 1)]
    their_rss = statistics.median(rss(f"{work}/torch.{r}.time") for r in range(1, rounds + 1))
    t = statistics.median(theirs)
    print(f"pytorch+peft  {t:7.1f} tokens/s (rounds {spread(theirs)})  {gf(t):6.1f} GFLOP/s = {gf(t) / ceiling:5.1%} of the sgemm ceiling, "
          f"{gf(t) / peak if peak else 0:5.1%} of peak   peak RSS {their_rss:5.2f} GiB")
    print(f"ratio: {m / t:.2f}x tokens/s (median of each side; rounds: "
          f"{', '.join(f'{a / b:.2f}x' for a, b in zip(ours, theirs))}), {our_rss / their_rss:.2f}x peak RSS")
PY
