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
    }
}
