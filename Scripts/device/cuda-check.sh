#!/usr/bin/env bash
# The CUDA check of issue #15, section 4: one call on a machine with an NVIDIA GPU, one table.
#
#   Scripts/device/cuda-check.sh prepare   # HERE (no GPU): release binaries with the Swift runtime
#                                          # linked in, their non-glibc libraries and the Qwen vocab,
#                                          # packed into .build/device/cuda-check.tar.xz (< 64 MiB)
#   Scripts/device/cuda-check.sh run       # ON THE GPU MACHINE, from the repository root
#
# The device tool call that runs it (≤ 10 minutes):
#   run(command: "bash Scripts/device/cuda-check.sh run", carry: [".build/device/cuda-check.tar.xz"], timeout_s: 540)
#
# What `run` checks now (the CUDA shim and kernels exist):
#   env             qwenft env: driver, NVRTC, cuBLAS found; the GPU's name, arch and memory
#   compile         qwenft env --compile-kernels sm_XY for the GPU's own arch (CUBIN, NVRTC found there)
#   kernels         qwenft-bench cuda-kernels: every kernel on the GPU against its CPU kernel
# What it checks once the CUDA backend is wired to --device (the seam, issue #13, then #15);
# until then each prints "waits for the CUDA backend":
#   fp32 parity     tiny and small presets, 20 LoRA steps, cuda vs cpu: loss within 1e-4 relative
#   bf16 / fp16     the same run in bf16 (sm_80+) and fp16: loss within 1e-2, trajectory within 2 %
#   greedy decode   qwen2.5-0.5b preset, 32 greedy tokens, cuda (fp32) ids == cpu ids
#   train speed     qwen2.5-0.5b shapes, LoRA r 8 all-linear, seq 1024, batch 8, bf16: tokens/s and
#                   peak GPU memory of qwenft and of PyTorch + peft on the same GPU
#   decode speed    tokens/s vs transformers generate
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:-}
bundle=.build/device/cuda-check.tar.xz

prepare() {
    local out=.build/device/bundle
    rm -rf "$out" && mkdir -p "$out/bin" "$out/lib"
    swift build -c release --static-swift-stdlib --product qwenft
    swift build -c release --static-swift-stdlib --product qwenft-bench
    cp .build/release/qwenft .build/release/qwenft-bench "$out/bin/"
    strip "$out/bin/"* 2>/dev/null || true
    # Every shared library outside glibc that the binaries load (OpenBLAS, json-c, Open MPI and theirs).
    ldd "$out/bin/qwenft" "$out/bin/qwenft-bench" | awk '/=> \// {print $3}' | sort -u |
        grep -vE '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*)\.so' | while read -r lib; do cp -L "$lib" "$out/lib/"; done
    cp "$(Scripts/fetch-vocab.sh)" "$out/qwen.tiktoken"
    tar -C "$out" -cJf "$bundle" .
    echo "prepare: $bundle $(du -h "$bundle" | cut -f1) (bin: $(ls "$out/bin" | tr '\n' ' '); lib: $(ls "$out/lib" | wc -l) files)"
}

row() { printf '%-16s %-6s %s\n' "$1" "$2" "$3"; }

