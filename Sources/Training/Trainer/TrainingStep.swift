import Foundation
import QwenCore

/// One optimizer step, the unit the trainer repeats and the parity tests check against PyTorch:
/// zero the gradients, forward/backward every micro-batch with each token's loss divided by the
/// step's labelled tokens (so the summed gradients are those of Σ losses / count, transformers'
/// rule with gradient accumulation), global-norm clipping, then AdamW at `lr`.
public enum TrainingStep {
    public struct Result: Sendable {
        /// Σ token losses / labelled tokens over the step.
        public var loss: Double
        /// The global gradient norm before clipping.
        public var gradNorm: Float
        public var labelledTokens: Int
        /// The loss or the norm was NaN/Inf: no update was made.
        public var skipped: Bool
    }

    /// `dropoutStream` is the first micro-batch's stream; micro-batch k uses dropoutStream + k.
    public static func run(pass: Qwen2TrainingPass, optimizer: AdamW, batches: [TrainingBatch], lr: Double,
                           maxGradNorm: Double, dropoutStream: UInt64 = 0) throws -> Result {
        let state = pass.state
        let labelled = batches.reduce(0) { $0 + $1.labelledTokens }
        state.zeroGrads()
        guard labelled > 0 else { return Result(loss: 0, gradNorm: 0, labelledTokens: 0, skipped: false) }
        var lossSum = 0.0
        for (k, b) in batches.enumerated() {
            lossSum += try pass.forwardBackward(b, labelledTokens: labelled, dropoutStream: dropoutStream + UInt64(k)).lossSum
        }
        let loss = lossSum / Double(labelled)
        let norm = Profile.time("clip") {
            pass.backend.clipGradNorm(state.grads.pointer, count: state.storageCount, maxNorm: maxGradNorm)
        }
        if !loss.isFinite || !norm.isFinite {
            return Result(loss: loss, gradNorm: norm, labelledTokens: labelled, skipped: true)
        }
        Profile.time("optimizer") { optimizer.step(params: state.params.pointer, grads: state.grads.readOnly, lr: lr) }
        return Result(loss: loss, gradNorm: norm, labelledTokens: labelled, skipped: false)
    }
}

extension TrainingStep {
    /// One optimizer step of rank `zero.comm.rank`: `batches[k]` is this rank's share of the
    /// step's global micro-batch k (nil: none, an empty zero-weight micro-batch, as at an uneven
    /// epoch end), so every rank runs the same collectives. Each token's loss is divided by the
    /// labelled tokens of the whole step over all ranks (all-reduced first): N ranks at batch b
    /// train what one process trains at batch N·b. Returns the global loss and norm.
    static func run(pass: Qwen2TrainingPass, optimizer: AdamW, batches: [TrainingBatch?], lr: Double,
                    maxGradNorm: Double, dropoutStream: UInt64, zero: ZeROEngine) throws -> (result: Result, tokens: Int) {
        let state = pass.state
        let local = batches.compactMap { $0 }
        let counts = try zero.sum([Double(local.reduce(0) { $0 + $1.labelledTokens }),
                                   Double(local.reduce(0) { $0 + ($1.attentionMask?.reduce(0) { $0 + Int($1) } ?? $1.B * $1.T) })])
        let labelled = Int(counts[0]), tokens = Int(counts[1])
        zero.beginStep(state)
        guard labelled > 0 else { return (Result(loss: 0, gradNorm: 0, labelledTokens: 0, skipped: false), tokens) }
        var lossSum = 0.0
        // ZeRO-2 reduces each layer's gradients as soon as the backward pass completes them.
        pass.layerGradientsDone = zero.stage >= 2 && !zero.layerRanges.isEmpty ? { l in try zero.layerDone(l, state) } : nil
        defer { pass.layerGradientsDone = nil }
        for (k, b) in batches.enumerated() {
            if let b {
                lossSum += try pass.forwardBackward(b, labelledTokens: labelled, dropoutStream: dropoutStream + UInt64(k)).lossSum
            } else if zero.stage == 3 {
                // No rows here: a batch that scores nothing, so this rank joins every layer's gather.
                _ = try pass.forwardBackward(ZeROEngine.idleBatch, labelledTokens: labelled, dropoutStream: dropoutStream + UInt64(k))
            }
            try zero.finishMicroBatch(state, ranPass: b != nil || zero.stage == 3)
        }
        let loss = try zero.sum([lossSum])[0] / Double(labelled)
        try Profile.time("reduce") { try zero.reduceGradients(state.hostGrads) }
        let norm = GradientClipping.norm(squaredNorm: try zero.squaredNorm(state.grads.readOnly, backend: pass.backend))
        if !loss.isFinite || !norm.isFinite {
            return (Result(loss: loss, gradNorm: norm, labelledTokens: labelled, skipped: true), tokens)
        }
        if maxGradNorm > 0 {
            let clipRange = zero.stage == 0 ? 0 ..< state.storageCount : zero.optimizerRange
            Profile.time("clip") {
                pass.backend.scaleGradients(state.grads.pointer, range: clipRange, by: GradientClipping.clipCoefficient(totalNorm: norm, maxNorm: maxGradNorm))
            }
        }
        Profile.time("optimizer") { optimizer.step(params: state.params.pointer, grads: state.grads.readOnly, lr: lr) }
        try Profile.time("gather") { try zero.gatherParameters(state.hostParams) }
        zero.endStep(state)
        return (Result(loss: loss, gradNorm: norm, labelledTokens: labelled, skipped: false), tokens)
    }
}
