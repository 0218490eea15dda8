#!/usr/bin/env python3
"""The PyTorch + peft side of Scripts/bench/train/run.sh: LoRA training steps on the same model
folder and the same token ids as qwenft, f32, batch 1, AdamW, and the tokens/s it reaches.

    python torch_side.py MODEL_DIR IDS_JSON STEPS THREADS LORA_R [CHECKPOINTING]   → one JSON line on stdout

CHECKPOINTING `true` turns on transformers' gradient checkpointing (non-reentrant, as the
Trainer's default; the embedding output made to require grad as peft's kbit preparation does).
"""
import json
import sys
import time

import torch
import torch.nn.functional as F


def main():
    model_dir, ids_path, steps, threads, r = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    checkpointing = len(sys.argv) > 6 and sys.argv[6] == "true"
    torch.set_num_threads(threads)
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2ForCausalLM
    rows = json.load(open(ids_path))
    model = Qwen2ForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0,
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    times, tokens = [], []
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
        tokens.append(ids.shape[1])
        print(f"torch step {s + 1}: loss {loss.item():.4f} {times[-1]:.2f} s", file=sys.stderr)
    steady = slice(1, None) if steps > 1 else slice(0, None)
    print(json.dumps(dict(tokens_per_second=sum(tokens[steady]) / sum(times[steady]), steps=steps,
                          seconds=sum(times), first_step_s=times[0])))


if __name__ == "__main__":
    main()