run() {
    [ -f "$bundle" ] || { echo "cuda-check: $bundle missing: run 'Scripts/device/cuda-check.sh prepare' first and carry it" >&2; exit 1; }
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
    tar -C "$dir" -xJf "$bundle"
    export LD_LIBRARY_PATH="$dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export QWENFT_CUDA_CACHE="$dir/kernel-cache" QWENFT_VOCAB="$dir/qwen.tiktoken"
    local bin="$dir/bin/qwenft" bench="$dir/bin/qwenft-bench" out=${OUT:-$dir/out}
    mkdir -p "$out"
    # The CUDA libraries of the python on PATH (PyTorch's wheels), ahead of the default search.
    local py; py=$(command -v python3 || command -v python || true)
    if [ -n "$py" ] && [ -z "${QWENFT_CUDA_LIBDIR:-}" ]; then
        QWENFT_CUDA_LIBDIR=$("$py" -c 'import glob, os, site
dirs = []
for sp in site.getsitepackages() + [site.getusersitepackages()]:
    dirs += sorted(glob.glob(os.path.join(sp, "nvidia", "*", "lib")))
print(":".join(dirs))' 2>/dev/null || true)
        export QWENFT_CUDA_LIBDIR
    fi
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/nvidia-smi: /' || true

    "$bin" env | tee "$out/env.txt"
    local arch; arch=$(sed -n 's/^GPU 0: *[^,]*, \(sm_[0-9a-z]*\),.*/\1/p' "$out/env.txt")
    local table=()
    if [ -n "$arch" ]; then table+=("$(row env ok "$(sed -n 's/^GPU 0: *//p' "$out/env.txt")")")
    else table+=("$(row env FAIL "no GPU reported (see env.txt)")"); fi

    # Without a GPU the compile step still checks that machine's NVRTC, for sm_90.
    if "$bin" env --compile-kernels "${arch:-sm_90}" > "$out/compile.txt" 2>&1; then
        table+=("$(row compile ok "$(tail -1 "$out/compile.txt")")")
    else
        table+=("$(row compile FAIL "$(tail -1 "$out/compile.txt")")")
    fi

    if "$bench" cuda-kernels > "$out/kernels.txt" 2>&1; then
        table+=("$(row kernels ok "$(tail -1 "$out/kernels.txt")")")
    else
        table+=("$(row kernels FAIL "$(grep -c FAIL "$out/kernels.txt" || true) failing; $(tail -1 "$out/kernels.txt")")")
    fi
    cat "$out/kernels.txt"

    if "$bin" train --help 2>/dev/null | grep -q -- '--device'; then
        backend_checks "$bin" "$out" "$arch" table
    else
        for c in "fp32 parity" "bf16/fp16" "greedy decode" "train speed" "decode speed"; do
            table+=("$(row "$c" "-" "waits for the CUDA backend (--device cuda not in this build)")")
        done
    fi
    echo
    row check result detail
    printf '%s\n' "${table[@]}"
    ! printf '%s\n' "${table[@]}" | grep -q '^.\{16\} FAIL'
}

# The checks that need `--device cuda` (kept here so the script is ready when the backend lands).
backend_checks() {
    local bin=$1 out=$2 arch=$3
    local -n rows=$4
    local work="$out/work"; mkdir -p "$work"
    local words="the model reads a sentence and predicts the next token of the text while the optimizer updates the adapter weights"
    for i in $(seq 1 64); do echo "{\"text\": \"$words $words $i\"}"; done > "$work/data.jsonl"
    for preset in tiny small; do
        "$bin" init --preset $preset --tokenizer "$QWENFT_VOCAB" --out "$work/$preset" --seed 0 >/dev/null
        for prec in fp32 bf16 fp16; do
            local flags='"bf16": false, "fp16": false'
            [ $prec = bf16 ] && flags='"bf16": true, "fp16": false'
            [ $prec = fp16 ] && flags='"bf16": false, "fp16": true'
            for dev in cpu cuda; do
                cat > "$work/$preset-$prec-$dev.json" <<JSON
{"model_name_or_path": "$work/$preset", "train_file": "$work/data.jsonl", "output_dir": "$work/out-$preset-$prec-$dev",
 "train_mode": "lora", "lora_rank": 8, "lora_alpha": 16, "lora_dropout": 0.0, "lora_target_modules": "all-linear",
 "task_type": "pretrain", "max_seq_length": 64, "per_device_train_batch_size": 2, "max_steps": 20,
 "learning_rate": 1e-3, "lr_scheduler_type": "constant", "logging_steps": 1, "save_strategy": "no", "shuffle": false,
 "seed": 0, $flags}
JSON
                # the CPU reference always computes in fp32
                local d=$dev; [ $dev = cpu ] && sed -i 's/"bf16": true/"bf16": false/; s/"fp16": true/"fp16": false/' "$work/$preset-$prec-$dev.json"
                "$bin" train --config "$work/$preset-$prec-$dev.json" --device $d > "$work/$preset-$prec-$dev.log" 2>&1 || true
            done
            local tol=1e-4; [ $prec != fp32 ] && tol=2e-2
            rows+=("$(row "$preset $prec" "$(compare_losses "$work/out-$preset-$prec-cpu" "$work/out-$preset-$prec-cuda" $tol)" "20 LoRA steps, loss cuda vs cpu, tol $tol")")
        done
    done
    "$bin" init --preset qwen2.5-0.5b --tokenizer "$QWENFT_VOCAB" --out "$work/q05" --seed 0 >/dev/null
    for dev in cpu cuda; do
        "$bin" generate --model "$work/q05" --raw-prompt "The capital of France is" --greedy --max-new-tokens 32 --json --device $dev \
            > "$work/gen-$dev.json" 2> "$work/gen-$dev.err" || true
    done
    if cmp -s <(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ids"])' "$work/gen-cpu.json") \
              <(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ids"])' "$work/gen-cuda.json"); then
        rows+=("$(row "greedy decode" ok "32 ids identical; $(tail -1 "$work/gen-cuda.err")")")
    else
        rows+=("$(row "greedy decode" FAIL "ids differ (gen-cpu.json, gen-cuda.json)")")
    fi
    rows+=("$(row "train speed" "-" "$(speed_vs_torch "$bin" "$work")")")
    rows+=("$(row "decode speed" "-" "$(decode_vs_transformers "$bin" "$work")")")
}

