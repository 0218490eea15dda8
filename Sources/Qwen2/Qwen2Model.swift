import QwenCore

/// The Qwen2 decoder: embedding → layers (RMSNorm, GQA attention with RoPE and q/k/v biases,
/// RMSNorm, SwiGLU MLP, residuals) → final RMSNorm → lm_head, over a WeightProvider, with
/// optional unmerged LoRA, every op run by `backend` (CPU unless told otherwise). Batches are
/// right-padded (B,T) with an attention mask; new tokens go through a KVCache so prefill and
/// decoding share one code path.
public final class Qwen2Model: @unchecked Sendable {
    public let config: Qwen2Config
    public let weights: WeightProvider
    public var adapter: LoRAAdapter?
    /// Runs every op of the forward; its buffers hold the activations and the KV cache.
    public var backend: any ModelBackend

    private var rope: RoPETable
    private let scratch = LinearScratch()
    private var work: ForwardWorkspace?

    public init(weights: WeightProvider, adapter: LoRAAdapter? = nil, backend: any ModelBackend = CPUBackend()) {
        self.config = weights.config
        self.weights = weights
        self.adapter = adapter
        self.backend = backend
        rope = RoPETable(headDim: config.headDim, theta: config.ropeTheta, positions: 256)
    }

    /// Runs B×T new tokens (row-major ids, right padding marked 0 in `attentionMask`) at positions
    /// cache.length ..< cache.length+T, appends their keys/values to the cache and returns the
    /// final-normed hidden states (B·T, C), valid until the next call.
    public func forward(ids: [Int32], attentionMask: [Int32]? = nil, B: Int, T: Int,
                        cache: KVCache) throws -> UnsafeMutablePointer<Float> {
        let c = config
        let N = B * T
        guard ids.count == N, attentionMask.map({ $0.count == N }) ?? true else {
            throw Qwen2Error.badInput("forward: expected \(N) ids and mask values for a (\(B), \(T)) batch, got \(ids.count)")
        }
        guard B == cache.batch else {
            throw Qwen2Error.badInput("forward: the batch has \(B) rows but the KV cache was made for \(cache.batch)")
        }
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= c.vocabSize }) {
            throw Qwen2Error.badInput("token id \(bad) is outside the vocabulary (0..<\(c.vocabSize))")
        }
        let p0 = cache.length
        if p0 + T > cache.capacity || p0 + T > c.maxPositionEmbeddings {
            throw Qwen2Error.badInput(
                "\(p0 + T) positions exceed the model's limit (max_position_embeddings \(c.maxPositionEmbeddings), cache \(cache.capacity))")
        }
        ensureRope(positions: p0 + T)
        let w = workspace(N: N)
        for b in 0..<B {
            for t in 0..<T {
                cache.keyMask[b * cache.capacity + p0 + t] = UInt8(attentionMask.map { $0[b * T + t] != 0 ? 1 : 0 } ?? 1)
            }
        }
        let be = backend
        ids.withUnsafeBufferPointer { be.embeddingForward(out: w.x.pointer, ids: $0.baseAddress!, table: weights.embedding, N: N) }
        for l in 0..<c.numHiddenLayers {
            let lw = try weights.acquireLayer(l)
            layerForward(layer: l, weights: lw, x: w.x.pointer, acts: w.acts, B: B, T: T, cache: cache)
            weights.releaseLayer(l)
        }
        cache.length = p0 + T
        be.rmsNormForward(out: w.out.pointer, rstd: nil, inp: w.x.pointer, weight: weights.finalNorm,
                       N: N, C: c.hiddenSize, eps: c.rmsNormEps)
        return w.out.pointer
    }

    /// One decoder layer on the residual stream x (N,C) in place, for B×T new tokens at positions
    /// cache.length ..< cache.length+T (the caller advances cache.length after the last layer);
    /// `acts` keeps what a backward pass needs (norm outputs and rstd, q/k/v after RoPE, attention
    /// output and log-sum-exp, gate/up/act). A trainer runs it per layer with its own activations.
    public func layerForward(layer l: Int, weights lw: LayerWeights, x: UnsafeMutablePointer<Float>,
                      acts a: LayerActivations, B: Int, T: Int, cache: KVCache) {
        let c = config, be = backend
        let N = B * T, C = c.hiddenSize, I = c.intermediateSize
        let lora = adapter.map { $0.layers[l] } ?? [:]
        func linear(_ p: Projection, _ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>,
                    bias: UnsafePointer<Float>? = nil) {
            be.linearForward(out: out, inp: inp, weight: lw.matrix(p), bias: bias, N: N, scratch: scratch, accumulate: false)
            if let pair = lora[p] { be.loraForward(out: out, inp: inp, lora: pair, N: N, tmp: a.loraTmp.pointer) }
        }
        be.rmsNormForward(out: a.ln1.pointer, rstd: a.rstd1.pointer, inp: x, weight: lw.inputNorm, N: N, C: C, eps: c.rmsNormEps)
        be.linearForwardMany([(a.q.pointer, lw.q, lw.qBias), (a.k.pointer, lw.k, lw.kBias), (a.v.pointer, lw.v, lw.vBias)],
                          inp: a.ln1.pointer, N: N, scratch: scratch)
        for (p, out) in [(Projection.q, a.q.pointer), (.k, a.k.pointer), (.v, a.v.pointer)] {
            if let pair = lora[p] { be.loraForward(out: out, inp: a.ln1.pointer, lora: pair, N: N, tmp: a.loraTmp.pointer) }
        }
        let p0 = cache.length
        be.ropeForward(a.q.pointer, table: rope, N: N, T: T, H: c.numAttentionHeads, firstPosition: p0, positions: nil)
        be.ropeForward(a.k.pointer, table: rope, N: N, T: T, H: c.numKeyValueHeads, firstPosition: p0, positions: nil)
        be.kvStoreWrite(store: cache.keys[l].pointer, inp: a.k.pointer, B: B, T: T, KVH: c.numKeyValueHeads,
                     hd: c.headDim, S: cache.capacity, firstPosition: p0)
        be.kvStoreWrite(store: cache.values[l].pointer, inp: a.v.pointer, B: B, T: T, KVH: c.numKeyValueHeads,
                     hd: c.headDim, S: cache.capacity, firstPosition: p0)
        be.attentionForward(out: a.att.pointer, lse: a.lse.pointer, q: a.q.pointer, kStore: cache.keys[l].pointer,
                         vStore: cache.values[l].pointer, keyMask: cache.keyMask.pointer, B: B, T: T,
                         NH: c.numAttentionHeads, KVH: c.numKeyValueHeads, hd: c.headDim,
                         S: cache.capacity, firstPosition: p0)
        linear(.o, a.attProj.pointer, a.att.pointer)
        be.residualAdd(x, a.attProj.pointer, count: N * C)
        be.rmsNormForward(out: a.ln2.pointer, rstd: a.rstd2.pointer, inp: x, weight: lw.postAttentionNorm, N: N, C: C, eps: c.rmsNormEps)
        be.linearForwardMany([(a.gate.pointer, lw.gate, nil), (a.up.pointer, lw.up, nil)], inp: a.ln2.pointer, N: N, scratch: scratch)
        for (p, out) in [(Projection.gate, a.gate.pointer), (.up, a.up.pointer)] {
            if let pair = lora[p] { be.loraForward(out: out, inp: a.ln2.pointer, lora: pair, N: N, tmp: a.loraTmp.pointer) }
        }
        be.swigluForward(out: a.act.pointer, gate: a.gate.pointer, up: a.up.pointer, count: N * I)
        linear(.down, a.mlpOut.pointer, a.act.pointer)
        be.residualAdd(x, a.mlpOut.pointer, count: N * C)
    }

    /// logits (rows.count, V) of the given rows of `hidden` (N,C).
    public func logits(hidden: UnsafePointer<Float>, rows: [Int]) -> [Float] {
        let C = config.hiddenSize, V = config.vocabSize
        let be = backend
        var picked = [Float](repeating: 0, count: rows.count * C)
        var out = [Float](repeating: 0, count: rows.count * V)
        picked.withUnsafeMutableBufferPointer { p in
            for (i, r) in rows.enumerated() { be.copy(p.baseAddress! + i * C, from: hidden + r * C, count: C) }
            out.withUnsafeMutableBufferPointer { o in
                be.linearForward(out: o.baseAddress!, inp: p.baseAddress!, weight: weights.lmHead, bias: nil,
                                 N: rows.count, scratch: scratch, accumulate: false)
            }
        }
        return out
    }

    /// Next-token loss and accuracy of hidden (N,C) against targets (N) (−100 = ignored), the
    /// lm_head run `lmHeadChunk` tokens at a time.
    public func score(hidden: UnsafePointer<Float>, targets: [Int32]) -> TokenScores {
        let C = config.hiddenSize, V = config.vocabSize, N = targets.count
        let logits = AlignedBuffer<Float>(count: min(N, lmHeadChunk) * V)
        var total = TokenScores()
        var n0 = 0
        targets.withUnsafeBufferPointer { tp in
            while n0 < N {
                let n = min(lmHeadChunk, N - n0)
                if (n0..<(n0 + n)).contains(where: { tp[$0] >= 0 }) {
                    backend.linearForward(out: logits.pointer, inp: hidden + n0 * C, weight: weights.lmHead, bias: nil,
                                          N: n, scratch: scratch, accumulate: false)
                    total.add(backend.scoreLogits(logits.pointer, targets: tp.baseAddress! + n0, n: n, V: V))
                }
                n0 += n
            }
        }
        return total
    }

    /// Makes sure RoPE tables cover `positions` (forward does this; a caller of layerForward must).
    public func ensureRope(positions: Int) {
        if positions <= rope.positions { return }
        var n = rope.positions
        while n < positions { n *= 2 }
        rope = RoPETable(headDim: config.headDim, theta: config.ropeTheta, positions: min(n, max(positions, config.maxPositionEmbeddings)))
    }

    private func workspace(N: Int) -> ForwardWorkspace {
        if let w = work, w.N >= N, w.loraRank >= (adapter?.rank ?? 0) { return w }
        let w = ForwardWorkspace(config: config, N: N, loraRank: adapter?.rank ?? 0)
        work = w
        return w
    }
}

