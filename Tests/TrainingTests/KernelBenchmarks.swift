import Foundation
import QwenCore
import Testing
@testable import Training

/// Timings of the optimizer-side kernels at real sizes, run by Scripts/bench/optim/run.sh
/// (QWENFT_BENCH=1); skipped in the normal test run.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["QWENFT_BENCH"] != nil))
struct KernelBenchmarks {
    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    /// One lm_head chunk's loss: N tokens × the Qwen2 vocabulary, forward + backward in place.
    @Test func crossEntropy() throws {
        let N = 256, V = 151_936
        let logits = AlignedBuffer<Float>(count: N * V)
        var seed: UInt64 = 1
        for i in 0 ..< N * V {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            logits[i] = Float(Int64(bitPattern: seed >> 11) % 2000) / 250
        }
        let targets = (0 ..< N).map { Int32(($0 * 7919) % V) }
        let losses = AlignedBuffer<Float>(count: N)
        var best = Double.infinity
        for _ in 0 ..< 3 {
            let copy = AlignedBuffer<Float>(count: N * V)
            copy.pointer.update(from: logits.pointer, count: N * V)
            best = min(best, try Self.seconds {
                try crossEntropyForwardBackward(dlogits: copy.pointer, losses: losses.pointer, logits: copy.pointer,
                                                targets: targets, N: N, V: V, scale: 1 / Float(N))
            })
        }
        print(String(format: "BENCH cross_entropy N=%d V=%d threads=%d: %.4f s (%.1f Melem/s)", N, V, Threading.count, best, Double(N * V) / best / 1e6))
    }

    /// One AdamW step over 20M parameters (about a 7B LoRA r=64 on all linear layers: 160M; a
    /// 0.5B full fine-tune: 494M — scale linearly).
    @Test func adamw() throws {
        let n = 20_000_000
        let layout = try ParameterLayout([("w", [n])])
        let state = TrainableState(layout: layout)
        for i in stride(from: 0, to: n, by: 1) { state.params[i] = 0.01; state.grads[i] = Float(i % 97) * 1e-4 }
        let adam = AdamW(layout: layout, hyper: AdamWHyperparameters(weightDecay: 0.01))
        adam.step(params: state.params.pointer, grads: state.grads.readOnly, lr: 1e-4)  // touch m, v
        var best = Double.infinity
        for _ in 0 ..< 3 {
            best = min(best, Self.seconds { adam.step(params: state.params.pointer, grads: state.grads.readOnly, lr: 1e-4) })
        }
        var clip = Double.infinity
        for _ in 0 ..< 3 {
            clip = min(clip, Self.seconds { GradientClipping.clipGlobalNorm(state.hostGrads, count: n, maxNorm: 1) })
        }
        print(String(format: "BENCH adamw n=%d threads=%d: %.4f s (%.1f Melem/s); clip_grad_norm: %.4f s", n, Threading.count, best, Double(n) / best / 1e6, clip))
    }
}
