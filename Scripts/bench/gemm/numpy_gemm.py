"""numpy's side of Scripts/bench/gemm/run.sh, and the table that compares both.

    python numpy_gemm.py [--tokens T] [--repeats R]          # JSON lines, one per GEMM, like qwenft-bench --json
    python numpy_gemm.py compare OURS.jsonl NUMPY.jsonl OURS.time NUMPY.time   # the side-by-side table

Same shapes, layouts, buffers reused, one warm-up then best of R, as Sources/qwenft-bench/main.swift:
forward y = x @ W.T (NT), input gradient dx = dy @ W (NN), weight gradient dW = dy.T @ x (TN),
written into preallocated outputs (numpy hands the transposed views to sgemm as transpose flags).
"""
import json
import re
import sys
import time

SHAPES = [("q/o_proj 896x896", 896, 896), ("gate/up_proj 896x4864", 896, 4864),
          ("down_proj 4864x896", 4864, 896), ("lm_head 896x151936", 896, 151936)]


def bench(tokens, repeats):
    import numpy as np
    rng = np.random.default_rng(0)
    T = tokens
    for layer, C, OC in SHAPES:
        x = rng.uniform(-1, 1, (T, C)).astype(np.float32)
        w = rng.uniform(-1, 1, (OC, C)).astype(np.float32)
        y = rng.uniform(-1, 1, (T, OC)).astype(np.float32)
        dx = np.empty((T, C), np.float32)
        dw = np.empty((OC, C), np.float32)
        variants = [("NT", T, OC, C, lambda: np.matmul(x, w.T, out=y)),
                    ("NN", T, C, OC, lambda: np.matmul(y, w, out=dx)),
                    ("TN", OC, C, T, lambda: np.matmul(y.T, x, out=dw))]
        for name, M, N, K, run in variants:
            run()
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                run()
                best = min(best, time.perf_counter() - t0)
            print(json.dumps({"layer": layer, "variant": name, "M": M, "N": N, "K": K,
                              "seconds": best, "gflops": 2 * M * N * K / best / 1e9}), flush=True)


def peak_rss_mib(time_file):
    kib = [int(k) for k in re.findall(r"Maximum resident set size \(kbytes\): (\d+)", open(time_file).read())]
    return max(kib) / 1024 if kib else float("nan")


def best_runs(path):
    """Each product's fastest run over all passes, in first-seen order."""
    best = {}
    for line in open(path):
        if line.startswith("{"):
            r = json.loads(line)
            key = (r["layer"], r["variant"])
            if key not in best or r["seconds"] < best[key]["seconds"]:
                best[key] = r
    return best


def compare(ours, theirs, ours_time, theirs_time):
    a = best_runs(ours)
    b = best_runs(theirs)
    print(f"{'layer':<24}{'variant':<9}{'M x N x K':<22}{'qwenft GFLOP/s':>15}{'numpy GFLOP/s':>15}{'ratio':>8}")
    sa = sb = 0.0
    for key, r in a.items():
        n = b[key]
        sa += r["seconds"]
        sb += n["seconds"]
        dims = f"{r['M']} x {r['N']} x {r['K']}"
        print(f"{r['layer']:<24}{r['variant']:<9}{dims:<22}{r['gflops']:>15.1f}{n['gflops']:>15.1f}{r['gflops'] / n['gflops']:>8.2f}")
    print(f"total time of all {len(a)} products (best runs): qwenft {sa * 1000:.1f} ms, numpy {sb * 1000:.1f} ms, "
          f"speed ratio qwenft/numpy {sb / sa:.2f}")
    print(f"peak RSS: qwenft {peak_rss_mib(ours_time):.0f} MiB, numpy {peak_rss_mib(theirs_time):.0f} MiB")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "compare":
        compare(*sys.argv[2:6])
    else:
        args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
        bench(int(args.get("--tokens", 256)), int(args.get("--repeats", 3)))
