import Foundation
import QwenCore
import Qwen2
import Testing
@testable import Training

// Properties of the training pass that need no PyTorch: checkpointing changes no bit, micro-batches
// with a step-wide normaliser add up to the whole batch, half-precision bases give the gradients of
// their rounded values, and bad input throws before any gradient is touched.

/// The fixture model's weights re-stored in `dtype` (what a bf16 / f16 checkpoint holds), and the
/// same rounded values in f32.
func restored(_ f: GradFixture, as dtype: DType) throws -> (half: StoredWeights, rounded: StoredWeights) {
    let half = InMemoryTensorSource(path: "\(f.name)-\(dtype)")
    let rounded = InMemoryTensorSource(path: "\(f.name)-\(dtype)-f32")
    for name in f.model.tensorNames {
        guard let t = f.model.tensor(named: name) else { continue }
        let v = try f.model.floats(name)
        var r = [Float](repeating: 0, count: v.count)
        var bits = [UInt16](repeating: 0, count: v.count)
        v.withUnsafeBufferPointer { src in
            bits.withUnsafeMutableBytes { convertFromFloat(src.baseAddress!, $0.baseAddress!, dtype: dtype, count: v.count) }
        }
        bits.withUnsafeBytes { convertToFloat($0.baseAddress!, dtype: dtype, &r, count: v.count) }
        // Matrices stay half; norms and biases are widened by the provider either way.
        half.add(name, shape: t.shape, values: r, dtype: t.shape.count == 2 ? dtype : .f32)
        rounded.add(name, shape: t.shape, values: r, dtype: .f32)
    }
    return (try StoredWeights(config: f.config, source: half), try StoredWeights(config: f.config, source: rounded))
}

func loraState(_ f: GradFixture, spec: LoRASpec) throws -> TrainableState {
    let state = TrainableState(layout: try TrainableParameters.loraLayout(config: f.config, spec: spec))
    for e in state.layout.entries {
        let v = try f.grads.floats("lora_init.\(e.name)")
        state.param(e).update(from: v, count: v.count)
    }
    return state
}

func rows(_ batch: TrainingBatch, _ r: Range<Int>) -> TrainingBatch {
    let T = batch.T
    return TrainingBatch(ids: Array(batch.ids[(r.lowerBound * T)..<(r.upperBound * T)]),
                         labels: Array(batch.labels[(r.lowerBound * T)..<(r.upperBound * T)]),
                         attentionMask: batch.attentionMask.map { Array($0[(r.lowerBound * T)..<(r.upperBound * T)]) },
                         B: r.count, T: T)
}

@Suite struct TrainingPassTests {
    @Test(arguments: [Float(0), 0.25])
    func checkpointingGivesIdenticalGradients(dropout: Float) throws {
        let f = try GradFixture("untied-gqa2")
        let spec = try LoRASpec(rank: 4, alpha: 8, dropout: dropout, targetModules: ["all-linear"])
        var grads: [[Float]] = []
        var losses: [Double] = []
        for ckpt in [false, true] {
            let state = TrainableState(layout: try TrainableParameters.loraLayout(config: f.config, spec: spec))
            try TrainableParameters.initializeLoRA(state, config: f.config, spec: spec, seed: 3)
            for e in state.layout.entries where e.name.contains("lora_B") {
                for i in 0..<e.count { state.param(e)[i] = 0.01 * Float(i % 7 - 3) }
            }
            let pass = try Qwen2TrainingPass(base: f.base, mode: .lora(spec), state: state,
                                             gradientCheckpointing: ckpt, dropoutSeed: 11)
            state.zeroGrads()
            losses.append(try pass.forwardBackward(f.batch, labelledTokens: 20, dropoutStream: 5).lossSum)
            grads.append(Array(state.grads.buffer))
        }
        #expect(losses[0] == losses[1])
        #expect(grads[0] == grads[1], "gradient checkpointing must not change a bit")
        #expect(grads[0].contains { $0 != 0 })
    }

    @Test func checkpointingFullModeIsBitIdentical() throws {
        let f = try GradFixture("tied-mha")
        var grads: [[Float]] = []
        for ckpt in [false, true] {
            let state = TrainableState(layout: try TrainableParameters.fullLayout(config: f.config))
            try TrainableParameters.copyWeights(from: f.base, into: state)
            let pass = try Qwen2TrainingPass(base: f.base, mode: .full, state: state, gradientCheckpointing: ckpt)
            state.zeroGrads()
            _ = try pass.forwardBackward(f.batch, labelledTokens: 20)
            grads.append(Array(state.grads.buffer))
        }
        #expect(grads[0] == grads[1])
    }

