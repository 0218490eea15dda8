import Foundation
import QwenCore
import Qwen2

// One micro-batch through Qwen2 for training: the forward keeps what backward needs, the loss and
// the lm_head's backward run together in token chunks (never (N × vocab) logits at once), and the
// backward adds every trainable tensor's gradient into the TrainableState's flat gradient buffer.
//
//   embedding → L × (RMSNorm → q,k,v (+bias, +LoRA) → RoPE → GQA causal attention → o → residual
//   → RMSNorm → gate, up → SwiGLU → down → residual) → final RMSNorm → lm_head → cross-entropy
//
// Loss: labels shifted by one (position t predicts labels[t+1]), −100 ignored, each token's loss
// divided by `labelledTokens` — the step's count over all its micro-batches, so gradients added
// over the micro-batches of a step are those of Σ token losses / count (transformers' rule).
//
// A step, as the trainer runs it:
//   state.zeroGrads()
//   let count = micro.reduce(0) { $0 + $1.labelledTokens }         // the whole step's tokens
//   for (k, mb) in micro.enumerated() {
//       sum += try pass.forwardBackward(mb, labelledTokens: count, dropoutStream: UInt64(step * micro.count + k)).lossSum
//   }
//   loss = sum / count; clip state.grads; AdamW on state.params

/// A right- or left-padded batch (B,T): ids, labels (−100 where no loss), attention mask (1 real,
/// 0 padding; nil: all real). Row-major flat arrays.
/// Packed rows (several samples per row) also give `positionIds` (RoPE positions, restarting at 0
/// for every sample) and `segmentIds` (1, 2, 3… per sample, 0 on padding): token t then attends
/// to s only if s ≤ t and segmentIds[s] == segmentIds[t] != 0. nil: positions 0..<T, one segment.
public struct TrainingBatch: Sendable {
    public var ids: [Int32]
    public var labels: [Int32]
    public var attentionMask: [Int32]?
    public var positionIds: [Int32]?
    public var segmentIds: [Int32]?
    public var B: Int
    public var T: Int

    public init(ids: [Int32], labels: [Int32], attentionMask: [Int32]? = nil,
                positionIds: [Int32]? = nil, segmentIds: [Int32]? = nil, B: Int, T: Int) {
        self.ids = ids
        self.labels = labels
        self.attentionMask = attentionMask
        self.positionIds = positionIds
        self.segmentIds = segmentIds
        self.B = B
        self.T = T
    }

    /// The tokens of this batch that carry a loss (shifted labels ≠ −100).
    public var labelledTokens: Int {
        guard B > 0, T > 0, labels.count == B * T else { return 0 }
        return labels.withUnsafeBufferPointer { LossNormalization.labelledTokenCount(labels: $0.baseAddress!, B: B, T: T) }
    }
}

/// What a micro-batch scored: Σ token losses (unnormalised) over `tokens` labelled tokens.
public struct BatchLoss: Sendable, Equatable {
    public var lossSum: Double
    public var tokens: Int
    public init(lossSum: Double, tokens: Int) {
        self.lossSum = lossSum
        self.tokens = tokens
    }
}

public final class Qwen2TrainingPass {
    public let config: Qwen2Config
    public let mode: TrainingMode
    public let state: TrainableState
    public let gradientCheckpointing: Bool
    /// Layers 0..<recomputedLayers are recomputed in backward (Megatron's `--recompute-method
    /// block` with `--recompute-num-layers`); the rest keep their whole tape: more memory, less
    /// work. Checkpointing without a count recomputes every layer but the last, whose activations
    /// are still in the recomputed layers' shared tape when backward starts (recomputing them
    /// would write the same bits again); none without checkpointing.
    public let recomputedLayers: Int
    /// Called after layer l's backward, when its gradients are complete (ZeRO-2 reduces and
    /// releases them then, so the whole gradient buffer never exists at once).
    public var layerGradientsDone: ((Int) throws -> Void)?
    /// The seed of LoRA dropout masks (with the per-call stream).
    public let dropoutSeed: UInt64
    /// Runs every op of the pass (and the optimizer's, when the trainer hands it the same one).
    public let backend: any TrainingBackend
    /// The frozen base (LoRA) or views of `state`'s parameters (full fine-tuning); ZeRO-3 wraps
    /// it in a provider that gathers each layer.
    var weights: WeightProvider
    let lora: LoRASpec?
    let linearScratch = LinearScratch()
    /// The forward's scratch: forward and backward products never overlap, and one widened-tile
    /// buffer (up to 32 MB, see `LinearScratch`) is enough.
    var backwardScratch: BackwardScratch { linearScratch }
    var rope: RoPETable
    var work: TrainingWorkspace?

