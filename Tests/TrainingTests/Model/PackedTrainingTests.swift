import Foundation
import QwenCore
import Qwen2
import Testing
@testable import Training

// Packing must not change what is learned: a packed batch (several samples per row, per-sample
// RoPE positions, attention kept within each segment) gives the same loss and gradients as the
// same samples run one by one, unpadded, with the same step-wide normaliser.

@Suite struct PackedTrainingTests {
    /// Three samples of 5, 6 and 7 tokens; the first two share row 0, the third is row 1.
    static let samples: [(ids: [Int32], labels: [Int32])] = {
        var rng = SeededRNG(seed: 42)
        return [5, 6, 7].map { n in
            let ids = (0..<n).map { _ in Int32(rng.next() % 60) + 1 }
            // A prompt token or two without loss, the rest targets.
            let labels = ids.enumerated().map { $0.offset < 2 ? Int32(-100) : $0.element }
            return (ids, labels)
        }
    }()

    /// Rows of T = 12: [s0 s1 pad], [s2 pad…]; the first token of each sample labelled −100.
    static func packedBatch() -> TrainingBatch {
        let T = 12
        var ids = [Int32](repeating: 0, count: 2 * T), labels = [Int32](repeating: -100, count: 2 * T)
        var pos = [Int32](repeating: 0, count: 2 * T), seg = [Int32](repeating: 0, count: 2 * T)
        let layout: [[Int]] = [[0, 1], [2]]
        for (row, members) in layout.enumerated() {
            var t = 0
            for (k, s) in members.enumerated() {
                let sample = samples[s]
                for i in 0..<sample.ids.count {
                    ids[row * T + t] = sample.ids[i]
                    labels[row * T + t] = i == 0 ? -100 : sample.labels[i]
                    pos[row * T + t] = Int32(i)
                    seg[row * T + t] = Int32(k + 1)
                    t += 1
                }
            }
        }
        return TrainingBatch(ids: ids, labels: labels, attentionMask: seg.map { $0 != 0 ? 1 : 0 },
                             positionIds: pos, segmentIds: seg, B: 2, T: T)
    }

    static func unpacked() -> [TrainingBatch] {
        samples.map { TrainingBatch(ids: $0.ids, labels: $0.labels, B: 1, T: $0.ids.count) }
    }

    /// Runs `batches` with one normaliser; returns Σ loss and the gradient buffer.
    static func run(_ batches: [TrainingBatch], pass: Qwen2TrainingPass, normaliser: Int) throws -> (Double, [Float]) {
        pass.state.zeroGrads()
        var loss = 0.0
        for b in batches { loss += try pass.forwardBackward(b, labelledTokens: normaliser).lossSum }
        return (loss, Array(pass.state.grads.buffer))
    }

    /// Every tensor's gradient within 1e-5 of its largest magnitude.
    static func expectClose(_ a: [Float], _ b: [Float], layout: ParameterLayout) {
        for e in layout.entries {
            let x = a[e.offset..<(e.offset + e.count)], y = b[e.offset..<(e.offset + e.count)]
            let scale = y.reduce(Float(0)) { max($0, abs($1)) }
            let diff = zip(x, y).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
            #expect(diff <= 1e-5 * max(scale, 1e-12), "\(e.name): max |packed − unpacked| \(diff), largest |g| \(scale)")
            #expect(scale > 0, "\(e.name): no gradient at all")
        }
    }

    @Test(arguments: [false, true])
    func packedLoRAEqualsUnpacked(checkpointing: Bool) throws {
        let f = try GradFixture("untied-gqa2")
        let spec = try LoRASpec(rank: 4, alpha: 8, dropout: 0, targetModules: ["all-linear"])
        let state = TrainableState(layout: try TrainableParameters.loraLayout(config: f.config, spec: spec))
        try TrainableParameters.initializeLoRA(state, config: f.config, spec: spec, seed: 3)
        for e in state.layout.entries where e.name.contains("lora_B") {
            for i in 0..<e.count { state.param(e)[i] = 0.01 * Float(i % 7 - 3) }
        }
        let pass = try Qwen2TrainingPass(base: f.base, mode: .lora(spec), state: state, gradientCheckpointing: checkpointing)
        let packed = Self.packedBatch()
        let count = Self.unpacked().reduce(0) { $0 + $1.labelledTokens }
        #expect(packed.labelledTokens == count)
        let (lp, gp) = try Self.run([packed], pass: pass, normaliser: count)
        let (lu, gu) = try Self.run(Self.unpacked(), pass: pass, normaliser: count)
        #expect(abs(lp - lu) <= 1e-5 * abs(lu), "loss sum packed \(lp) vs unpacked \(lu)")
        Self.expectClose(gp, gu, layout: state.layout)
    }

    @Test func packedFullEqualsUnpacked() throws {
        let f = try GradFixture("tied-mha")
        let state = TrainableState(layout: try TrainableParameters.fullLayout(config: f.config))
        try TrainableParameters.copyWeights(from: f.base, into: state)
        let pass = try Qwen2TrainingPass(base: f.base, mode: .full, state: state)
        let count = Self.unpacked().reduce(0) { $0 + $1.labelledTokens }
        let (lp, gp) = try Self.run([Self.packedBatch()], pass: pass, normaliser: count)
        let (lu, gu) = try Self.run(Self.unpacked(), pass: pass, normaliser: count)
        #expect(abs(lp - lu) <= 1e-5 * abs(lu), "loss sum packed \(lp) vs unpacked \(lu)")
        Self.expectClose(gp, gu, layout: state.layout)
    }

    /// Without segments the same packed row is contaminated: the test above would catch a kernel
    /// that ignored them.
    @Test func ignoringSegmentsChangesTheLoss() throws {
        let f = try GradFixture("untied-gqa2")
        let state = TrainableState(layout: try TrainableParameters.fullLayout(config: f.config))
        try TrainableParameters.copyWeights(from: f.base, into: state)
        let pass = try Qwen2TrainingPass(base: f.base, mode: .full, state: state)
        var plain = Self.packedBatch()
        let packed = try pass.loss(plain).lossSum
        plain.positionIds = nil
        plain.segmentIds = nil
        #expect(abs(try pass.loss(plain).lossSum - packed) > 1e-4)
    }

    @Test func badPositionIdsThrow() throws {
        let f = try GradFixture("untied-gqa2")
        let state = TrainableState(layout: try TrainableParameters.fullLayout(config: f.config))
        try TrainableParameters.copyWeights(from: f.base, into: state)
        let pass = try Qwen2TrainingPass(base: f.base, mode: .full, state: state)
        var b = Self.packedBatch()
        b.positionIds![3] = 99
        #expect(throws: (any Error).self) { try pass.loss(b) }
        b.positionIds = [0, 1]
        #expect(throws: (any Error).self) { try pass.loss(b) }
    }
}
