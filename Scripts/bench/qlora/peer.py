#!/usr/bin/env python3
"""The Python peer of Scripts/bench/qlora/run.sh's training part: QLoRA as the seeds run it —
transformers + bitsandbytes (NF4, double quantisation, compute dtype float32) +
peft (prepare_model_for_kbit_training) — on the CPU, same model folder and token ids.

    python peer.py MODEL_DIR IDS_JSON STEPS THREADS LORA_R [ALPHA DROPOUT CHECKPOINTING]
        → one JSON line on stdout (ALPHA defaults to 2·r, DROPOUT to 0, CHECKPOINTING to 0)
"""
import json
import sys
import time

import torch
import torch.nn.functional as F


def main():
    model_dir, ids_path, steps, threads, r = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    alpha = float(sys.argv[6]) if len(sys.argv) > 6 else 2 * r
    dropout = float(sys.argv[7]) if len(sys.argv) > 7 else 0.0
    checkpointing = len(sys.argv) > 8 and sys.argv[8] not in ("0", "false")
    torch.set_num_threads(threads)
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    rows = json.load(open(ids_path))
    t_load = time.perf_counter()
    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                             bnb_4bit_compute_dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=bnb, device_map="cpu", dtype=torch.float32,
                                                 attn_implementation="sdpa")
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
    model = get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout,
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    print(f"peer loaded: {time.perf_counter() - t_load:.1f} s", file=sys.stderr)
    times = []
    for s in range(steps):
        ids = torch.tensor([rows[s % len(rows)]])
        t0 = time.perf_counter()
        logits = model(input_ids=ids).logits
        loss = F.cross_entropy(logits[0, :-1].float(), ids[0, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t0)
        print(f"peer step {s + 1}: loss {loss.item():.4f} {times[-1]:.2f} s", file=sys.stderr)
    steady = times[1:] or times
    steady.sort()
    print(json.dumps(dict(seconds_per_step=steady[len(steady) // 2], steps=steps, first_step_s=times[0], step_seconds=times)))


if __name__ == "__main__":
    main()
