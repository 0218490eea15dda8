// lora-kernels: LoRA's rank-r products (Qwen2/CPU/Kernels/RankProducts.swift) against the same
// products through GEMM (cblas_sgemm), on a model's projection shapes at T tokens.
import Foundation
import Qwen2
import QwenCore

/// This thread's CPU seconds: on a shared machine, time other processes take is not counted.
func threadSeconds(_ body: () -> Void) -> Double {
    var t0 = timespec(), t1 = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0)
    body()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1)
    return Double(t1.tv_sec - t0.tv_sec) + Double(t1.tv_nsec - t0.tv_nsec) / 1e9
}

/// Each projection shape (C→OC) of the 0.5B model (or a folder's), the six products of a LoRA
/// forward and backward, timed one-threaded (thread CPU time) and with every thread (wall clock),
/// best of R after a warm-up, through GEMM and through the rank kernels. The last lines weigh
/// the shapes by how often a step runs them.
/// With `cold`, 64 MB are written before each timed call, so the operands come from memory as in
/// a training step (where the base products stream their weights through the caches in between).
func runLoRAKernels(tokens T: Int, rank r: Int, repeats: Int, shapes: [GemmCase], cold: Bool = false) {
    Threading.configure(threads: nil)
    let flush = AlignedBuffer<Float>(count: cold ? 1 << 24 : 1)
    func timed(_ clock: (() -> Void) -> Double, _ run: @escaping () -> Void) -> Double {
        if cold { parallelChunks(flush.count, minChunk: 1 << 20) { rg in for i in rg { flush.pointer[i] = Float(i) } } }
        return clock(run)
    }
    print("LoRA rank-\(r) products, T=\(T), best of \(repeats)\(cold ? ", caches flushed before each" : ""): GEMM (cblas_sgemm) vs rank kernels, GFLOP/s")
    print("shape                   product  1 thread: gemm   rank    \(Threading.count) threads: gemm   rank")
    var totals = [Double](repeating: 0, count: 4), flopsTotal = 0.0
    for c in shapes where !c.layer.hasPrefix("lm_head") {
        let C = c.inFeatures, OC = c.outFeatures
        let x = AlignedBuffer<Float>(count: T * C), dinp = AlignedBuffer<Float>(count: T * C)
        let out = AlignedBuffer<Float>(count: T * OC), dout = AlignedBuffer<Float>(count: T * OC)
        let A = AlignedBuffer<Float>(count: r * C), B = AlignedBuffer<Float>(count: OC * r)
        let dA = AlignedBuffer<Float>(count: r * C), dB = AlignedBuffer<Float>(count: OC * r)
        let bt = AlignedBuffer<Float>(count: OC * r)
        let xa = AlignedBuffer<Float>(count: T * r), dxa = AlignedBuffer<Float>(count: T * r)
        for (i, b) in [x, dout, A, B, xa, dxa].enumerated() { fillRandom(b.pointer, b.count, seed: UInt64(10 + i)) }
        transposeInto(bt.pointer, B.pointer, rows: OC, cols: r)
        let s: Float = 2
        // (name, flops, gemm, rank); the rank side of xa·Bᵀ and dout·B includes transposing B.
        let cases: [(String, Double, () -> Void, () -> Void)] = [
            ("x·Aᵀ", 2.0 * Double(T * r * C),
             { GEMM.nt(T, r, C, x.pointer, A.pointer, xa.pointer) },
             { rankProject(T, r, C, x.pointer, A.pointer, xa.pointer) }),
            ("xa·Bᵀ", 2.0 * Double(T * OC * r),
             { GEMM.nt(T, OC, r, xa.pointer, B.pointer, out.pointer, alpha: s, accumulate: true) },
             { transposeInto(bt.pointer, B.pointer, rows: OC, cols: r)
               rankExpand(T, OC, r, xa.pointer, bt.pointer, out.pointer, alpha: s, accumulate: true) }),
            ("dB", 2.0 * Double(T * OC * r),
             { GEMM.tn(OC, r, T, dout.pointer, xa.pointer, dB.pointer, alpha: s, accumulate: true) },
             { rankGather(T, r, OC, xa.pointer, dout.pointer, dB.pointer, alpha: s, accumulate: true, transposed: true) }),
            ("dxa", 2.0 * Double(T * OC * r),
             { GEMM.nn(T, r, OC, dout.pointer, B.pointer, dxa.pointer, alpha: s) },
             { transposeInto(bt.pointer, B.pointer, rows: OC, cols: r)
               rankProject(T, r, OC, dout.pointer, bt.pointer, dxa.pointer, alpha: s) }),
            ("dA", 2.0 * Double(T * r * C),
             { GEMM.tn(r, C, T, dxa.pointer, x.pointer, dA.pointer, accumulate: true) },
             { rankGather(T, r, C, dxa.pointer, x.pointer, dA.pointer, accumulate: true) }),
            ("dinp", 2.0 * Double(T * C * r),
             { GEMM.nn(T, C, r, dxa.pointer, A.pointer, dinp.pointer, accumulate: true) },
             { rankExpand(T, C, r, dxa.pointer, A.pointer, dinp.pointer, accumulate: true) }),
        ]
        for (name, flops, gemm, rank) in cases {
            var rates: [Double] = []
            for run in [gemm, rank] {
                let one = Threading.withCount(1) { () -> Double in
                    run()
                    return (0..<repeats).map { _ in timed(threadSeconds, run) }.min() ?? .infinity
                }
                run()
                let all = (0..<repeats).map { _ in timed(seconds, run) }.min() ?? .infinity
                rates += [flops / one / 1e9, flops / all / 1e9]
            }
            for (k, rate) in [rates[0], rates[2], rates[1], rates[3]].enumerated() {
                totals[k] += Double(c.count) * flops / rate
            }
            flopsTotal += Double(c.count) * flops
            print(c.layer.padding(toLength: 24, withPad: " ", startingAt: 0) + name.padding(toLength: 7, withPad: " ", startingAt: 0)
                  + String(format: "  %12.1f %6.1f  %15.1f %6.1f", rates[0], rates[2], rates[1], rates[3]))
        }
    }
    print("weighted by a step".padding(toLength: 31, withPad: " ", startingAt: 0)
          + String(format: "  %12.1f %6.1f  %15.1f %6.1f", flopsTotal / totals[0], flopsTotal / totals[1],
                   flopsTotal / totals[2], flopsTotal / totals[3]))
}
