#!/usr/bin/env python3
"""jinja2 side of Scripts/bench/template: parse once, render N times, as transformers sets it up."""
import json
import sys
import time

sys.path.insert(0, sys.argv[1])  # Scripts/fixtures, for make_env()
from templates import make_env  # noqa: E402

template_path, messages_path, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
source = open(template_path, encoding="utf-8").read()
data = json.load(open(messages_path, encoding="utf-8"))
messages, tools = (data, None) if isinstance(data, list) else (data["messages"], data.get("tools"))
template = make_env().from_string(source)
ctx = dict(messages=messages, tools=tools, documents=None, add_generation_prompt=True, eos_token="<|im_end|>", pad_token="<|endoftext|>")
first = template.render(**ctx)
start = time.perf_counter()
cpu_start = time.process_time()
total = 0
for _ in range(n):
    total += len(template.render(**ctx).encode())
seconds = time.perf_counter() - start
cpu = time.process_time() - cpu_start
sys.stdout.write(first)
print(f"renders={n} seconds={seconds} renders_per_s={n / seconds} cpu_renders_per_s={n / cpu} bytes={total}", file=sys.stderr)