    /// Tokens per lm_head + loss chunk at most (the labelled rows are cut into equal chunks no
    /// longer than this). Larger chunks pay off because each chunk reads the whole (V,C) lm_head
    /// weight (545 MB for Qwen2's vocabulary) twice — forward and d hidden; full fine-tuning a
    /// third time for its gradient — and OpenBLAS packs that weight once per product (a bf16
    /// head is also widened once per product): at 64 rows packing is a quarter of the work
    /// (138–153 GFLOP/s), at 256 a tenth (≈ 180). The cost is the logits, rows × 151,936 × 4 B:
    /// 155 MB at 256. On the 0.5B LoRA bench (256 tokens) lm_head took 0.96 s per step in 64-row
    /// chunks, 0.88 s in 128-row ones, 0.82 s in one of 256; one thread's x·Wᵀ on the head's
    /// shape runs at 70–76 GFLOP/s with 128 rows against 82 with 256. Both modes take 256: the
    /// 0.5B LoRA run's peak RSS stays under half of PyTorch's (2.44 of 5.2–5.4 GiB).
    public let lmHeadRows = 256

    /// LoRA: `base` is the frozen model in its stored dtype, `state` laid out by
    /// `TrainableParameters.loraLayout`. Full: `state` laid out by `fullLayout` holds the weights
    /// trained (fill it with `TrainableParameters.copyWeights(from: base, …)`); `base` gives the config.
    /// `recomputedLayers` (with `gradientCheckpointing`): recompute only the first that many
    /// layers (0…layers; nil: all).
    public init(base: WeightProvider, mode: TrainingMode, state: TrainableState,
                gradientCheckpointing: Bool = false, recomputedLayers: Int? = nil, dropoutSeed: UInt64 = 0,
                backend: any TrainingBackend = CPUBackend()) throws {
        config = base.config
        self.backend = backend
        self.mode = mode
        self.state = state
        self.gradientCheckpointing = gradientCheckpointing
        self.recomputedLayers = try Self.recomputedLayers(config: base.config, gradientCheckpointing: gradientCheckpointing,
                                                          count: recomputedLayers)
        self.dropoutSeed = dropoutSeed
        switch mode {
        case .full:
            lora = nil
            weights = try ParameterWeights(config: base.config, state: state)
        case .lora(let spec):
            lora = spec
            weights = base
            _ = try TrainableParameters.loraLayout(config: config, spec: spec).entries.map { try state.layout.require($0.name) }
        }
        rope = RoPETable(headDim: config.headDim, theta: config.ropeTheta, positions: 64)
    }

    /// Runs the forward and backward of one micro-batch, adding its gradients (scaled by
    /// 1/labelledTokens) into `state.grads`, which the caller zeroes once per optimizer step.
    /// `dropoutStream` must differ between micro-batches (e.g. the global micro-batch index) so
    /// each gets fresh LoRA dropout masks. Returns the unnormalised loss sum and token count.
    public func forwardBackward(_ batch: TrainingBatch, labelledTokens: Int,
                                dropoutStream: UInt64 = 0) throws -> BatchLoss {
        try run(batch, labelledTokens: labelledTokens, dropoutStream: dropoutStream, gradients: true)
    }

