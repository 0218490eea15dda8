#!/usr/bin/env bash
# Chat-template rendering speed: parse once, render many; the Qwen2.5-Instruct template on a
# 9-message conversation (and on a conversation with tools and tool calls), qwenft (release)
# versus jinja2 set up as transformers' apply_chat_template, in one run. Checks both print the
# same bytes, then prints renders/s, the ratio and peak RSS.
#   Scripts/bench/template/run.sh [renders]      (PYTHON=… to pick the python with jinja2)
set -euo pipefail
cd "$(dirname "$0")/../../.."
N=${1:-20000}
PY=${PYTHON:-.venv/bin/python}
swift build -c release --product qwenft-bench >/dev/null
BIN=.build/release/qwenft-bench
TPL=Tests/JinjaTests/Fixtures/templates/qwen2_5_instruct.jinja
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for conv in conversation9 conversation_tools; do
    MSG=Scripts/bench/template/$conv.json
    /usr/bin/time -v "$BIN" template --template "$TPL" --messages "$MSG" --add-generation-prompt \
        --renders "$N" >"$TMP/ours.txt" 2>"$TMP/ours.err"
    /usr/bin/time -v "$PY" Scripts/bench/template/jinja2_bench.py Scripts/fixtures "$TPL" "$MSG" "$N" \
        >"$TMP/py.txt" 2>"$TMP/py.err"
    cmp -s "$TMP/ours.txt" "$TMP/py.txt" || { echo "$conv: outputs differ"; diff "$TMP/ours.txt" "$TMP/py.txt" | head; exit 1; }
    ours=$(grep -o ' renders_per_s=[0-9.e+]*' "$TMP/ours.err" | cut -d= -f2)
    theirs=$(grep -o ' renders_per_s=[0-9.e+]*' "$TMP/py.err" | cut -d= -f2)
    ours_cpu=$(grep -o 'cpu_renders_per_s=[0-9.e+]*' "$TMP/ours.err" | cut -d= -f2)
    theirs_cpu=$(grep -o 'cpu_renders_per_s=[0-9.e+]*' "$TMP/py.err" | cut -d= -f2)
    rss_ours=$(grep 'Maximum resident' "$TMP/ours.err" | awk '{print $NF}')
    rss_py=$(grep 'Maximum resident' "$TMP/py.err" | awk '{print $NF}')
    awk -v c="$conv" -v n="$N" -v a="$ours" -v b="$theirs" -v ac="$ours_cpu" -v bc="$theirs_cpu" -v ra="$rss_ours" -v rb="$rss_py" 'BEGIN {
        printf "%s (%d renders, identical output): wall qwenft %.0f vs jinja2 %.0f renders/s = %.2fx; CPU time qwenft %.0f vs jinja2 %.0f renders/s = %.2fx; peak RSS qwenft %d KiB, python %d KiB\n", c, n, a, b, a / b, ac, bc, ac / bc, ra, rb }'
done
