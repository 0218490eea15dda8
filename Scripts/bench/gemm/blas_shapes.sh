#!/usr/bin/env bash
# Which BLAS for a LoRA training step: single-threaded cblas_sgemm on the per-thread pieces of the
# step's products (blas_shapes.c: base x·Wᵀ and dy·W at 256 tokens, the lm_head, LoRA's rank-8
# products), under OpenBLAS with each OPENBLAS_CORETYPE in CORETYPES and under BLIS (Debian's
# libblis-dev, if installed). Prints GFLOP/s per shape and each library's total weighted by the
# step's FLOPs (base, LoRA, all). Thread CPU time, best of REPEATS: meant to hold on a busy machine.
#
# Usage: Scripts/bench/gemm/blas_shapes.sh [0.5b|7b]
#   CORETYPES  OpenBLAS cores to force (default: "default Haswell Zen SandyBridge"; "default" is
#              OpenBLAS's own pick; a core whose kernels this CPU cannot run is reported and skipped)
#   REPEATS    timed calls per shape after a warm-up (default 5)
#   THREADS    the thread count whose split is timed (default 2)
set -euo pipefail
cd "$(dirname "$0")"
model=${1:-0.5b}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
lib=/usr/lib/x86_64-linux-gnu
cc -O2 -o "$out/openblas" blas_shapes.c -L"$lib/openblas-pthread" -Wl,-rpath,"$lib/openblas-pthread" -lopenblas -ldl
runs=()
for core in ${CORETYPES:-default Haswell Zen SandyBridge}; do
    if [ "$core" = default ]; then env=(); else env=(OPENBLAS_CORETYPE="$core"); fi
    if env "${env[@]}" OPENBLAS_NUM_THREADS=1 "$out/openblas" "$model" "${REPEATS:-5}" > "$out/openblas-$core.txt"; then
        runs+=("openblas-$core")
    else
        echo "OPENBLAS_CORETYPE=$core failed on this CPU (exit $?); left out" >&2
    fi
done
blis=$lib/blis-openmp
if [ -f "$blis/libblis.so" ]; then
    cc -O2 -o "$out/blis" blas_shapes.c -L"$blis" -Wl,-rpath,"$blis" -lblis -ldl
    BLIS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$out/blis" "$model" "${REPEATS:-5}" > "$out/blis.txt"
    runs+=(blis)
else
    echo "(no BLIS: apt-get install libblis-dev to include it)" >&2
fi
echo "model $model, one thread's piece of each product split for ${THREADS:-2} threads, best of ${REPEATS:-5}, load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out" "${runs[@]}" <<'PY'
import sys
out, runs = sys.argv[1], sys.argv[2:]
tables, heads = {}, {}
for r in runs:
    rows = []
    for line in open(f"{out}/{r}.txt"):
        if line.startswith("#"):
            heads[r] = line[2:].strip()
            continue
        name, count, flops, sec = line.split()
        rows.append((name, int(count), float(flops), float(sec)))
    tables[r] = rows
for r in runs:
    print(f"{r}: {heads.get(r, '?')}")
names = [row[0] for row in tables[runs[0]]]
w = max(len(n) for n in names)
print(f"{'GFLOP/s':<{w}} " + " ".join(f"{r:>18}" for r in runs))
for i, n in enumerate(names):
    print(f"{n:<{w}} " + " ".join(f"{tables[r][i][2] / tables[r][i][3] / 1e9:18.1f}" for r in runs))
def total(rows, pick):
    f = sum(c * fl for n, c, fl, s in rows if pick(n))
    t = sum(c * s for n, c, fl, s in rows if pick(n))
    return f / t / 1e9, t
for label, pick in (("base (step-weighted)", lambda n: not n.startswith("lora")),
                    ("LoRA (step-weighted)", lambda n: n.startswith("lora")),
                    ("all (step-weighted)", lambda n: True)):
    print(f"{label:<{w}} " + " ".join(f"{total(tables[r], pick)[0]:18.1f}" for r in runs))
print(f"{'BLAS s a step (per thread)':<{w}} " + " ".join(f"{total(tables[r], lambda n: True)[1]:18.3f}" for r in runs))
PY