    /// The loss alone (evaluation): no gradients, dropout off.
    public func loss(_ batch: TrainingBatch) throws -> BatchLoss {
        try run(batch, labelledTokens: max(1, batch.labelledTokens), dropoutStream: 0, gradients: false)
    }

    /// Loss, argmax accuracy and count over the labelled tokens (evaluation: no gradients,
    /// dropout off), as `Qwen2Model.score` counts them; at ZeRO-3 with the layers and the
    /// vocabulary gathered in pieces, as training's forward gathers them.
    public func score(_ batch: TrainingBatch) throws -> TokenScores {
        var total = TokenScores()
        _ = try run(batch, labelledTokens: 1, dropoutStream: 0, gradients: false, dropout: false, scores: { total.add($0) })
        return total
    }

    /// Bytes of activations the last batch kept from forward to backward.
    public var savedActivationBytes: Int { work?.savedActivationBytes ?? 0 }

    /// The same figure for a batch shape, without running anything: what checkpointing saves.
    /// `recomputedLayers` as in `init` (nil: all layers when checkpointing).
    public static func savedActivationBytes(config c: Qwen2Config, B: Int, T: Int, lora: LoRASpec?,
                                            gradientCheckpointing: Bool, recomputedLayers: Int? = nil) -> Int {
        let N = B * T
        let inputs = (c.numHiddenLayers + 1) * N * c.hiddenSize
        let L = max(1, c.numHiddenLayers), one = LayerTape.floats(config: c, N: N, lora: lora)
        let k = gradientCheckpointing ? min(max(0, recomputedLayers ?? L), L - 1) : 0
        // A whole tape for each layer not recomputed (the first of them is also the recomputed
        // layers' shared tape, see TrainingWorkspace.tapes), att and lse for each recomputed one.
        let tapes = (L - k) * one + k * LayerTape.ownFloats(config: c, N: N)
        return (inputs + tapes) * MemoryLayout<Float>.stride
    }

    /// How many layers backward recomputes: `count` (nil: all), but never the last (see
    /// `recomputedLayers`); a count outside 0…layers is refused.
    static func recomputedLayers(config c: Qwen2Config, gradientCheckpointing: Bool, count: Int?) throws -> Int {
        let L = c.numHiddenLayers
        guard gradientCheckpointing else { return 0 }
        let count = count ?? L
        guard (0...L).contains(count) else {
            throw Qwen2Error.badInput("recomputed layers: \(count) is outside 0…\(L) (the model has \(L) layers)")
        }
        return max(0, min(count, L - 1))
    }

    // MARK: - The pass

    /// DPO: forward and backward of whole sequences where row b's token losses are weighted by
    /// `rowScales(logps)[b]`, logps[b] being Σ log p(target) over row b's labelled tokens in this
    /// same forward (dropout masks included). The layers run once; the lm_head scores first,
    /// then runs again with the weights (d loss / d logps is only known once every row is scored).
    /// Returns logps.
    public func forwardBackward(_ batch: TrainingBatch, dropoutStream: UInt64,
                                rowScales: ([Double]) throws -> [Float]) throws -> [Double] {
        try withoutActuallyEscaping(rowScales) { scales in
            try run(batch, labelledTokens: 1, dropoutStream: dropoutStream, gradients: true, rowScales: scales).rows.map { -$0 }
        }
    }

    /// Σ log p(target) over each row's labelled tokens, without gradients. `dropoutStream` nil:
    /// dropout off (evaluation, the reference); else dropout on with that stream's masks.
    public func sequenceLogProbs(_ batch: TrainingBatch, dropoutStream: UInt64? = nil) throws -> [Double] {
        try run(batch, labelledTokens: 1, dropoutStream: dropoutStream ?? 0, gradients: false,
                dropout: dropoutStream != nil).rows.map { -$0 }
    }

    func run(_ batch: TrainingBatch, labelledTokens: Int, dropoutStream: UInt64, gradients: Bool) throws -> BatchLoss {
        try run(batch, labelledTokens: labelledTokens, dropoutStream: dropoutStream, gradients: gradients, dropout: gradients).loss
    }