/// The activations of one layer's forward for N tokens; what a backward pass would save per layer.
public final class LayerActivations {
    public let ln1, rstd1, q, k, v, att, lse, attProj, ln2, rstd2, gate, up, act, mlpOut, loraTmp: AlignedBuffer<Float>

    public init(config c: Qwen2Config, N: Int, loraRank: Int) {
        ln1 = AlignedBuffer(count: N * c.hiddenSize)
        rstd1 = AlignedBuffer(count: N)
        q = AlignedBuffer(count: N * c.qDim)
        k = AlignedBuffer(count: N * c.kvDim)
        v = AlignedBuffer(count: N * c.kvDim)
        att = AlignedBuffer(count: N * c.qDim)
        lse = AlignedBuffer(count: N * c.numAttentionHeads)
        attProj = AlignedBuffer(count: N * c.hiddenSize)
        ln2 = AlignedBuffer(count: N * c.hiddenSize)
        rstd2 = AlignedBuffer(count: N)
        gate = AlignedBuffer(count: N * c.intermediateSize)
        up = AlignedBuffer(count: N * c.intermediateSize)
        act = AlignedBuffer(count: N * c.intermediateSize)
        mlpOut = AlignedBuffer(count: N * c.hiddenSize)
        loraTmp = AlignedBuffer(count: N * max(1, loraRank))
    }
}

/// Buffers for one forward of up to N tokens: the residual stream, its final norm, one layer's activations.
final class ForwardWorkspace {
    let N: Int
    let loraRank: Int
    let x: AlignedBuffer<Float>
    let out: AlignedBuffer<Float>
    let acts: LayerActivations

    init(config: Qwen2Config, N: Int, loraRank: Int) {
        self.N = N
        self.loraRank = loraRank
        x = AlignedBuffer(count: N * config.hiddenSize)
        out = AlignedBuffer(count: N * config.hiddenSize)
        acts = LayerActivations(config: config, N: N, loraRank: loraRank)
    }
}
