import Foundation
import QwenCore

/// task_type dpo: the reference model, the step and the evaluation.
///
/// The reference is the policy as it was before training, frozen, and never a second copy of
/// the base: with LoRA its log-probabilities come from the same pass with the starting adapter's
/// weights swapped into the trainable buffer (B = 0 for a new adapter: the base alone; the
/// loaded adapter for `adapter_name_or_path`), dropout off. With full fine-tuning — or
/// `precompute_ref_log_probs` — they are computed once, before training and before a checkpoint
/// is restored, for every pair of train_file and eval_file.
///
/// A micro-batch of P pairs is one batch of 2P sequences (the chosen, then the rejected, as TRL
/// concatenates them): one forward through the layers, the lm_head scoring every sequence, the
/// loss's weights per sequence, then the lm_head again and the backward (see
/// `Qwen2TrainingPass.forwardBackward(_:dropoutStream:rowScales:)`).
public final class DPOContext {
    public let objective: DPOObjective
    /// LoRA without precomputation: the starting adapter, swapped in for the reference pass.
    let startParams: [Float]?
    var trainReference: PairLogProbs?
    var evalReference: PairLogProbs?

    /// The reference from `pass`'s state as it is now (the weights before training): precomputed
    /// over `train` and `eval`, or (LoRA) the trainable buffer kept for swapping.
    init(objective: DPOObjective, pass: Qwen2TrainingPass, precompute: Bool, train: DataLoader, eval: DataLoader?) throws {
        self.objective = objective
        if precompute {
            startParams = nil
            trainReference = try DPOContext.precompute(pass: pass, loader: train)
            evalReference = try eval.map { try DPOContext.precompute(pass: pass, loader: $0) }
        } else {
            startParams = pass.backend.download(pass.state.params.readOnly, count: pass.state.storageCount)
        }
    }

    /// Builds the reference: call with the state holding the weights before training.
    convenience init(config: TrainingConfig, mode: TrainingMode, pass: Qwen2TrainingPass, train: DataLoader, eval: DataLoader?,
                     events: (TrainerEvent) -> Void) throws {
        guard let type = DPOLossType(rawValue: config.lossType) else {
            throw TrainingError.badConfigValue(key: "loss_type", source: "config", message: "expected sigmoid, ipo or hinge, got \"\(config.lossType)\"")
        }
        let precompute = config.precomputeRefLogProbs || mode == .full
        let started = DispatchTime.now().uptimeNanoseconds
        try self.init(objective: DPOObjective(beta: config.beta, lossType: type, rpoAlpha: config.rpoAlpha), pass: pass, precompute: precompute,
                      train: train, eval: eval)
        if precompute {
            let s = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            events(.note(String(format: "dpo: reference log-probabilities precomputed for %d pairs (%.1f s)%@",
                                train.rows.count + (eval?.rows.count ?? 0), s,
                                mode == .full ? " (full fine-tuning keeps one model in memory)" : "")))
        } else {
            events(.note("dpo: the reference is the \(config.adapterNameOrPath == nil ? "base model (the new adapter is zero)" : "starting adapter, frozen"), computed with the adapter's weights swapped"))
        }
        events(.note("dpo: loss_type \(type.rawValue), beta \(config.beta)\(config.rpoAlpha.map { ", rpo_alpha \($0)" } ?? "")\(config.maxPromptLength.map { ", max_prompt_length \($0)" } ?? "")"))
    }

    /// Pair indices of a preference micro-batch (rows 0..<P are the chosen sequences).
    static func pairs(_ mb: MicroBatch) -> [Int] {
        mb.sampleIndices.prefix(mb.batchSize / 2).map { $0[0] / 2 }
    }

    /// Response token counts of the chosen and rejected rows (labels ≠ −100).
    static func responseTokens(_ mb: MicroBatch) -> (chosen: [Int], rejected: [Int]) {
        let T = mb.sequenceLength, P = mb.batchSize / 2
        let counts = (0..<mb.batchSize).map { b in mb.labels[(b * T)..<((b + 1) * T)].reduce(0) { $0 + ($1 == -100 ? 0 : 1) } }
        return (Array(counts[..<P]), Array(counts[P...]))
    }

    static func split(_ rows: [Double]) -> PairLogProbs {
        let P = rows.count / 2
        return PairLogProbs(chosen: Array(rows[..<P]), rejected: Array(rows[P...]))
    }

