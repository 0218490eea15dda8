import Foundation
import QwenCore
import Qwen2
import Testing
@testable import Training

// Timing of the training pass on the qwen2.5-0.5b shapes with random f32 weights, and the
// activation memory gradient checkpointing saves. Off unless QWENFT_BENCH_GRAD is set:
//
//   QWENFT_BENCH_GRAD=1 QWENFT_BENCH_LAYERS=2 QWENFT_BENCH_T=256 swift test --skip-build --filter TrainingBenchmark
//
// QWENFT_BENCH_CKPT=0 or 1 runs one mode only; QWENFT_BENCH_SINGLE=1 skips the 1-layer run.
// "RSS of the training state" is resident memory added by creating the pass and running a step
// (LoRA state, activations, scratch); peak RSS also counts building the random weights.
// (The Qwen2 and Training targets are built with -O even in debug, so this measures optimised
// kernels.) Per-layer cost comes from the difference between runs at 1 and LAYERS layers; the
// 24-layer step is extrapolated as head + 24 · layer.

let benchEnv = ProcessInfo.processInfo.environment

func qwen25_05B(layers: Int) -> Qwen2Config {
    Qwen2Config(vocabSize: 151_936, hiddenSize: 896, intermediateSize: 4864, numHiddenLayers: layers,
                numAttentionHeads: 14, numKeyValueHeads: 2, headDim: 64, maxPositionEmbeddings: 32768,
                rmsNormEps: 1e-6, ropeTheta: 1_000_000, tieWordEmbeddings: true)
}

/// Random f32 weights for `config` (uniform, scaled by 1/√fan-in), in memory.
func randomWeights(_ c: Qwen2Config, seed: UInt64) throws -> StoredWeights {
    let source = InMemoryTensorSource(path: "random")
    var state = seed
    func values(_ n: Int, _ scale: Float, _ offset: Float = 0) -> [Float] {
        var out = [Float](repeating: 0, count: n)
        out.withUnsafeMutableBufferPointer { p in
            for i in 0..<n { p[i] = offset + scale * (2 * uniform01(&state) - 1) }
        }
        return out
    }
    let C = c.hiddenSize
    source.add("model.embed_tokens.weight", shape: [c.vocabSize, C], values: values(c.vocabSize * C, 0.05))
    for l in 0..<c.numHiddenLayers {
        for p in Projection.allCases {
            let s = p.shape(c)
            source.add("model.layers.\(l).\(p.modulePath).weight", shape: [s.rows, s.cols],
                       values: values(s.rows * s.cols, 1 / Float(s.cols).squareRoot()))
        }
        for (p, n) in [("q", c.qDim), ("k", c.kvDim), ("v", c.kvDim)] {
            source.add("model.layers.\(l).self_attn.\(p)_proj.bias", shape: [n], values: values(n, 0.1))
        }
        source.add("model.layers.\(l).input_layernorm.weight", shape: [C], values: values(C, 0.1, 1))
        source.add("model.layers.\(l).post_attention_layernorm.weight", shape: [C], values: values(C, 0.1, 1))
    }
    source.add("model.norm.weight", shape: [C], values: values(C, 0.1, 1))
    return try StoredWeights(config: c, source: source)
}

func peakRSSMiB(_ field: String = "VmHWM") -> Double {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix(field) }),
          let kb = Double(line.split(separator: " ").dropFirst().first { !$0.isEmpty } ?? "") else { return 0 }
    return kb / 1024
}

@Suite struct TrainingBenchmark {
    @Test func activationMemoryOfCheckpointing() throws {
        let spec = try LoRASpec(rank: 8, alpha: 16, targetModules: ["all-linear"])
        let c = qwen25_05B(layers: 24)
        for T in [256, 2048] {
            let keep = Qwen2TrainingPass.savedActivationBytes(config: c, B: 1, T: T, lora: spec, gradientCheckpointing: false)
            let ckpt = Qwen2TrainingPass.savedActivationBytes(config: c, B: 1, T: T, lora: spec, gradientCheckpointing: true)
            print(String(format: "qwen2.5-0.5b LoRA r8 all-linear, T=%d: saved activations %.1f MiB, with checkpointing %.1f MiB (%.1f× less)",
                         T, Double(keep) / 1_048_576, Double(ckpt) / 1_048_576, Double(keep) / Double(ckpt)))
            #expect(ckpt * 5 < keep)
        }
    }

