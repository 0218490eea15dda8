#!/usr/bin/env python3
"""The PyTorch side of Scripts/bench/optim/run.sh: the same shapes as KernelBenchmarks.swift."""
import sys
import time

import torch
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
torch.set_num_threads(threads)


def best(fn, n=3):
    t = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


N, V = 256, 151936
x = (torch.randint(-1000, 1000, (N, V)).float() / 250).requires_grad_(True)
tg = torch.arange(N) * 7919 % V


def ce():
    x.grad = None
    (F.cross_entropy(x, tg, reduction="sum") / N).backward()


t = best(ce)
print(f"BENCH torch cross_entropy N={N} V={V} threads={threads}: {t:.4f} s ({N * V / t / 1e6:.1f} Melem/s)")

n = 20_000_000
p = torch.nn.Parameter(torch.full((n,), 0.01))
p.grad = (torch.arange(n) % 97).float() * 1e-4
opt = torch.optim.AdamW([p], lr=1e-4, weight_decay=0.01, foreach=False, fused=False)
opt.step()
t = best(opt.step)
c = best(lambda: torch.nn.utils.clip_grad_norm_([p], 1.0))
print(f"BENCH torch adamw n={n} threads={threads}: {t:.4f} s ({n / t / 1e6:.1f} Melem/s); clip_grad_norm: {c:.4f} s")
optf = torch.optim.AdamW([p], lr=1e-4, weight_decay=0.01, fused=True)
optf.step()
t = best(optf.step)
print(f"BENCH torch adamw (fused, transformers' default optim) n={n}: {t:.4f} s ({n / t / 1e6:.1f} Melem/s)")
