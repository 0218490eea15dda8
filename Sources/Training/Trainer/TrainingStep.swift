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
            GradientClipping.clipGlobalNorm(state.grads.pointer, count: state.storageCount, maxNorm: maxGradNorm)
        }
        if !loss.isFinite || !norm.isFinite {
            return Result(loss: loss, gradNorm: norm, labelledTokens: labelled, skipped: true)
        }
        Profile.time("optimizer") { optimizer.step(params: state.params.pointer, grads: UnsafePointer(state.grads.pointer), lr: lr) }
        return Result(loss: loss, gradNorm: norm, labelledTokens: labelled, skipped: false)
    }
}
