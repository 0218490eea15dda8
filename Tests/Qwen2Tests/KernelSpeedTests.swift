import Foundation
import QwenCore
import Testing
@testable import Qwen2

/// Memory-bandwidth of the decoding kernels on an lm_head-sized matrix; runs only with
/// QWENFT_KERNEL_BENCH=1 (it allocates ~800 MB): `QWENFT_KERNEL_BENCH=1 swift test --filter KernelSpeed`.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["QWENFT_KERNEL_BENCH"] == "1"))
struct KernelSpeedTests {
    /// CPU time of the whole process: a fairer yardstick than wall time on a shared machine.
    func cpuSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    @Test func gemvBandwidth() {
        Threading.withCount(Int(ProcessInfo.processInfo.environment["QWENFT_THREADS"] ?? "2") ?? 2) {
            let rows = 151_936, cols = 896
            let f32 = AlignedBuffer<Float>(count: rows * cols)
            let bf16 = AlignedBuffer<UInt16>(count: rows * cols)
            for i in stride(from: 0, to: rows * cols, by: 1) { f32[i] = Float(i % 17) * 0.01; bf16[i] = 0x3c00 }
            let x = AlignedBuffer<Float>((0..<cols).map { Float($0 % 5) })
            let out = AlignedBuffer<Float>(count: rows)
            let scratch = LinearScratch()
            func time(_ label: String, bytes: Int, _ body: () -> Void) {
                body()
                var best = Double.infinity
                var bestCPU = Double.infinity
                for _ in 0..<5 {
                    let t0 = Date(), c0 = cpuSeconds()
                    body()
                    best = min(best, Date().timeIntervalSince(t0))
                    bestCPU = min(bestCPU, cpuSeconds() - c0)
                }
                print(String(format: "%@: %.1f ms, %.1f GB/s wall; %.1f ms CPU (all threads)", label, best * 1000,
                             Double(bytes) / best / 1e9, bestCPU * 1000))
            }
            time("read f32 (sum)", bytes: rows * cols * 4) {
                var partial = [Float](repeating: 0, count: 64)
                partial.withUnsafeMutableBufferPointer { p in
                    parallelChunks(rows * cols, minChunk: 1 << 20) { r in
                        p[r.lowerBound / (1 << 20) % 64] += sumOfSquares(f32.pointer + r.lowerBound, r.count)
                    }
                }
            }
            let wf = WeightMatrix(rows: rows, cols: cols, float32: f32.pointer)
            time("f32 fused (decode)", bytes: rows * cols * 4) {
                linearForward(out: out.pointer, inp: x.pointer, weight: wf, bias: nil, N: 1, scratch: scratch)
            }
            let wb = WeightMatrix(rows: rows, cols: cols, dtype: .bf16, base: UnsafeRawPointer(bf16.pointer))
            time("bf16 fused", bytes: rows * cols * 2) {
                linearForward(out: out.pointer, inp: x.pointer, weight: wb, bias: nil, N: 1, scratch: scratch)
            }
            time("bf16 widen all", bytes: rows * cols * 2) {
                parallelChunks(rows, minChunk: 1024) { r in wb.widenRows(r, into: f32.pointer + r.lowerBound * cols) }
            }
            let x32 = AlignedBuffer<Float>(count: 32 * cols)
            let out32 = AlignedBuffer<Float>(count: 32 * rows)
            time("f32 gemm N=32", bytes: rows * cols * 4) {
                linearForward(out: out32.pointer, inp: x32.pointer, weight: wf, bias: nil, N: 32, scratch: scratch)
            }
            time("bf16 tiled gemm N=32", bytes: rows * cols * 2) {
                linearForward(out: out32.pointer, inp: x32.pointer, weight: wb, bias: nil, N: 32, scratch: scratch)
            }
        }
    }
}