    /// `scores`: each head chunk's TokenScores, in place of the cross-entropy (no gradients).
    func run(_ batch: TrainingBatch, labelledTokens: Int, dropoutStream: UInt64, gradients: Bool, dropout: Bool? = nil,
             rowScales: (([Double]) throws -> [Float])? = nil, scores: ((TokenScores) -> Void)? = nil) throws -> (loss: BatchLoss, rows: [Double]) {
        let c = config
        try validate(batch)
        let B = batch.B, T = batch.T, N = B * T, C = c.hiddenSize, L = c.numHiddenLayers
        let w = workspace(B: B, T: T)
        ensureRope(T)
        let be = backend
        // The batch into the backend's memory (the CPU's host access is the buffer itself).
        batch.ids.withUnsafeBufferPointer { be.copyToDevice(w.ids.pointer, from: $0.baseAddress!, count: N) }
        be.withHostAccess(w.keyMask.pointer, count: N) { keyMask in
            for i in 0..<N { keyMask[i] = (batch.attentionMask?[i] ?? 1) != 0 ? 1 : 0 }
        }
        w.packed = batch.positionIds != nil || batch.segmentIds != nil
        if w.packed {
            be.withHostAccess(w.positions.pointer, count: N) { positions in
                for i in 0..<N { positions[i] = batch.positionIds?[i] ?? Int32(i % T) }
            }
            be.withHostAccess(w.segments.pointer, count: N) { segments in
                for i in 0..<N { segments[i] = batch.segmentIds?[i] ?? 1 }
            }
        }
        w.hostTargets.withUnsafeMutableBufferPointer { targets in
            batch.labels.withUnsafeBufferPointer {
                LossNormalization.shiftedTargets(targets.baseAddress!, labels: $0.baseAddress!, B: B, T: T)
            }
            be.copyToDevice(w.targets.pointer, from: targets.baseAddress!, count: N)
        }
        let dropoutOn = dropout ?? gradients
        let stream = dropoutOn ? dropoutStream : 0

        try embedTokens(out: w.layerInputs[0].pointer, ids: w.ids.readOnly, N: N)
        for l in 0..<L {
            let lw = try weights.acquireLayer(l)
            layerForward(l, lw, w: w, tape: w.tape(l), stream: stream, dropoutOn: dropoutOn)
            weights.releaseLayer(l)
        }
        try weights.acquireShared()  // the final norm and lm_head, until the head's backward is done
        var sharedHeld = true
        defer { if sharedHeld { weights.releaseShared() } }
        be.rmsNormForward(out: w.final.pointer, rstd: w.rstdFinal.pointer, inp: w.layerInputs[L].readOnly,
                       weight: weights.finalNorm, N: N, C: C, eps: c.rmsNormEps)

        let scale = LossNormalization.scale(labelledTokens: labelledTokens)
        var head: (total: Double, rows: [Double])
        if let rowScales {
            let scored = try headForwardBackward(w: w, scale: 0, gradients: false)
            let scales = try rowScales(scored.rows.map { -$0 })
            precondition(scales.count == B, "rowScales must give one weight per row")
            head = try headForwardBackward(w: w, scale: 0, gradients: gradients, rowScales: scales)
            head.rows = scored.rows
        } else {
            head = try headForwardBackward(w: w, scale: scale, gradients: gradients, scores: scores)
        }
        let lossSum = head.total
        let tokens = w.hostTargets.reduce(0) { $0 + ($1 != ignoreIndex ? 1 : 0) }
        if !gradients { return (BatchLoss(lossSum: lossSum, tokens: tokens), head.rows) }

        // d final norm → dx, the gradient of the residual stream, carried down the layers.
        be.fill(w.dx.pointer, count: N * C, value: 0)
        be.rmsNormBackward(dinp: w.dx.pointer, dweight: try fullGrad("model.norm.weight"), dout: w.dln.readOnly,
                        inp: w.layerInputs[L].readOnly, weight: weights.finalNorm, rstd: w.rstdFinal.readOnly, N: N, C: C)
        weights.releaseShared()
        sharedHeld = false
        for l in stride(from: L - 1, through: 0, by: -1) {
            let lw = try weights.acquireLayer(l)
            if l < recomputedLayers {
                layerForward(l, lw, w: w, tape: w.tape(l), stream: stream, dropoutOn: dropoutOn, recompute: true)
            }
            try layerBackward(l, lw, w: w, tape: w.tape(l), stream: stream)
            weights.releaseLayer(l)
            try layerGradientsDone?(l)
        }
        try embeddingBackward(dout: w.dx.readOnly, ids: w.ids.readOnly, N: N)
        return (BatchLoss(lossSum: lossSum, tokens: tokens), head.rows)
    }