    /// Reference log-probabilities of every pair of `loader`'s dataset, in order, unshuffled.
    static func precompute(pass: Qwen2TrainingPass, loader: DataLoader) throws -> PairLogProbs {
        var out = PairLogProbs(chosen: [Double](repeating: 0, count: loader.rows.count),
                               rejected: [Double](repeating: 0, count: loader.rows.count))
        let b = loader.options.batchSize
        for start in stride(from: 0, to: loader.rows.count, by: b) {
            let mb = loader.makeBatch(Array(start..<min(start + b, loader.rows.count)))
            let lp = split(try pass.sequenceLogProbs(Trainer.trainingBatch(mb)))
            for (k, i) in pairs(mb).enumerated() {
                out.chosen[i] = lp.chosen[k]
                out.rejected[i] = lp.rejected[k]
            }
        }
        return out
    }

    /// The reference log-probabilities of a micro-batch: from the table, or by swapping the
    /// starting adapter into the trainable buffer for one forward (dropout off).
    func reference(_ mb: MicroBatch, batch: TrainingBatch, table: PairLogProbs?, pass: Qwen2TrainingPass) throws -> PairLogProbs {
        if let table {
            let p = DPOContext.pairs(mb)
            return PairLogProbs(chosen: p.map { table.chosen[$0] }, rejected: p.map { table.rejected[$0] })
        }
        guard let start = startParams else { throw TrainerError.unsupported(key: "task_type", message: "dpo: no reference") }
        let state = pass.state, n = state.storageCount, be = pass.backend
        let current = be.download(state.params.readOnly, count: n)
        be.copyToDevice(state.params.pointer, from: start, count: n)
        defer { be.copyToDevice(state.params.pointer, from: current, count: n) }
        return DPOContext.split(try pass.sequenceLogProbs(batch))
    }

    public struct StepResult {
        /// Mean over the micro-batches of their mean pair loss (transformers' accumulation).
        public var loss: Double
        public var gradNorm: Float
        /// Each micro-batch's metrics, for the log's averages.
        public var metrics: [DPOMetrics]
        public var skipped: Bool
    }

    /// One optimizer step over preference micro-batches: the reference, then per micro-batch the
    /// forward, the loss's per-sequence weights (÷ the micro-batch count) and the backward;
    /// clipping and AdamW as SFT's step. Micro-batch k uses dropout stream `dropoutStream + k`.
    func step(pass: Qwen2TrainingPass, optimizer: AdamW, batches: [MicroBatch], lr: Double, maxGradNorm: Double,
              dropoutStream: UInt64) throws -> StepResult {
        let state = pass.state
        state.zeroGrads()
        let G = Double(batches.count)
        var metrics: [DPOMetrics] = []
        var loss = 0.0
        for (k, mb) in batches.enumerated() {
            let batch = Trainer.trainingBatch(mb)
            let ref = try reference(mb, batch: batch, table: trainReference, pass: pass)
            let (nc, nr) = DPOContext.responseTokens(mb)
            var m: DPOMetrics?
            _ = try pass.forwardBackward(batch, dropoutStream: dropoutStream + UInt64(k)) { logps in
                let r = objective.evaluate(policy: DPOContext.split(logps), reference: ref, chosenTokens: nc, rejectedTokens: nr)
                m = r.metrics
                // Token loss = −log p, so ∂loss/∂(token loss) = −∂loss/∂logπ of its sequence.
                return (r.dChosen + r.dRejected).map { Float(-$0 / G) }
            }
            guard let m else { continue }
            metrics.append(m)
            loss += m.loss / G
        }
        let norm = Profile.time("clip") {
            pass.backend.clipGradNorm(state.grads.pointer, count: state.storageCount, maxNorm: maxGradNorm)
        }
        if !loss.isFinite || !norm.isFinite { return StepResult(loss: loss, gradNorm: norm, metrics: metrics, skipped: true) }
        Profile.time("optimizer") { optimizer.step(params: state.params.pointer, grads: state.grads.readOnly, lr: lr) }
        return StepResult(loss: loss, gradNorm: norm, metrics: metrics, skipped: false)
    }

    /// eval_file's metrics: each batch of per_device_eval_batch_size pairs scored with dropout
    /// off, the loss and metrics averaged over batches (as transformers' evaluation loop and
    /// TRL's metric log do).
    func evaluate(pass: Qwen2TrainingPass, loader: DataLoader) throws -> DPOMetrics? {
        var all: [DPOMetrics] = []
        let b = loader.options.batchSize
        for start in stride(from: 0, to: loader.rows.count, by: b) {
            let mb = loader.makeBatch(Array(start..<min(start + b, loader.rows.count)))
            let batch = Trainer.trainingBatch(mb)
            let ref = try reference(mb, batch: batch, table: evalReference, pass: pass)
            let policy = DPOContext.split(try pass.sequenceLogProbs(batch))
            let (nc, nr) = DPOContext.responseTokens(mb)
            all.append(objective.evaluate(policy: policy, reference: ref, chosenTokens: nc, rejectedTokens: nr).metrics)
        }
        return DPOMetrics.mean(all)
    }
}
