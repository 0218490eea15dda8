#!/usr/bin/env python3
"""PyTorch + peft peer of TrainingBenchmark.loraStepOnQwen25Shapes: one LoRA (r=8, all-linear)
forward+backward of a (1, T) batch on the qwen2.5-0.5b shapes with LAYERS layers, random f32 weights.
Prints seconds per step (best of REPS after a warm-up) and tokens/s.
Usage: peer.py LAYERS T REPS THREADS
"""
import sys
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import Qwen2Config, Qwen2ForCausalLM

layers, T, reps, threads = (int(a) for a in sys.argv[1:5])
torch.set_num_threads(threads)
torch.manual_seed(0)
cfg = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=layers,
                  num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                  rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, attn_implementation="sdpa")
model = get_peft_model(Qwen2ForCausalLM(cfg).float(), LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                                                  target_modules="all-linear"))
model.train()
ids = (torch.arange(T) * 7919 % 150000).unsqueeze(0)
best = float("inf")
for i in range(reps + 1):
    t0 = time.perf_counter()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    dt = time.perf_counter() - t0
    if i > 0:
        best = min(best, dt)
print(f"torch layers {layers} T {T}: {best:.3f} s/step ({T / best:.1f} tokens/s)")