    @Test func microBatchesAddUpToTheWholeBatch() throws {
        let f = try GradFixture("gqa7")
        let count = f.batch.labelledTokens
        let state = TrainableState(layout: try TrainableParameters.fullLayout(config: f.config))
        try TrainableParameters.copyWeights(from: f.base, into: state)
        let pass = try Qwen2TrainingPass(base: f.base, mode: .full, state: state)
        state.zeroGrads()
        let whole = try pass.forwardBackward(f.batch, labelledTokens: count)
        let wholeGrads = Array(state.grads.buffer)
        state.zeroGrads()
        var parts = BatchLoss(lossSum: 0, tokens: 0)
        for r in [0..<1, 1..<3] {
            let l = try pass.forwardBackward(rows(f.batch, r), labelledTokens: count)
            parts.lossSum += l.lossSum
            parts.tokens += l.tokens
        }
        #expect(parts.tokens == whole.tokens)
        #expect(relativeError(parts.lossSum, whole.lossSum) < 1e-6)
        let err = relativeL2(UnsafeBufferPointer(state.grads.buffer), wholeGrads)
        #expect(err < 1e-6, "accumulated micro-batch gradients differ from the whole batch's by \(err)")
    }

    @Test(arguments: [DType.bf16, .f16])
    func halfPrecisionBaseGivesTheGradientsOfItsRoundedWeights(dtype: DType) throws {
        let f = try GradFixture("untied-gqa2")
        let spec = try f.loraSpec
        let (half, rounded) = try restored(f, as: dtype)
        var grads: [[Float]] = []
        for base in [half, rounded] {
            let state = try loraState(f, spec: spec)
            let pass = try Qwen2TrainingPass(base: base, mode: .lora(spec), state: state)
            state.zeroGrads()
            _ = try pass.forwardBackward(f.batch, labelledTokens: 20)
            grads.append(Array(state.grads.buffer))
        }
        let err = relativeL2(grads[0].withUnsafeBufferPointer { $0 }, grads[1])
        #expect(err < 1e-6, "\(dtype) base vs its f32 rounding: \(err)")
        #expect(half.residentBytes < rounded.residentBytes)
    }

    @Test func evaluationLossMatchesTrainingLoss() throws {
        let f = try GradFixture("tied-mha")
        let spec = try f.loraSpec
        let state = try loraState(f, spec: spec)
        let pass = try Qwen2TrainingPass(base: f.base, mode: .lora(spec), state: state)
        state.zeroGrads()
        let eval = try pass.loss(f.batch)
        #expect(state.grads.buffer.allSatisfy { $0 == 0 }, "evaluation leaves gradients alone")
        let train = try pass.forwardBackward(f.batch, labelledTokens: 1)
        #expect(eval == train)
        #expect(relativeError(eval.lossSum / Double(f.expected.num_items), f.expected.lora_loss) < 1e-5)
    }

    @Test func adapterRoundTripsThroughTheModelsLoRAType() throws {
        let f = try GradFixture("gqa7")
        let spec = try f.loraSpec
        let state = try loraState(f, spec: spec)
        let adapter = try TrainableParameters.makeAdapter(state, config: f.config, spec: spec)
        let copy = TrainableState(layout: state.layout)
        try TrainableParameters.loadLoRA(copy, from: adapter, config: f.config, spec: spec)
        #expect(Array(copy.params.buffer) == Array(state.params.buffer))
        // The inference model with this adapter scores the batch as the training pass does.
        let model = Qwen2Model(weights: f.base, adapter: adapter)
        let pass = try Qwen2TrainingPass(base: f.base, mode: .lora(spec), state: state)
        let ours = try pass.loss(f.batch)
        let cache = KVCache(config: f.config, batch: f.batch.B, capacity: f.batch.T)
        let hidden = try model.forward(ids: f.batch.ids, attentionMask: f.batch.attentionMask, B: f.batch.B, T: f.batch.T, cache: cache)
        var targets = [Int32](repeating: 0, count: f.batch.ids.count)
        f.batch.labels.withUnsafeBufferPointer {
            LossNormalization.shiftedTargets(&targets, labels: $0.baseAddress!, B: f.batch.B, T: f.batch.T)
        }
        let scores = model.score(hidden: hidden, targets: targets)
        #expect(scores.count == ours.tokens)
        #expect(relativeError(scores.lossSum, ours.lossSum) < 1e-5)
    }
}