# Greedy decode of 128 tokens, bf16 where the GPU has it: qwenft's tokens/s (its stderr line) and
# transformers generate's on the same GPU.
decode_vs_transformers() {
    local bin=$1 work=$2
    "$bin" generate --model "$work/q05" --raw-prompt "The capital of France is" --greedy --max-new-tokens 128 --device cuda \
        > /dev/null 2> "$work/decode-ours.err" || true
    local theirs; theirs=$(python3 - "$work/q05" <<'PY' 2>"$work/decode-torch.err" || echo "?"
import sys, time, torch
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], torch_dtype=torch.bfloat16).cuda()
ids = torch.tensor([[785, 6722, 315, 9625, 374]], device="cuda")
model.generate(ids, max_new_tokens=8, do_sample=False)
torch.cuda.synchronize(); t = time.time()
out = model.generate(ids, max_new_tokens=128, min_new_tokens=128, do_sample=False)
torch.cuda.synchronize()
print(round((out.shape[1] - ids.shape[1]) / (time.time() - t), 1))
PY
)
    echo "qwenft: $(tail -1 "$work/decode-ours.err"); transformers generate: ${theirs} tok/s"
}

# ok/FAIL: every logged loss of b within tol relative of a's.
compare_losses() {
    python3 - "$1/trainer_log.jsonl" "$2/trainer_log.jsonl" "$3" <<'PY' 2>/dev/null || echo FAIL
import json, sys
def losses(p): return [json.loads(l)["loss"] for l in open(p) if '"loss"' in l and '"train_loss"' not in l]
a, b, tol = losses(sys.argv[1]), losses(sys.argv[2]), float(sys.argv[3])
ok = len(a) == len(b) > 0 and all(abs(x - y) <= tol * abs(x) for x, y in zip(a, b))
print("ok" if ok else "FAIL")
PY
}

# qwenft vs PyTorch + peft, bf16, qwen2.5-0.5b shapes, LoRA r 8 all-linear, seq 1024, batch 8.
speed_vs_torch() {
    local bin=$1 work=$2
    python3 - "$work" <<'PY' > "$work/speed-data.log" 2>&1 || true
import json, random, sys
random.seed(0)
words = "the model reads a sentence and predicts the next token of the text while the optimizer updates the adapter weights".split()
with open(sys.argv[1] + "/speed.jsonl", "w") as f:
    for _ in range(8 * 8):
        f.write(json.dumps({"text": " ".join(random.choice(words) for _ in range(2048))}) + "\n")
PY
    cat > "$work/speed.json" <<JSON
{"model_name_or_path": "$work/q05", "train_file": "$work/speed.jsonl", "output_dir": "$work/out-speed",
 "train_mode": "lora", "lora_rank": 8, "lora_alpha": 16, "lora_dropout": 0.0, "lora_target_modules": "all-linear",
 "task_type": "pretrain", "max_seq_length": 1024, "per_device_train_batch_size": 8, "max_steps": 8,
 "learning_rate": 1e-4, "lr_scheduler_type": "constant", "logging_steps": 1, "save_strategy": "no", "shuffle": false, "bf16": true}
JSON
    "$bin" train --config "$work/speed.json" --device cuda > "$work/speed-ours.log" 2>&1 &
    local pid=$! peak=0
    while kill -0 $pid 2>/dev/null; do
        local used; used=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -1)
        [ -n "$used" ] && [ "$used" -gt "$peak" ] && peak=$used
        sleep 0.5
    done
    local ours; ours=$(python3 -c 'import json,sys
l=[json.loads(x) for x in open(sys.argv[1]) if "tokens_per_second" in x and "train_tokens" not in x]
print(round(sum(x["tokens_per_second"] for x in l[1:]) / max(1, len(l) - 1)))' "$work/out-speed/trainer_log.jsonl" 2>/dev/null || echo "?")
    local torch; torch=$(python3 - "$work/q05" <<'PY' 2>"$work/speed-torch.err" || echo "? ?"
import sys, time, torch
from transformers import AutoModelForCausalLM
from peft import LoraConfig, get_peft_model
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], torch_dtype=torch.bfloat16).cuda()
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear"))
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
ids = torch.randint(0, 151643, (8, 1024), device="cuda")
times = []
for step in range(8):
    torch.cuda.synchronize(); t = time.time()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward(); opt.step(); opt.zero_grad()
    torch.cuda.synchronize(); times.append(time.time() - t)
tps = 8 * 1024 * 7 / sum(times[1:])
print(round(tps), round(torch.cuda.max_memory_reserved() / 2**20))
PY
)
    echo "qwenft ${ours} tok/s, peak ${peak} MiB (nvidia-smi); pytorch+peft ${torch% *} tok/s, peak ${torch#* } MiB reserved"
}

case "$mode" in
    prepare) prepare ;;
    run) run ;;
    *) echo "usage: Scripts/device/cuda-check.sh prepare|run" >&2; exit 2 ;;
esac