    @Test(.enabled(if: benchEnv["QWENFT_BENCH_GRAD"] != nil))
    func loraStepOnQwen25Shapes() throws {
        let layers = Int(benchEnv["QWENFT_BENCH_LAYERS"] ?? "") ?? 2
        let T = Int(benchEnv["QWENFT_BENCH_T"] ?? "") ?? 256
        let reps = Int(benchEnv["QWENFT_BENCH_REPS"] ?? "") ?? 2
        let spec = try LoRASpec(rank: 8, alpha: 16, targetModules: ["all-linear"])
        var perLayers: [Int: Double] = [:]
        let layerCounts = benchEnv["QWENFT_BENCH_SINGLE"] != nil ? [layers] : [1, layers]
        for L in layerCounts {
            let c = qwen25_05B(layers: L)
            let base = try randomWeights(c, seed: 1)
            let ids = (0..<T).map { Int32(($0 * 7919) % 150_000) }
            let batch = TrainingBatch(ids: ids, labels: ids, B: 1, T: T)
            let modes: [Bool] = benchEnv["QWENFT_BENCH_CKPT"].map { [$0 == "1"] } ?? [false, true]
            for ckpt in modes {
                let rssBefore = peakRSSMiB("VmRSS")
                let state = TrainableState(layout: try TrainableParameters.loraLayout(config: c, spec: spec))
                try TrainableParameters.initializeLoRA(state, config: c, spec: spec, seed: 2)
                let pass = try Qwen2TrainingPass(base: base, mode: .lora(spec), state: state, gradientCheckpointing: ckpt)
                _ = try pass.forwardBackward(batch, labelledTokens: T)  // warm-up: allocations
                // Buffers are zero-filled when allocated, so resident memory counts all of them.
                let rssTraining = peakRSSMiB("VmRSS") - rssBefore
                var best = Double.infinity
                for _ in 0..<reps {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    _ = try pass.forwardBackward(batch, labelledTokens: T)
                    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                }
                if !ckpt { perLayers[L] = best }
                print(String(format: "layers %d T %d ckpt %@: %.3f s/step (%.1f tokens/s), saved activations %.1f MiB, RSS of the training state %.0f MiB, peak RSS %.0f MiB",
                             L, T, ckpt ? "on " : "off", best, Double(T) / best,
                             Double(pass.savedActivationBytes) / 1_048_576, rssTraining, peakRSSMiB()))
            }
        }
        if layers > 1, let one = perLayers[1], let many = perLayers[layers] {
            let layer = (many - one) / Double(layers - 1)
            let head = one - layer
            let full = head + 24 * layer
            // Forward + backward FLOPs of LoRA training (frozen base: no weight gradients):
            // 2·N·params forward, 2·N·params for dinp, plus attention; lm_head counted the same way.
            let c = qwen25_05B(layers: 24)
            let perLayerParams = Projection.allCases.reduce(0) { $0 + $1.shape(c).rows * $1.shape(c).cols }
            let flops = 4.0 * Double(T) * Double(24 * perLayerParams + c.vocabSize * c.hiddenSize)
            print(String(format: "per layer %.3f s, head %.3f s → 24 layers ≈ %.2f s/step, %.1f tokens/s, %.1f GFLOP/s (4·N·params)",
                         layer, head, full, Double(T) / full, flops / full / 1e9))
            // The machine's GEMM rate right now, on a product of the step's shape, for reference.
            let M = T, K = 896, Ncol = 4864
            let a = AlignedBuffer<Float>(count: M * K), b = AlignedBuffer<Float>(count: Ncol * K)
            let out = AlignedBuffer<Float>(count: M * Ncol)
            var bestGemm = Double.infinity
            for _ in 0..<5 {
                let t0 = DispatchTime.now().uptimeNanoseconds
                GEMM.nt(M, Ncol, K, a.pointer, b.pointer, out.pointer)
                bestGemm = min(bestGemm, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            let gemmRate = 2.0 * Double(M * K * Ncol) / bestGemm / 1e9
            print(String(format: "GEMM (%d×%d×%d) now: %.1f GFLOP/s → the step runs at %.0f%% of it", M, K, Ncol,
                         gemmRate, 100 * flops / full / 1e9 / gemmRate))
        }
    }
}
