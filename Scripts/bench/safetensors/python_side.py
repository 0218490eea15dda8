"""Python's side of Scripts/bench/safetensors/run.sh.

    python python_side.py make FILE       # a bf16 file with the Qwen2.5-0.5B tensor shapes (494M params)
    python python_side.py roundtrip IN OUT  # load_file, every tensor .float(), back to bf16, save_file
"""
import sys
import time

import torch
from safetensors.torch import load_file, save_file


def qwen05b_shapes():
    H, I, V, L, KV = 896, 4864, 151936, 24, 128
    shapes = {"model.embed_tokens.weight": (V, H), "model.norm.weight": (H,)}
    for i in range(L):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (H,), p + "post_attention_layernorm.weight": (H,),
            p + "self_attn.q_proj.weight": (H, H), p + "self_attn.q_proj.bias": (H,),
            p + "self_attn.k_proj.weight": (KV, H), p + "self_attn.k_proj.bias": (KV,),
            p + "self_attn.v_proj.weight": (KV, H), p + "self_attn.v_proj.bias": (KV,),
            p + "self_attn.o_proj.weight": (H, H),
            p + "mlp.gate_proj.weight": (I, H), p + "mlp.up_proj.weight": (I, H), p + "mlp.down_proj.weight": (H, I),
        })
    return shapes


def make(path):
    g = torch.Generator().manual_seed(0)
    tensors = {k: (torch.randn(s, generator=g) * 0.02).to(torch.bfloat16) for k, s in qwen05b_shapes().items()}
    save_file(tensors, path, metadata={"format": "pt"})
    print(f"made {path}: {sum(t.numel() for t in tensors.values()):,} parameters")


def roundtrip(src, dst):
    t0 = time.perf_counter()
    floats = {k: v.float() for k, v in load_file(src).items()}
    t1 = time.perf_counter()
    save_file({k: v.to(torch.bfloat16) for k, v in floats.items()}, dst, metadata={"format": "pt"})
    t2 = time.perf_counter()
    print(f"python: load+widen {t1 - t0:.2f} s, narrow+save {t2 - t1:.2f} s, total {t2 - t0:.2f} s")


if __name__ == "__main__":
    {"make": make, "roundtrip": roundtrip}[sys.argv[1]](*sys.argv[2:])
