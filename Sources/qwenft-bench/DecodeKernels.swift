// decode-kernels: the fused decoding kernels (one input row) over bf16 and NF4 weights of the
// Qwen2.5-0.5B MLP shapes (Scripts/bench/qlora: why NF4 decoding is or is not faster).
import Foundation
import QwenCore
import Qwen2

/// CPU seconds of this process (all threads): steadier than wall time on a shared machine.
func cpuSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// `copies` gate_proj-shaped matrices (4864 × 896) in bf16 and in NF4 (block 64, double
/// quantisation), so the set streams from memory as a model's layers do; each pass runs
/// `linearForward` with one input row over every copy. Prints, per dtype, the best of `repeats`
/// passes: wall and CPU nanoseconds per weight, and bytes per weight read.
func runDecodeKernels(copies: Int, repeats: Int) {
    Threading.configure(threads: nil)
    let rows = 4864, cols = 896, n = rows * cols
    let src = UnsafeMutablePointer<Float>.allocate(capacity: n)
    defer { src.deallocate() }
    var bf16: [UnsafeMutablePointer<UInt16>] = []
    var nf4: [NF4Tensor] = []
    for c in 0..<copies {
        fillRandom(src, n, seed: UInt64(c + 1))
        let b = UnsafeMutablePointer<UInt16>.allocate(capacity: n)
        convertF32ToBF16(src, b, count: n)
        bf16.append(b)
        nf4.append(NF4Tensor.quantize(WeightMatrix(rows: rows, cols: cols, float32: src), blocksize: 64, doubleQuant: true))
    }
    defer { for b in bf16 { b.deallocate() } }
    let x = UnsafeMutablePointer<Float>.allocate(capacity: cols), out = UnsafeMutablePointer<Float>.allocate(capacity: rows)
    defer { x.deallocate(); out.deallocate() }
    fillRandom(x, cols, seed: 99)
    let scratch = LinearScratch()
    print("decode kernels: \(copies) × (\(rows) × \(cols)) weights, one input row, threads=\(Threading.count), best of \(repeats)")
    let cases: [(String, [WeightMatrix], Double)] = [
        ("bf16", bf16.map { WeightMatrix(rows: rows, cols: cols, dtype: .bf16, base: UnsafeRawPointer($0)) }, 2),
        ("nf4", nf4.map(\.matrix), 0.5 + 4.0 / 64),
    ]
    var wallPerWeight: [String: Double] = [:]
    for (name, ms, bytes) in cases {
        var bestWall = Double.infinity, bestCPU = Double.infinity
        for _ in 0...repeats {  // the first pass warms up
            let c0 = cpuSeconds()
            let wall = seconds {
                for m in ms { linearForward(out: out, inp: x, weight: m, bias: nil, N: 1, scratch: scratch) }
            }
            bestWall = min(bestWall, wall)
            bestCPU = min(bestCPU, cpuSeconds() - c0)
        }
        let weights = Double(copies * n)
        print(String(format: "%@ %.3f ns/weight wall, %.3f ns/weight CPU, %.2f GB/s (%.2f bytes/weight)",
                     name as NSString, bestWall * 1e9 / weights, bestCPU * 1e9 / weights, weights * bytes / bestWall / 1e9, bytes))
        wallPerWeight[name] = bestWall / weights
    }
    // What these kernels allow a whole decoding token of the qwen2.5-0.5b preset: its lm_head
    // (151,936 × 896, bf16 in both modes) against its 24 layers' projections (q, o 896 × 896; k, v
    // 128 × 896; gate, up, down 4864 × 896), NF4 or bf16, everything else left out.
    if let b = wallPerWeight["bf16"], let q = wallPerWeight["nf4"] {
        let head: Double = 151_936 * 896
        let projections: Double = 24 * 896 * (2 * 896 + 2 * 128 + 3 * 4864)
        let r = q / b
        let ceiling = (head + projections) / (head + projections * r)
        let needed = ((head + projections) / 1.5 - head) / projections
        print(String(format: "nf4/bf16 wall per weight %.2f: qwen2.5-0.5b decode at most %.2fx bf16 tokens/s "
                     + "(%.0fM bf16 lm_head + %.0fM projections; 1.5x needs %.2f or less)",
                     r, ceiling, head / 1e6, projections / 1e6, needed))
    }
}
