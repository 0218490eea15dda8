#!/usr/bin/env python3
"""transformers' side of Scripts/bench/generate: greedy generation on a model folder.

usage: peer.py MODEL_DIR PROMPT_IDS_JSON NEW_TOKENS THREADS DTYPE
Prints one JSON line: prompt tokens, new tokens, prefill and generate seconds, the ids.
"""
import json
import sys
import time

import torch
from transformers import AutoModelForCausalLM


def main():
    folder, ids_json, new_tokens, threads, dtype = sys.argv[1:6]
    torch.set_num_threads(int(threads))
    dt = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dt).eval()
    ids = torch.tensor([json.loads(ids_json)])
    n = int(new_tokens)
    kwargs = dict(do_sample=False, max_new_tokens=n, min_new_tokens=n, top_k=None, top_p=None,
                  temperature=None, repetition_penalty=1.0, attention_mask=torch.ones_like(ids))
    with torch.no_grad():
        model.generate(ids, **dict(kwargs, max_new_tokens=2, min_new_tokens=2))  # warm-up
        t0 = time.perf_counter()
        model(ids)
        prefill = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = model.generate(ids, **kwargs)
        total = time.perf_counter() - t0
    new = out[0, ids.shape[1]:].tolist()
    print(json.dumps(dict(prompt_tokens=ids.shape[1], new_tokens=len(new), prefill_s=prefill, total_s=total, ids=new)))


if __name__ == "__main__":
    main()