    /// lm_head and cross-entropy over the labelled tokens only, `lmHeadRows` at a time: their
    /// hidden rows are gathered, scored (logits, loss and dlogits in place), and d hidden is
    /// scattered back into w.dln (zero for unlabelled tokens, which have no loss). Prompt and
    /// padding tokens thus cost nothing here — PyTorch computes their (V-wide) logits anyway.
    /// Returns Σ token losses and its share per batch row; `rowScales` (B) replaces `scale` per row.
    func headForwardBackward(w: TrainingWorkspace, scale: Float, gradients: Bool,
                             rowScales: [Float]? = nil, scores: ((TokenScores) -> Void)? = nil) throws -> (total: Double, rows: [Double]) {
        let c = config, be = backend
        let N = w.N, C = c.hiddenSize, V = c.vocabSize
        let dHead = gradients ? try fullGrad(c.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight") : nil
        let rows = (0..<N).filter { w.hostTargets[$0] != ignoreIndex }
        if gradients { be.fill(w.dln.pointer, count: N * C, value: 0) }
        var total = 0.0
        let T = w.T
        var perRow = [Double](repeating: 0, count: N / T)
        let (chunks, per) = headChunks(rows.count)
        // The chunk's targets and row weights go to the backend, its losses come back.
        var chunkTargets = [Int32](repeating: 0, count: per), losses = [Float](repeating: 0, count: per)
        var chunkScales = [Float](repeating: 0, count: rowScales == nil ? 0 : lmHeadRows)
        var k0 = 0
        for _ in 0..<(try headChunkCount(local: chunks)) {  // ZeRO-3: every rank the same count
            let n = max(0, min(per, rows.count - k0))
            let h = w.headIn.pointer, dh = w.headGrad.pointer
            for k in 0..<n {
                be.copy(h + k * C, from: w.final.readOnly + rows[k0 + k] * C, count: C)
                chunkTargets[k] = w.hostTargets[rows[k0 + k]]
                if let rowScales { chunkScales[k] = rowScales[rows[k0 + k] / T] }
            }
            be.copyToDevice(w.headTargets.pointer, from: chunkTargets, count: n)
            if rowScales != nil { be.copyToDevice(w.headScales.pointer, from: chunkScales, count: n) }
            try Profile.time("head gemm") { try headLogits(w.logits.pointer, inp: h.readOnly, N: n) }
            if let scores {
                precondition(!gradients && rowScales == nil, "scores are for evaluation")
                let s = n > 0 ? be.scoreLogits(w.logits.readOnly, targets: w.headTargets.readOnly, n: n, V: V) : TokenScores()
                scores(s)
                total += s.lossSum
                k0 += n
                continue
            }
            total += try Profile.time("head loss") {
                try be.crossEntropyForwardBackward(dlogits: w.logits.pointer, losses: w.losses.pointer,
                                                   logits: w.logits.readOnly, targets: w.headTargets.readOnly,
                                                   N: n, V: V, scale: scale, rowScales: rowScales == nil ? nil : w.headScales.readOnly)
            }
            be.copyToHost(&losses, from: w.losses.readOnly, count: n)
            for k in 0..<n { perRow[rows[k0 + k] / T] += Double(losses[k]) }
            if gradients {
                try Profile.time("head gemm") {
                    try headBackward(dinp: dh, dHead: dHead, dlogits: w.logits.readOnly, inp: h.readOnly, N: n)
                }
                for k in 0..<n { be.copy(w.dln.pointer + rows[k0 + k] * C, from: dh.readOnly + k * C, count: C) }
            }
            k0 += n
        }
        return (total, perRow)
    }

    /// The lm_head chunks for `rows` labelled rows, how many and rows per chunk: equal chunks of at most `lmHeadRows`
    /// (300 rows: 150 + 150, not 256 + 44): small ones run slowly.
    func headChunks(_ rows: Int) -> (count: Int, rows: Int) {
        let chunks = (rows + lmHeadRows - 1) / lmHeadRows
        return (chunks, chunks > 0 ? (rows + chunks - 1) / chunks : 0)
    }

    /// The gradient of a full-fine-tuning parameter; nil in LoRA mode (the base is frozen).
    func fullGrad(_ name: String) throws -> DeviceMutablePointer<Float>? {
        guard case .full = mode else { return nil }
        return state.deviceGrad(try state.layout.require(name))
    }

    func validate(_ batch: TrainingBatch) throws {
        let c = config
        let N = batch.B * batch.T
        guard batch.B > 0, batch.T > 0 else {
            throw Qwen2Error.badInput("training batch: shape (\(batch.B), \(batch.T)) has no tokens")
        }
        guard batch.ids.count == N, batch.labels.count == N, batch.attentionMask.map({ $0.count == N }) ?? true else {
            throw Qwen2Error.badInput("training batch: a (\(batch.B), \(batch.T)) batch needs \(N) ids, labels and mask values; got \(batch.ids.count), \(batch.labels.count), \(batch.attentionMask?.count ?? N)")
        }
        guard batch.positionIds.map({ $0.count == N }) ?? true, batch.segmentIds.map({ $0.count == N }) ?? true else {
            throw Qwen2Error.badInput("training batch: a (\(batch.B), \(batch.T)) batch needs \(N) position and segment ids; got \(batch.positionIds?.count ?? N), \(batch.segmentIds?.count ?? N)")
        }
        if let p = batch.positionIds, let i = p.firstIndex(where: { $0 < 0 || Int($0) >= batch.T }) {
            throw Qwen2Error.badInput("training batch: position id \(p[i]) at row \(i / batch.T), position \(i % batch.T) is outside 0..<\(batch.T)")
        }
        if let i = batch.ids.firstIndex(where: { $0 < 0 || Int($0) >= c.vocabSize }) {
            throw Qwen2Error.badInput("training batch: token id \(batch.ids[i]) at row \(i / batch.T), position \(i % batch.T) is outside the vocabulary (0..<\(c.vocabSize))")
        }
        if let i = batch.labels.firstIndex(where: { $0 != ignoreIndex && ($0 < 0 || Int($0) >= c.vocabSize) }) {
            throw TrainingError.targetOutOfRange(row: i / batch.T, target: Int(batch.labels[i]), vocabSize: c.vocabSize)
        }
    }

    func workspace(B: Int, T: Int) -> TrainingWorkspace {
        if let w = work, w.B == B, w.T == T { return w }
        work = nil  // free the old one first
        let w = TrainingWorkspace(config: config, B: B, T: T, lora: lora, recomputedLayers: recomputedLayers,
                                  lmHeadRows: min(B * T, lmHeadRows), attentionScratch: backend.attentionScratchCount(T: T),
                                  backend: backend)
        work = w
        return w
    }

    func ensureRope(_ T: Int) {
        if T <= rope.positions { return }
        var n = rope.positions
        while n < T { n *= 2 }
        rope = RoPETable(headDim: config.headDim, theta: config.ropeTheta, positions: n)
    }
}
